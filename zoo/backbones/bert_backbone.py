"""`BertBackbone`: keras-hub's BertBackbone with the zoo's kernels (`transformer_kernels`), and the interface
`transformer.Transformer` reads of a network."""

import keras
import keras_hub

from zoo import compat
from zoo.backbones.transformer_kernels import ACTIVATIONS
from zoo.backbones.transformer_kernels import BatchMatMulAttention
from zoo.backbones.transformer_kernels import Dropout16
from zoo.backbones.transformer_kernels import FlatDense


@keras.saving.register_keras_serializable(package="textzoo")
class BertBackbone(keras_hub.models.BertBackbone):
    """keras-hub's BertBackbone (same config, weights and outputs) whose feed-forward layers use the checkpoint's
    GELU (`activation`: a key of `ACTIVATIONS`) computed in float32, and whose dropout layers draw their masks as
    `Dropout16`. Registered, so that a saved classifier loads with it.

    Args:
        activation: str. "gelu_approximate" (keras-hub's own) or "gelu" (exact, as Hugging Face BERT checkpoints).
        **kwargs: keras-hub BertBackbone's arguments.
    """

    def __init__(self, activation="gelu_approximate", **kwargs):
        super().__init__(**kwargs)
        self.hidden_activation = _check_activation(activation)
        _use_fast_kernels(self)

    def get_config(self):
        return {**super().get_config(), "activation": self.hidden_activation}

    # What `Transformer` (pooling, frozen prefixes) reads of a network: the interface MPNet's network offers too.
    def embedding_layers(self):
        """The layers before the transformer layers that hold weights (frozen with a frozen prefix)."""
        return [self.token_embedding, self.position_embedding, self.segment_embedding, self.embeddings_layer_norm]

    @property
    def embeddings_output(self):
        return self.embeddings_dropout.output

    def run_layers(self, x, padding_mask, start=0):
        """Transformer layers `start`.. on hidden states `x`."""
        for layer in self.transformer_layers[start:]:
            x = layer(x, padding_mask=padding_mask)
        return x

    @classmethod
    def of(cls, network, activation="gelu_approximate"):
        """`network`, a keras-hub BertBackbone (as `from_preset` returns it), made one of this class in place: the
        same layers and weights. keras-hub's `from_preset` builds the class its preset names and refuses
        subclasses, and copying into a second model is slow (docs/measurements.md#bert-backbone-in-place). A
        network of this class already (a preset saved from one) is returned as it is."""
        if isinstance(network, cls):
            return network
        if type(network) is not keras_hub.models.BertBackbone:
            raise TypeError(f"Expected a keras_hub.models.BertBackbone, received {type(network).__name__}.")
        _check_activation(activation)
        compat.become(network, cls)  # Adds no state beyond the activation's name: it only swaps kernels.
        network.hidden_activation = activation
        _use_fast_kernels(network)
        return network


def _check_activation(name):
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown BERT activation {name!r}. Allowed: {sorted(ACTIVATIONS)}.")
    return name


def _use_fast_kernels(bert):
    # BertBackbone hard-codes its activation; the Dense layers read it at call time.
    compat.set_feedforward_activation(bert, ACTIVATIONS[bert.hidden_activation])
    # Feed-forward Dense and self-attention layers: their Keras classes' state only, so the same in place.
    for self_attention, feedforward in compat.encoder_sublayers(bert):
        if type(self_attention) is keras.layers.MultiHeadAttention:
            compat.become(self_attention, BatchMatMulAttention)
        for dense in feedforward:
            if type(dense) is keras.layers.Dense:
                compat.become(dense, FlatDense)
    # Embedding, attention-probability, attention-output and feed-forward dropout: layers without state of their
    # own beyond Keras' Dropout's, so converting them in place keeps their config and seed generators.
    for layer in compat.all_layers(bert):
        if type(layer) is keras.layers.Dropout:
            compat.become(layer, Dropout16)
