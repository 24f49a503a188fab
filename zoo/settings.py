"""`TrainingSettings`: how a classifier trains, and the one source of those fields' defaults (a recipe's training
fields, `recipes.catalog.FIELDS`, are these; a backbone's `default_settings` and a budget change them per backbone).
TensorFlow-free: the catalog reads it without loading TensorFlow."""

import dataclasses
from typing import Optional


@dataclasses.dataclass
class TrainingSettings:
    """How a classifier trains.

    `batch_size` is per replica; `bucket_width`: batch texts by token length in buckets this wide, each batch padded
    to its longest text (None: pad every batch to the sequence length); `patience`: epochs without a better
    validation loss before stopping."""
    batch_size: int = 32
    epochs: int = 3
    learning_rate: float = 1e-3
    warmup_fraction: float = 0.0
    weight_decay: float = 0.0
    patience: int = 2
    bucket_width: Optional[int] = None

    @classmethod
    def of(cls, fields):
        """The settings among `fields` (a recipe, or any dict); the others keep their defaults."""
        return cls(**{f.name: fields[f.name] for f in dataclasses.fields(cls) if f.name in fields})

    @classmethod
    def defaults(cls):
        """{field: default} of every training setting."""
        return dataclasses.asdict(cls())
