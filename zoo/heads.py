"""Classification heads: sigmoid binary (one unit, binary cross-entropy) or softmax multiclass.

Both give a probability output in float32 (also under mixed precision, for a stable loss), and optionally hidden
Dense+ReLU+Dropout layers before it.
"""

import keras

HEAD_TYPES = ("auto", "sigmoid", "softmax")


def resolve_head_type(head, num_classes):
    """"auto" picks sigmoid for two classes and softmax for more; an explicit choice is checked."""
    if head not in HEAD_TYPES:
        raise ValueError(f"Unknown head {head!r}. Allowed: {list(HEAD_TYPES)}.")
    if num_classes < 2:
        raise ValueError(f"A classifier needs at least 2 classes, received {num_classes}.")
    if head == "auto":
        return "sigmoid" if num_classes == 2 else "softmax"
    if head == "sigmoid" and num_classes != 2:
        raise ValueError(f"A sigmoid head is binary: it needs 2 classes, received {num_classes}. Use softmax.")
    return head


def build_head(num_classes, head_type, hidden_units=(), dropout=0.0, sparse_features=None):
    """The head, one layer (a Sequential named "head"): features [batch, d] -> probabilities, [batch, 1] sigmoid or
    [batch, K] softmax. One layer, so that a model training the top of a backbone on cached features and the whole
    classifier share it.

    `sparse_features`: d, for features that come as a `tf.SparseTensor` (the n-grams' TF-IDF). The head then takes
    them sparse, and its first Dense multiplies only their non-zero values (Keras' sparse matmul): a Sequential
    otherwise makes itself a dense input and densifies every batch to [batch, d]
    (docs/measurements.md#ngram-sparse-served)."""
    layers = [keras.Input(shape=(int(sparse_features),), sparse=True, name="features")] if sparse_features else []
    for i, units in enumerate(hidden_units):
        layers.append(keras.layers.Dense(int(units), activation="relu", name=f"head_hidden_{i}"))
        if dropout:
            layers.append(keras.layers.Dropout(float(dropout), name=f"head_dropout_{i}"))
    if head_type == "sigmoid":
        layers.append(keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="probabilities"))
    else:
        layers.append(keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities"))
    return keras.Sequential(layers, name="head")


def loss_and_metric(head_type):
    if head_type == "sigmoid":
        return keras.losses.BinaryCrossentropy(), keras.metrics.BinaryAccuracy(name="accuracy")
    return keras.losses.SparseCategoricalCrossentropy(), keras.metrics.SparseCategoricalAccuracy(name="accuracy")


def class_probabilities(outputs, head_type):
    """[batch, num_classes] probabilities from head outputs: a sigmoid head's p becomes [1 - p, p]."""
    if head_type == "sigmoid":
        return keras.ops.concatenate([1.0 - outputs, outputs], axis=-1)
    return outputs


def prepare_labels(labels, head_type):
    """Labels in the form the head's loss takes: float [batch, 1] for sigmoid, int for softmax."""
    import tensorflow as tf

    if head_type == "sigmoid":
        return tf.reshape(tf.cast(labels, "float32"), (-1, 1))
    return labels


def mean_loss(probabilities, label_ids, head_type):
    """The head's training loss of class probabilities ([batch, num_classes], `class_probabilities`) for labels
    given as class ids: what `fit` minimises, computed on served outputs."""
    import tensorflow as tf

    loss_fn, _ = loss_and_metric(head_type)
    outputs = probabilities[:, 1:] if head_type == "sigmoid" else probabilities
    return float(loss_fn(prepare_labels(tf.constant(label_ids), head_type), outputs))
