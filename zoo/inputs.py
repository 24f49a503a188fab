"""What `TextClassifier`'s Keras methods take, checked and converted: texts (a list, array or tensor of strings, or
a `tf.data.Dataset`), labels (class names or integer ids) and the class names they give."""

import numpy as np
import tensorflow as tf


# Keras' arguments that these methods cannot honour, and why (each refused with this reason).
_REFUSED = {
    "sample_weight": "every text counts once in the training loss and in the metrics",
    "callbacks": "prediction is one traced function per request of texts, not a loop of Keras steps",
    "steps_per_epoch": "an epoch is every training text once, in length buckets",
    "initial_epoch": "fit resumes by itself from its run_dir after an interruption",
    "validation_steps": "validation is every validation text once",
    "validation_batch_size": "validation batches are made as the training batches are",
    "validation_freq": "early stopping validates after every epoch",
}

# Values of those arguments that ask for nothing (Keras' defaults), accepted.
_NOTHING_ASKED = {"initial_epoch": 0, "validation_freq": 1}


def _asks_nothing(name, value):
    if value is None or (isinstance(value, (list, tuple)) and not value):
        return True
    return isinstance(value, int) and value == _NOTHING_ASKED.get(name)


def refuse(method, arguments):
    """A clear error for Keras arguments given that `method` cannot honour."""
    given = {name: value for name, value in arguments.items() if not _asks_nothing(name, value)}
    if given:
        raise TypeError(f"TextClassifier.{method} got unexpected arguments {sorted(given)}: "
                        + "; ".join(f"{name}: {_REFUSED.get(name, 'not an argument of this method')}"
                                    for name in sorted(given)) + ".")


def texts(x, what):
    """A list of str from a list, array or tensor of strings (bytes decoded as UTF-8, undecodable bytes replaced);
    anything else is refused, naming what was received. (The input limit is the model's: `classifier.preprocess`.)"""
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{what} must be a list of texts, received one {type(x).__name__}: wrap it in a list.")
    if isinstance(x, tf.Tensor):
        x = x.numpy().tolist()
    if x is None:
        raise TypeError(f"{what} must be a list of texts, received None.")
    out = []
    for i, text in enumerate(x):
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        if not isinstance(text, str):
            raise TypeError(f"{what}[{i}] must be a string, received {type(text).__name__}: {text!r:.80}.")
        out.append(text)
    return out


def labels(y, what="y"):
    """A list of labels (str, or int class ids) from a list, array or tensor."""
    if y is None:
        raise TypeError(f"{what} must be a list of labels (class names or ids), received None.")
    if isinstance(y, (str, bytes)):
        raise TypeError(f"{what} must be a list of labels, received one {type(y).__name__}: wrap it in a list.")
    values = y.numpy().tolist() if isinstance(y, tf.Tensor) else list(y)
    return [v.decode("utf-8") if isinstance(v, bytes) else v.item() if isinstance(v, np.generic) else v
            for v in values]


def _is_id(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def class_names_of(values):
    """Class names from labels: their names in order of first appearance, or "0".."k-1" for integer ids."""
    if all(_is_id(v) for v in values):
        if values and min(values) < 0:
            raise ValueError(f"Integer labels must be class ids from 0, received {min(values)}.")
        names = [str(i) for i in range(max(values) + 1)] if values else []
    else:
        names = [str(v) for v in dict.fromkeys(values)]
    if len(names) < 2:
        raise ValueError(f"A classifier needs examples of at least 2 classes, received {names}.")
    return names


def label_ids(values, class_names):
    """Labels (class names, or integer ids) as ids; every one must be one of `class_names`."""
    index = {name: i for i, name in enumerate(class_names)}
    ids = []
    for i, value in enumerate(values):
        if _is_id(value):
            if not 0 <= value < len(class_names):
                raise ValueError(f"Label {value} (example {i}) is not a class id: allowed 0 to "
                                 f"{len(class_names) - 1} ({class_names}).")
            ids.append(int(value))
        elif str(value) in index:
            ids.append(index[str(value)])
        else:
            raise ValueError(f"Label {value!r} (example {i}) is not one of the classes {class_names}.")
    return np.asarray(ids, dtype=np.int64)


def from_dataset(dataset, what, with_labels, steps=None, batch_size=None):
    """(texts, labels or None) of a `tf.data.Dataset` of texts or (texts, labels), batched or not; with `steps`,
    of its first `steps` batches (of `batch_size` elements where it is not batched). A third element (sample
    weights) is refused."""
    spec = dataset.element_spec
    parts = spec if isinstance(spec, tuple) else (spec,)
    if len(parts) > 2 or not all(isinstance(p, tf.TensorSpec) for p in parts):
        raise ValueError(f"{what} must be a tf.data.Dataset of texts or of (texts, labels), received elements "
                         f"{spec}: sample weights are not supported (every text counts once).")
    if parts[0].dtype != tf.string:
        raise TypeError(f"{what} must hold strings as its texts, received {parts[0].dtype.name} elements ({spec}).")
    if with_labels and len(parts) < 2:
        raise ValueError(f"{what} must be a tf.data.Dataset of (texts, labels), received texts only ({spec}).")
    batched = parts[0].shape.rank == 1
    if steps is not None:
        dataset = dataset.take(steps if batched else steps * batch_size)
    if batched:
        dataset = dataset.unbatch()
    found_texts, found_labels = [], []
    for element in dataset.as_numpy_iterator():
        element = element if isinstance(element, tuple) else (element,)
        found_texts.append(element[0])
        if len(element) > 1:
            found_labels.append(element[1])
    return texts(found_texts, what), (labels(found_labels, f"{what}'s labels") if len(parts) > 1 else None)


def texts_and_labels(method, x, y, batch_size, steps, with_labels, what="x"):
    """(texts, labels or None) of Keras-style `x`, `y` given to `method`: lists, arrays or tensors, or `x` a
    tf.data.Dataset of texts or (texts, labels); with `steps`, of the first `steps` batches (of `batch_size` texts,
    default 64)."""
    if isinstance(x, tf.data.Dataset):
        if y is not None:
            raise ValueError(f"{method}: y must be None when {what} is a tf.data.Dataset (its elements hold the "
                             f"labels), received y of type {type(y).__name__}.")
        batched = tf.nest.flatten(x.element_spec)[0].shape.rank == 1
        if batched and batch_size is not None:
            raise ValueError(f"{method}: batch_size must be None for a batched tf.data.Dataset (its batches are "
                             f"the batches), received {batch_size}.")
        return from_dataset(x, what, with_labels, steps, batch_size or 64)
    found_texts = texts(x, what)
    if steps is not None:
        found_texts = found_texts[:steps * (batch_size or 64)]
    if not with_labels:
        return found_texts, None
    found_labels = labels(y)[:len(found_texts)] if steps is not None else labels(y)
    if len(found_labels) != len(found_texts):
        raise ValueError(f"{method} got {len(found_texts)} texts and {len(found_labels)} labels: one label per "
                         "text is needed.")
    return found_texts, found_labels


def validation_texts_and_labels(validation_data):
    """(texts, labels) of `fit`'s `validation_data`: a (texts, labels) pair, or a tf.data.Dataset of them."""
    if isinstance(validation_data, tf.data.Dataset):
        return texts_and_labels("fit", validation_data, None, None, None, True, what="validation_data")
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise ValueError("fit: validation_data must be (texts, labels) or a tf.data.Dataset of them, received "
                         f"{type(validation_data).__name__}: {validation_data!r:.80}.")
    return texts_and_labels("fit", validation_data[0], validation_data[1], None, None, True, what="validation_data")
