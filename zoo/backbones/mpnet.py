"""MPNet backbones: `mpnet_base` (all-mpnet-base-v2, sentence-transformers, mean pooling), registered as `MPNet`:
`mpnet_backbone.MPNetBackbone` with `mpnet_tokenizer.MPNetTokenizer`, from a Hugging Face checkpoint directory.
Pooling, frozen prefixes, input layout and exports are every transformer's (`transformer.Transformer`).
"""

import json
import pathlib

from zoo import assets
from zoo import pretrained
from zoo import windows
from zoo.backbones import transformer
from zoo.backbones.mpnet_backbone import PADDING_IDX
from zoo.backbones.mpnet_backbone import MPNetBackbone
from zoo.backbones.mpnet_backbone import hf_weights_into
from zoo.backbones.mpnet_tokenizer import MPNetTextClassifierPreprocessor
from zoo.backbones.mpnet_tokenizer import MPNetTokenizer


def load_network(directory, dropout=0.1):
    """`MPNetBackbone` with the weights of the Hugging Face MPNet checkpoint in `directory`."""
    from safetensors.numpy import load_file

    directory = pathlib.Path(directory)
    config = json.loads((directory / "config.json").read_text())
    if config.get("model_type") != "mpnet":
        raise ValueError(f"{directory}/config.json: model_type {config.get('model_type')!r}, expected 'mpnet'.")
    network = MPNetBackbone(
        vocabulary_size=config["vocab_size"], num_layers=config["num_hidden_layers"],
        num_heads=config["num_attention_heads"], hidden_dim=config["hidden_size"],
        intermediate_dim=config["intermediate_size"], dropout=dropout,
        max_sequence_length=config["max_position_embeddings"] - PADDING_IDX - 1,
        num_buckets=config.get("relative_attention_num_buckets", 32), layer_norm_epsilon=config["layer_norm_eps"])
    hf_weights_into(network, load_file(str(directory / "model.safetensors")))
    return network


def tokenizer_of(directory):
    directory = pathlib.Path(directory)
    config = json.loads((directory / "tokenizer_config.json").read_text())
    return MPNetTokenizer(vocabulary=str(directory / "vocab.txt"), lowercase=config.get("do_lower_case", True),
                          strip_accents=config.get("strip_accents"))


class MPNet(transformer.Transformer):
    """MPNet (`MPNetBackbone`, Hugging Face's checkpoint layout) with its WordPiece tokenizer, from the weights
    `pretrained.resolve_mpnet` finds; pooling, frozen prefixes, input layout and preprocessor files as every
    `transformer.Transformer`'s."""
    # Reimers and Gurevych's fine-tuning of sentence-transformers: lr 2e-5, batch 16; AdamW with warm-up as BERT.
    DEFAULT_SETTINGS = {"sequence_length": 256, "batch_size": 16, "bucket_width": 32, "learning_rate": 3e-5,
                        "epochs": 3, "warmup_fraction": 0.1, "weight_decay": 0.01, "patience": 2}
    DEFAULT_OPTIONS = {
        # None: the registered sources; or a sentence-transformers / Hugging Face MPNet directory.
        "weights_path": None,
        "dropout": 0.1,
        # As BERT's: "auto" pools as the checkpoint was trained (all-mpnet-base-v2: the mean).
        "pooling": "auto",
        "trainable_layers": "all",
        **windows.OPTIONS,
    }

    def missing_weights(self):
        try:
            pretrained.resolve_mpnet(self.name)
        except Exception as e:  # Every failure to find weights is a reason to report, not to stop.
            return (f"no pretrained {self.name} weights reachable (tried: {assets.tried(e)}); provide a "
                    "sentence-transformers MPNet directory with --backbone_options=weights_path=DIR or "
                    "$TEXTZOO_MPNET_BASE")
        return None

    def build(self, options, sequence_length, train_texts=None):
        del train_texts  # The vocabulary comes with the weights.
        directory, provenance = pretrained.resolve_mpnet(self.name, path=options["weights_path"])
        network = load_network(directory, options["dropout"])
        tokenizer = tokenizer_of(directory)
        transformer.check_sequence_length(sequence_length, network.max_sequence_length, "MPNet")
        preprocessor = MPNetTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length,
                                                       truncate=transformer.TRUNCATE)
        provenance = {"pretrained": True, **provenance, "lowercase": tokenizer.uncased}
        return self.assemble(network, preprocessor, provenance, options, sequence_length)
