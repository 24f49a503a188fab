"""Floating-point operations of a transformer's work, from its architecture and the tokens each batch computes on.

A speed in examples/s means little across machines (AVX-512 or not: some 3.5x); the same speed as a share of the
machine's measured matmul rate does. Almost all of BERT's arithmetic is matrix products, counted here as 2 FLOPs per
multiply-add; embeddings lookups, layer norms, softmax and GELU are elementwise (under 2 % of it) and left out.
Training costs 3x the forward pass of what trains (the backward pass computes gradients for activations and for
weights, each about one forward), and 1x the forward pass of what is frozen.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class TransformerShape:
    num_layers: int
    hidden: int
    intermediate: int
    # Dense layers applied once per example after the layers: BERT's [CLS] pooler (hidden x hidden) where it pools
    # that way, and the head (hidden x classes).
    per_example_weights: int = 0

    @classmethod
    def of(cls, backbone_network, pooling, classes):
        """The shape of a keras-hub `BertBackbone` with `pooling` ("cls" or "mean") and a head of `classes` units."""
        hidden = backbone_network.hidden_dim
        pooler = hidden * hidden if pooling == "cls" else 0
        return cls(backbone_network.num_layers, hidden, backbone_network.intermediate_dim, pooler + hidden * classes)


def layer_forward(batch, length, hidden, intermediate):
    """One transformer layer on `batch` examples padded to `length` tokens: Q, K, V and output projections
    (4 hidden^2 multiply-adds per token), the feed-forward (2 hidden x intermediate), attention scores and their
    weighted sum of values (2 x length x hidden)."""
    return 2 * batch * length * (4 * hidden * hidden + 2 * hidden * intermediate + 2 * length * hidden)


def forward(shape, batch_shapes, layers=None, per_example=True):
    """Forward FLOPs of `layers` (default all) transformer layers over batches [(examples, padded length), ...],
    plus the pooler and head per example where `per_example`."""
    layers = shape.num_layers if layers is None else layers
    total = sum(layers * layer_forward(b, n, shape.hidden, shape.intermediate) for b, n in batch_shapes)
    if per_example:
        total += 2 * shape.per_example_weights * sum(b for b, _ in batch_shapes)
    return total


def training_epoch(shape, train_shapes, trainable_layers="all"):
    """FLOPs of one training epoch over `train_shapes`: 3x the forward pass of what trains (the top
    `trainable_layers`, or every layer, and the head)."""
    layers = shape.num_layers if trainable_layers == "all" else trainable_layers
    return 3 * forward(shape, train_shapes, layers=layers)


def training(shape, train_shapes, validation_shapes, epochs, trainable_layers="all"):
    """FLOPs of a whole training run: every epoch over `train_shapes` and a validation pass over
    `validation_shapes`; with `trainable_layers` k, also the frozen layers' forward pass, once (their cached outputs
    feed every epoch)."""
    caching = 0 if trainable_layers == "all" else forward(shape, train_shapes, shape.num_layers - trainable_layers,
                                                          per_example=False)
    return caching + epochs * (training_epoch(shape, train_shapes, trainable_layers)
                               + forward(shape, validation_shapes))


def served_batch_shapes(lengths, batch_size, chunk_size):
    """[(examples, padded length)] that serving computes on for texts of token `lengths` sent in batches of
    `batch_size`: each batch is sorted by length and run in chunks of `chunk_size`, each padded to its longest text
    (`zoo.classifier.run_core`)."""
    shapes = []
    for start in range(0, len(lengths), batch_size):
        ordered = sorted(lengths[start:start + batch_size])
        shapes += [(len(ordered[i:i + chunk_size]), max(ordered[i:i + chunk_size]))
                   for i in range(0, len(ordered), chunk_size)]
    return shapes


def graph_matmul_flops(concrete_function):
    """2 x multiply-adds of every matrix product (MatMul, BatchMatMul, Einsum) in a traced graph with static
    shapes: the count from what actually runs, to check `forward` against."""
    total = 0
    for op in concrete_function.graph.get_operations():
        if op.type not in ("MatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum"):
            continue
        out = op.outputs[0].shape.as_list()
        a = op.inputs[0].shape.as_list()
        if op.type == "Einsum":
            equation = op.get_attr("equation").decode()
            inputs, output = equation.split("->")
            sizes = {}
            for letters, tensor in zip(inputs.split(","), op.inputs):
                sizes.update(zip(letters, tensor.shape.as_list()))
            contracted = 1
            for letter in set(inputs.replace(",", "")) - set(output):
                contracted *= sizes[letter]
        elif op.type == "MatMul":
            contracted = a[0] if op.get_attr("transpose_a") else a[1]
        else:
            contracted = a[-2] if op.get_attr("adj_x") else a[-1]
        count = 1
        for size in out:
            count *= size
        total += 2 * count * contracted
    return total
