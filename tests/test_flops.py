"""The FLOPs count of transformer work (benchmarks.flops) against a count from the traced graph."""

import keras_hub
import pytest
import tensorflow as tf

from benchmarks import flops


@pytest.mark.parametrize("batch, length", [(3, 10), (8, 32)])
def test_forward_flops_match_the_traced_graph_of_a_tiny_bert(batch, length):
    network = keras_hub.models.BertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
                                            intermediate_dim=40, max_sequence_length=64)
    spec = {"token_ids": tf.TensorSpec([batch, length], tf.int32),
            "segment_ids": tf.TensorSpec([batch, length], tf.int32),
            "padding_mask": tf.TensorSpec([batch, length], tf.bool)}
    traced = tf.function(lambda x: network(x)["pooled_output"]).get_concrete_function(spec)
    counted = flops.graph_matmul_flops(traced)
    # keras-hub's pooled_output is the [CLS] pooler; no head here.
    shape = flops.TransformerShape(2, 16, 40, per_example_weights=16 * 16)
    assert counted > 0
    assert abs(flops.forward(shape, [(batch, length)]) - counted) <= 0.05 * counted, counted


def test_shape_of_a_keras_hub_backbone_and_the_training_count():
    network = keras_hub.models.BertBackbone(vocabulary_size=100, num_layers=3, num_heads=2, hidden_dim=16,
                                            intermediate_dim=40, max_sequence_length=64)
    shape = flops.TransformerShape.of(network, "mean", classes=4)
    assert shape == flops.TransformerShape(3, 16, 40, per_example_weights=16 * 4)
    assert flops.TransformerShape.of(network, "cls", 4).per_example_weights == 16 * 16 + 16 * 4
    train, validation = [(32, 100), (7, 20)], [(5, 50)]
    layer = flops.layer_forward(32, 100, 16, 40) + flops.layer_forward(7, 20, 16, 40)
    head = 2 * 16 * 4 * 39
    everything = 2 * (3 * (3 * layer + head) + flops.forward(shape, validation))
    assert flops.training(shape, train, validation, epochs=2) == everything
    # Top layer only: the 2 frozen layers' forward once, 3x the top layer and head per epoch.
    assert flops.training(shape, train, validation, epochs=2, trainable_layers=1) == (
        2 * layer + 2 * 3 * (layer + head) + 2 * flops.forward(shape, validation))
    # The head alone: every layer once.
    assert flops.training(shape, train, validation, epochs=2, trainable_layers=0) == (
        3 * layer + 2 * 3 * head + 2 * flops.forward(shape, validation))


def test_served_batch_shapes_follow_the_serving_chunks():
    lengths = [5, 40, 7, 12, 3, 30, 9, 8, 100, 2]
    # Batches of 6 and 4; each sorted and cut into chunks of 4, padded to the chunk's longest.
    assert flops.served_batch_shapes(lengths, batch_size=6, chunk_size=4) == [(4, 12), (2, 40), (4, 100)]


def test_minilm_per_token_count_is_about_22_mflop():
    shape = flops.TransformerShape(6, 384, 1536)
    per_token = flops.forward(shape, [(1, 128)], per_example=False) / 128
    assert 21e6 < per_token < 24e6


def test_report_gives_arithmetic_rates_as_shares_of_the_measured_peaks():
    from benchmarks import report

    row = {"recipe": "minilm_l6_reuters_r8", "dtype_policy": "mixed_bfloat16",
           "matmul_peak_gflops": {"float32": 200.0, "bfloat16": 800.0},
           "inference_examples_per_second": {"32": 93.75},
           "served_precision_examples_per_second_32": {"float32": 93.75, "bfloat16_at_load": 150.0},
           "flops": {"served_per_example": 3.2e9, "train_gflops_per_second_run": 100.0,
                     "train_gflops_per_second_epoch": None}}
    lines = report.arithmetic_table([row, {"recipe": "ngram_linear_reuters_r8"}])
    # Served: 3.2 GFLOP x 93.75 ex/s as exported (float32), x 150 ex/s rewritten to bfloat16 at load.
    assert lines[-1] == ("| minilm_l6_reuters_r8 | mixed_bfloat16 | 3.20 | 300 (150% of float32 peak) "
                         "| 480 (60% of bfloat16 peak) | 100 (50% of float32, 12% of bfloat16 peak) | - |")
    # Rates measured around each stage take the place of the run's start figure, stage by stage.
    around = {**row, "matmul_rate_gflops": {"training": {"float32": 400.0, "bfloat16": 1000.0},
                                            "served": {"float32": 375.0, "bfloat16": 600.0}}}
    assert report.arithmetic_table([around])[-1] == (
        "| minilm_l6_reuters_r8 | mixed_bfloat16 | 3.20 | 300 (80% of float32 peak) | 480 (80% of bfloat16 peak) "
        "| 100 (25% of float32, 10% of bfloat16 peak) | - |")
    # Rows from before the served precisions were served in their training dtype, with no bf16-at-load rate.
    before = {key: value for key, value in row.items() if key != "served_precision_examples_per_second_32"}
    assert report.arithmetic_table([before])[-1].startswith(
        "| minilm_l6_reuters_r8 | mixed_bfloat16 | 3.20 | 300 (150% of float32, 38% of bfloat16 peak) | - |")
    assert report.arithmetic_table([{"recipe": "ngram_linear_reuters_r8"}]) == []
