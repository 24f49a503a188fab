"""What the zoo's transformers share (`Transformer`): pooling ([CLS] or the mean over real tokens), frozen
prefixes, keras-hub's input layout, the preprocessor as a keras-hub preset and the export's WordPiece over a
vocabulary file. `bert.Bert` and `mpnet.MPNet` load their networks and tokenizers and hand them to it."""

import json
import pathlib

import keras
import tensorflow as tf

from zoo import compat
from zoo.backbones import Backbone
from zoo.backbones import BackboneParts
from zoo.backbones import FrozenPrefix
from zoo.backbones import InputLayout

# keras-hub's default `truncate="round_robin"` emits TFText>RoundRobinTrim, which TF Serving 2.12-2.19 do not
# link; "waterfall" gives the same result for one segment with core ops only.
TRUNCATE = "waterfall"

POOLINGS = ("cls", "mean")


def _mean_pooling(sequence_output, padding_mask):
    # Keras' masked average (the padding positions left out); in float32 under mixed precision, as a bfloat16 sum
    # over hundreds of tokens would lose the low bits.
    return keras.layers.GlobalAveragePooling1D(dtype="float32", name="mean_pooling")(sequence_output,
                                                                                     mask=padding_mask)


@keras.saving.register_keras_serializable(package="textzoo")
class MeanPooledBackbone(keras.Model):
    """A transformer backbone (keras-hub's BertBackbone, or MPNet's) whose "pooled_output" is the mean of its
    sequence output over the real tokens, as sentence-transformers checkpoints were trained; its other outputs are
    the backbone's "sequence_output".

    Args:
        backbone: a keras-hub `Backbone` with a "sequence_output" and a "padding_mask" input.
    """

    def __init__(self, backbone, **kwargs):
        # === Layers ===
        if hasattr(backbone, "pooled_dense"):
            backbone.pooled_dense.trainable = False  # Its output is not used: no gradient reaches it.
        # === Functional model ===
        inputs = {k: keras.Input(shape=(None,), dtype="int32", name=k) for k in backbone.input}
        sequence_output = backbone(inputs)["sequence_output"]
        super().__init__(inputs, {"sequence_output": sequence_output,
                                  "pooled_output": _mean_pooling(sequence_output, inputs["padding_mask"])}, **kwargs)
        # === Config ===
        self.backbone = backbone

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "backbone": keras.saving.serialize_keras_object(self.backbone)}

    @classmethod
    def from_config(cls, config):
        return cls(**{**config, "backbone": keras.saving.deserialize_keras_object(config["backbone"])})


def _pooled_network(bert, pooling, name):
    """keras-hub's BertBackbone, whose "pooled_output" is the pooling asked for."""
    if pooling == "cls":
        return bert
    return MeanPooledBackbone(bert, name=f"{name}_mean_pooled")


def _trainable_layers(value, num_layers):
    if value == "all":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= num_layers:
        raise ValueError(f"trainable_layers must be 'all' or an integer from 0 to {num_layers} (the model's "
                         f"layers), received {value!r}.")
    return value


def _frozen_prefix(bert, network, pooling, trainable, sequence_length):
    """Freezes the embeddings and the transformer layers below the top `trainable`, and splits the network there.

    The prefix is cut out of keras-hub's own graph (the output of the last frozen layer), and the top calls the
    remaining layers again on features of that shape, as BertBackbone does: both are the network's layers."""
    frozen_layers = bert.transformer_layers[:bert.num_layers - trainable]
    for layer in [*bert.embedding_layers(), *frozen_layers]:
        layer.trainable = False
    if trainable == 0:  # Everything is frozen, the pooling too: the head trains on the pooled features.
        bert.pooled_dense.trainable = False
        prefix = keras.Model(network.input, {"pooled_output": network.output["pooled_output"]})
        features = keras.Input(shape=(bert.hidden_dim,), name="pooled_output")
        top = keras.Model({"pooled_output": features}, {"pooled_output": features})
        return FrozenPrefix(prefix, top, InputLayout())
    mask = bert.input["padding_mask"]
    prefix = keras.Model(bert.input, {"hidden": frozen_layers[-1].output if frozen_layers else bert.embeddings_output,
                                      "padding_mask": keras.layers.Identity(name="mask_through")(mask)})
    hidden = keras.Input(shape=(None, bert.hidden_dim), name="hidden")
    padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
    x = bert.run_layers(hidden, padding_mask, start=bert.num_layers - trainable)
    pooled = bert.pooled_dense(x[:, 0, :]) if pooling == "cls" else _mean_pooling(x, padding_mask)
    top = keras.Model({"hidden": hidden, "padding_mask": padding_mask}, {"pooled_output": pooled})
    return FrozenPrefix(prefix, top, InputLayout(sequence_length=sequence_length, lengths=_lengths))


def _lengths(inputs):
    return tf.reduce_sum(tf.cast(inputs["padding_mask"], tf.int32), axis=-1)




def check_sequence_length(sequence_length, max_positions, architecture="BERT"):
    if sequence_length is None or sequence_length > max_positions:
        raise ValueError(f"Cannot use sequence length {sequence_length} because the {architecture} model was only "
                         f"trained up to sequence length {max_positions}.")


class Transformer(Backbone):
    """What the zoo's transformers share, over a network that offers what `BertBackbone` declares for it
    (`transformer_layers`, `num_layers`, `hidden_dim`, `embedding_layers()`, `embeddings_output`, `run_layers`,
    `pooled_dense` where it pools [CLS], an input with a "padding_mask"): the pooling and frozen prefix its options
    ask for (`assemble`), keras-hub's inputs (`input_layout`), the preprocessor as a keras-hub preset, and the
    export's WordPiece over a vocabulary file. Subclasses load the network and the tokenizer (`build`)."""
    family = "transformer"

    def assemble(self, network, preprocessor, provenance, options, sequence_length):
        """The `BackboneParts` of `network` with `preprocessor`: the pooling (`pooling`: "auto" pools as the weights
        were trained, `provenance` says how) and the frozen prefix (`trainable_layers`) its options ask for."""
        pooling = provenance.get("pooling", "cls") if options["pooling"] == "auto" else options["pooling"]
        if pooling not in POOLINGS:
            raise ValueError(f"Unknown pooling {options['pooling']!r}. Allowed: {['auto', *POOLINGS]}.")
        provenance["pooling"] = pooling
        network = _pooled_network(network, pooling, self.name)
        return BackboneParts(self.name, self.family, preprocessor, network, provenance, options,
                             self.frozen_prefix(network, options, sequence_length))

    def frozen_prefix(self, network, options, sequence_length):
        """The `FrozenPrefix` option `trainable_layers` asks for (None for "all"), of `network` as `assemble` made
        it: a fresh one, or one taken out of a trained or loaded classifier (its frozen layers' flags are not
        saved), so that every fit trains the top on cached features."""
        pooled = isinstance(network, MeanPooledBackbone)
        bert = network.backbone if pooled else network
        trainable = _trainable_layers(options["trainable_layers"], bert.num_layers)
        if trainable is None:
            return None
        return _frozen_prefix(bert, network, "mean" if pooled else "cls", trainable, sequence_length)

    def input_layout(self, preprocessor):
        """keras-hub's inputs (token_ids, segment_ids, padding_mask) are padded at the end and attention masks the
        padding, so an input cut to its real tokens gives the same outputs with less compute."""
        return InputLayout(sequence_length=int(preprocessor.sequence_length), lengths=_lengths,
                           padding_values={"token_ids": preprocessor.tokenizer.pad_token_id})

    def save_preprocessor(self, preprocessor, directory):
        preprocessor.save_to_preset(str(directory))

    def load_preprocessor(self, directory):
        """Reads a preprocessor written by `save_to_preset` (preprocessor.json, tokenizer assets).

        keras-hub's `from_preset` wants a backbone config.json beside it; a preprocessor alone is restored from its
        own config and the tokenizer assets, the way keras-hub's preset loader does it.
        """
        config = json.loads((pathlib.Path(directory) / "preprocessor.json").read_text())
        preprocessor = keras.saving.deserialize_keras_object(config)
        preprocessor.load_preset_assets(str(directory))
        return preprocessor

    def serving_preprocessor(self, preprocessor, directory):
        """`preprocessor` as an export carries it: the same configuration, with WordPiece reading the vocabulary
        from vocabulary.txt written into `directory` (a SavedModel asset).

        keras-hub tokenizes with `tf_text.FastWordpieceTokenizer`, whose vocabulary is compiled into a model buffer
        that a SavedModel holds as a graph constant (1.85 MB for a 30k vocabulary, 8x the vocabulary file).
        `tf_text.WordpieceTokenizer` does the same greedy longest-match WordPiece (same suffix indicator, unknown
        token and 100-byte word limit; equality tested in tests/test_export.py) through a table initialised from
        the vocabulary file; its op is in tf-text 2.12.1, which TF Serving links.
        """
        tokenizer = preprocessor.tokenizer
        pathlib.Path(directory).mkdir(parents=True, exist_ok=True)
        tokenizer.save_assets(str(directory))  # vocabulary.txt, as in a keras-hub preset.
        vocabulary = pathlib.Path(directory) / "vocabulary.txt"
        tokenizer = type(tokenizer).from_config({**tokenizer.get_config(), "vocabulary": str(vocabulary)})
        compat.wordpiece_from_file(tokenizer, vocabulary)
        return type(preprocessor).from_config({**preprocessor.get_config(), "tokenizer": tokenizer})
