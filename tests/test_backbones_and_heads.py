"""The backbone contract for all four backbones (tiny configurations) and the heads."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from recipes import budgets
from tests import buildable
from zoo import backbones
from zoo import classifier
from zoo import compat
from zoo.text_classifier import TextClassifier
from zoo import heads
from zoo import runs

TEXTS = ["the cat sat on the mat", "stocks fell sharply on monday", "a great football match tonight",
         "the new phone has a faster chip"] * 4

def tiny_options(name):
    """A backbone's options and sequence length at the `tiny` budget (its defaults, then what the budget changes)."""
    tiny = {**backbones.default_settings(name), **budgets.of(name)["tiny"]}
    return tiny.get("backbone_options", {}), tiny.get("sequence_length")


# Every registered backbone: a new one is checked against the contract without touching this file.
@pytest.fixture(scope="module", params=buildable.params())
def built(request):
    options, length = tiny_options(request.param)
    return backbones.build(request.param, options, length, TEXTS)


def preprocess(backbone, texts):
    """Runs the preprocessor the way training does: mapped over tf.data."""
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(texts)).batch(len(texts)).map(backbone.preprocessor)
    return next(iter(ds))


def dense(x):
    return tf.sparse.to_dense(x) if isinstance(x, tf.SparseTensor) else x


def test_preprocessor_and_network_contract(built):
    texts = TEXTS[:3] + ["", "\u00e9t\u00e9 \U0001F600 \u4e2d\u6587"]
    outputs = built.network(preprocess(built, texts))
    assert isinstance(outputs, dict)
    pooled = np.asarray(dense(outputs["pooled_output"]))
    assert pooled.shape == (5, built.network.output["pooled_output"].shape[-1]) and np.isfinite(pooled).all()
    assert len({row.tobytes() for row in pooled[:3]}) == 3, "three different texts, one pooled output"
    # A text's features do not depend on the batch it comes in.
    alone = np.asarray(dense(built.network(preprocess(built, texts[1:2]))["pooled_output"]))
    np.testing.assert_allclose(alone[0], pooled[1], atol=1e-5)
    assert built.family == backbones.family(built.name) and built.family in ("transformer", "recurrent",
                                                                             "bag_of_words")
    assert isinstance(built.provenance["pretrained"], bool) and built.provenance["source"].strip()


def test_network_is_a_registered_keras_class_its_config_rebuilds(built):
    """Backbones are Keras classes in keras-hub's style: registered, their config the constructor's arguments."""
    network = built.network
    cls = type(network)
    assert cls is not keras.Model and keras.saving.get_registered_object(keras.saving.get_registered_name(cls)) is cls
    config = network.get_config()
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(network)).get_config() == config
    copy = cls.from_config(config)
    assert copy.count_params() == network.count_params() and set(copy.output) == set(network.output)
    assert {w.path for w in copy.weights} == {w.path for w in network.weights}


def test_input_layout_says_what_the_inputs_are(built):
    layout = backbones.input_layout(built.name, built.preprocessor)
    texts = ["a b c d e f g h", "a", ""]
    inputs = preprocess(built, texts)
    widths = {int(t.shape[-1]) for t in tf.nest.flatten(inputs)}
    if layout.sequence_length:
        assert widths == {layout.sequence_length}
    if not layout.variable_length:
        return
    lengths = np.asarray(layout.lengths(inputs))
    assert lengths[0] > lengths[1] >= lengths[2] and lengths[0] < layout.sequence_length
    for i, length in enumerate(lengths):  # Cut to its own length, an input gives the outputs of the padded one.
        cut = tf.nest.map_structure(lambda v: v[i:i + 1, :length], inputs)
        padded = tf.nest.map_structure(lambda v: v[i:i + 1], inputs)
        np.testing.assert_allclose(built.network(cut)["pooled_output"], built.network(padded)["pooled_output"],
                                   atol=1e-5)
    named = inputs if isinstance(inputs, dict) else {None: inputs}
    for key, value in named.items():  # Past its length, every input holds its padding value.
        np.testing.assert_array_equal(np.asarray(value)[1, lengths[1]:], layout.padding_values.get(key, 0))


def test_preprocessor_files_round_trip(built, tmp_path):
    backbones.save_preprocessor(built.name, built.preprocessor, tmp_path / "preprocessor")
    restored = backbones.load_preprocessor(built.name, tmp_path / "preprocessor")
    original = preprocess(built, TEXTS[:4])
    again = tf.data.Dataset.from_tensor_slices(tf.constant(TEXTS[:4])).batch(4).map(restored)
    tf.nest.map_structure(lambda a, b: np.testing.assert_array_equal(dense(a), dense(b)), original, next(iter(again)))


def test_classifier_end_to_end_probabilities_and_save_load(built, tmp_path):
    core = classifier.build_core(built, 3, "softmax", hidden_units=(4,), dropout=0.1)
    model = TextClassifier(built.name, ["a", "b", "c"], head="softmax", preprocessor=built.preprocessor, core=core)
    texts = TEXTS[:5] + ["", " ", "\xff\xfe"]
    probabilities = model.predict(texts)
    assert probabilities.shape == (8, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # Batched by length and put back in order: each row is its own text's.
    one_by_one = np.concatenate([model.predict([t]) for t in texts])
    np.testing.assert_allclose(model.predict(texts, batch_size=3), one_by_one, atol=1e-5)
    runs.RunDir(tmp_path / "run").save_classifier(model, held_out_texts=texts[:2])
    restored = runs.RunDir(tmp_path / "run").load_classifier()
    np.testing.assert_allclose(restored.predict(texts), probabilities, atol=1e-6)
    assert restored.class_names == ["a", "b", "c"] and restored.backbone_name == built.name
    assert runs.RunDir(tmp_path / "run").held_out_texts() == texts[:2]
    assert runs.RunDir(tmp_path).held_out_texts() == []



def test_run_directories_without_a_model_are_refused_saying_why(tmp_path):
    """Runs written before model.keras (a model/ directory) are no longer read: the error says what to do; an
    unfinished run is called unfinished, a missing directory missing."""
    legacy = tmp_path / "legacy"
    (legacy / "model").mkdir(parents=True)
    (legacy / "model" / "classifier.json").write_text("{}")
    (legacy / runs.METRICS).write_text("{}")
    assert runs.holds_model(legacy)
    with pytest.raises(runs.RunDirError, match="written by a version before model.keras .*train the recipe again"):
        runs.RunDir(legacy).load_classifier()
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / runs.CONFIG).write_text("{}")
    with pytest.raises(runs.RunDirError, match=r"\['model.keras'\] missing \(no metrics.json: the run has not finished"):
        runs.RunDir(unfinished).load_classifier()
    with pytest.raises(runs.RunDirError, match="does not exist"):
        runs.RunDir(tmp_path / "nowhere").load_classifier()


def test_minilm_l6_uses_pretrained_weights_and_waterfall():
    backbone = backbones.build("minilm_l6", {}, 16, None)
    assert backbone.provenance["pretrained"] is True
    assert backbone.preprocessor.truncate == "waterfall"
    assert backbone.provenance["lowercase"] is True
    inputs = preprocess(backbone, ["HELLO World"])
    lower = preprocess(backbone, ["hello world"])
    np.testing.assert_array_equal(inputs["token_ids"], lower["token_ids"])


@pytest.mark.parametrize("approximate", [True, False])
@pytest.mark.parametrize("dtype, atol", [("float32", 5e-6), ("bfloat16", 1.6e-2)])
def test_bert_gelu_in_float32_is_keras_gelu_and_its_gradient(dtype, atol, approximate):
    """The tanh form against keras-hub's (keras' approximate GELU), the exact one against keras' erf GELU."""
    import keras

    from zoo.backbones import transformer_kernels

    x = tf.cast(tf.linspace(-8.0, 8.0, 2001), dtype)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        theirs = keras.activations.gelu(x, approximate=approximate)
        ours = transformer_kernels.ACTIVATIONS["gelu_approximate" if approximate else "gelu"](x)
    assert ours.dtype == x.dtype
    # bfloat16: at most one unit in the last place of |values| up to 8 (the float32 result rounded once).
    np.testing.assert_allclose(tf.cast(ours, "float32"), tf.cast(theirs, "float32"), atol=atol, rtol=0)
    np.testing.assert_allclose(tf.cast(tape.gradient(ours, x), "float32"),
                               tf.cast(tape.gradient(theirs, x), "float32"), atol=atol, rtol=0)


def test_bert_gelu_gradient_ops_are_named_in_the_models_gradient_scope():
    from benchmarks import timing
    from zoo.backbones import transformer_kernels

    @tf.function
    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            with tf.name_scope("net"):
                y = transformer_kernels.gelu_approximate_float32(x)
        return tape.gradient(y, x)

    graph = gradient.get_concrete_function(tf.TensorSpec([4], tf.float32)).graph
    products = [op.name for op in graph.get_operations() if op.type == "Mul"]
    assert any(name.startswith("gradient_tape/net/") for name in products)
    # A profile puts them in the model's elementwise work, not in "optimizer and loss".
    assert {timing.op_category(f"{name}:Mul", "net") for name in products} == {"elementwise"}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_16bit_dropout_keeps_each_element_with_probability_one_minus_rate_and_scales_it(dtype):
    from zoo.backbones import transformer_kernels

    x = tf.cast(tf.random.stateless_uniform([8, 4, 125, 251], (3, 4), minval=0.5, maxval=2.0), dtype)  # Odd size.
    seed = tf.constant([7, 11], tf.int32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = transformer_kernels.dropout_16bit(x, 0.1, seed)
    kept = (y != 0).numpy()
    # 1,004,000 elements: the kept share's standard deviation is 0.0003.
    assert abs(kept.mean() - 0.9) < 0.0015
    np.testing.assert_array_equal(tf.cast(y, "float32").numpy()[kept],
                                  tf.cast(x * tf.constant(1 / 0.9, dtype), "float32").numpy()[kept])
    # The gradient is the mask, scaled; the same seed draws the same mask, another seed another one.
    np.testing.assert_array_equal(tf.cast(tape.gradient(y, x), "float32").numpy(),
                                  np.where(kept, float(tf.constant(1 / 0.9, dtype)), 0.0))
    np.testing.assert_array_equal(transformer_kernels.dropout_16bit(x, 0.1, seed).numpy() != 0, kept)
    assert (transformer_kernels.dropout_16bit(x, 0.1, seed + 1).numpy() != 0).mean() != kept.mean()
    # Masks of neighbouring elements are independent: the share kept of pairs is 0.81.
    pairs = kept.reshape(-1)[:-1:2] & kept.reshape(-1)[1::2]
    assert abs(pairs.mean() - 0.81) < 0.003
    assert not transformer_kernels.dropout_16bit(x, 1.0, seed).numpy().any()
    np.testing.assert_array_equal(transformer_kernels.dropout_16bit(x, 0.0, seed).numpy(), x.numpy())


def test_16bit_dropout_layer_is_keras_dropout_at_inference_and_draws_16bit_masks_in_training():
    import keras

    from zoo.backbones import transformer_kernels

    layer = keras.layers.Dropout(0.25, seed=5)
    layer.__class__ = transformer_kernels.Dropout16
    x = tf.ones([100, 1000])
    np.testing.assert_array_equal(layer(x, training=False), x)
    first, second = layer(x, training=True).numpy(), layer(x, training=True).numpy()
    assert abs((first == 0).mean() - 0.25) < 0.005
    assert set(np.unique(first)) == {0.0, np.float32(1 / 0.75)}
    assert (first != second).any()  # The seed generator advances, as Keras' Dropout's does.
    graph = tf.function(lambda t: layer(t, training=True)).get_concrete_function(x).graph
    assert {op.type for op in graph.get_operations()} >= {"StatelessRandomUniformFullIntV2", "Bitcast"}


def test_minilm_l6_is_keras_hubs_backbone_with_the_checkpoints_float32_gelu_after_saving(tmp_path):
    import keras
    import keras_hub

    from zoo import pretrained
    from zoo.backbones import bert_backbone
    from zoo.backbones import transformer_kernels

    backbone = backbones.build("minilm_l6", {"pooling": "cls"}, 32, None)
    network = backbone.network
    assert type(network) is bert_backbone.BertBackbone and isinstance(network, keras_hub.models.BertBackbone)
    # all-MiniLM-L6-v2's config.json says hidden_act "gelu": the exact form, where keras-hub hard-codes tanh's.
    assert backbone.provenance["activation"] == network.hidden_activation == "gelu"
    assert all(layer._feedforward_intermediate_dense.activation is transformer_kernels.gelu_float32
               for layer in network.transformer_layers)
    dropouts = [layer for layer in network._flatten_layers() if isinstance(layer, keras.layers.Dropout)]
    # Embeddings, and per transformer layer: attention probabilities, attention output, feed-forward output.
    assert len(dropouts) == 1 + 3 * len(network.transformer_layers)
    assert {type(layer) for layer in dropouts} == {transformer_kernels.Dropout16}
    assert fast_kernels(network)
    stock = keras_hub.models.BertBackbone.from_preset(str(pretrained.resolve_bert("minilm_l6")[0]))
    assert bert_backbone.BertBackbone.of(network) is network  # Already ours.
    with pytest.raises(TypeError, match="Expected a keras_hub.models.BertBackbone, received Functional"):
        bert_backbone.BertBackbone.of(keras.Model(network.input, network.output))
    with pytest.raises(ValueError, match=r"Unknown BERT activation 'relu'\. Allowed: \['gelu', 'gelu_approximate'\]"):
        bert_backbone.BertBackbone.of(stock, activation="relu")
    inputs = preprocess(backbone, TEXTS[:4])
    # keras-hub's own, with the checkpoint's activation: the same outputs to float32 rounding over 6 layers (one
    # element in 49152 differed by 1.1e-5, keras' erf GELU against ours). With keras-hub's tanh GELU, 10x more.
    tanh = stock(inputs)["sequence_output"]
    for layer in stock.transformer_layers:
        layer._feedforward_intermediate_dense.activation = lambda x: keras.activations.gelu(x, approximate=False)
    np.testing.assert_allclose(network(inputs)["sequence_output"], stock(inputs)["sequence_output"], atol=3e-5)
    assert np.abs(network(inputs)["sequence_output"] - tanh).max() > 3e-4
    network.save(tmp_path / "bert.keras")
    restored = keras.models.load_model(tmp_path / "bert.keras", compile=False)
    assert restored.hidden_activation == "gelu"
    assert all(layer._feedforward_intermediate_dense.activation is transformer_kernels.gelu_float32
               for layer in restored.transformer_layers)
    assert {type(layer) for layer in restored._flatten_layers() if isinstance(layer, keras.layers.Dropout)} == {
        transformer_kernels.Dropout16}
    assert fast_kernels(restored)
    np.testing.assert_array_equal(restored(inputs)["sequence_output"], network(inputs)["sequence_output"])


def fast_kernels(network):
    """Whether every transformer layer of a BertBackbone runs its feed-forward and attention with the zoo's kernels."""
    from zoo.backbones import transformer_kernels

    from zoo import compat

    return all(type(attention) is transformer_kernels.BatchMatMulAttention
               and {type(d) for d in feedforward} == {transformer_kernels.FlatDense}
               for attention, feedforward in compat.encoder_sublayers(network))


def test_bert_random_initialisation_is_flagged(caplog):
    options = {"random_init": True, "num_layers": 1, "hidden_dim": 8, "num_heads": 2, "intermediate_dim": 16}
    with caplog.at_level("WARNING"):
        backbone = backbones.build("bert_base", options, 12, None)
    assert backbone.provenance["pretrained"] is False
    assert "RANDOM" in backbone.provenance["warning"]
    assert any("RANDOM INITIALISATION" in r.getMessage() for r in caplog.records)


def test_bert_sequence_length_beyond_positions_is_refused():
    with pytest.raises(ValueError, match="Cannot use sequence length 1024 because the BERT model was only trained "
                                         "up to sequence length 512"):
        backbones.build("minilm_l6", {}, 1024, None)


def test_glove_reports_vocabulary_coverage(capsys):
    backbone = backbones.build("glove_bilstm", {"units": 4, "max_tokens": 200}, 8, TEXTS + ["qwzxv"])
    assert "Converted" in capsys.readouterr().out
    assert backbone.provenance["vocabulary_words_missing"] == 1  # "qwzxv" is not a GloVe word.
    assert backbone.provenance["vocabulary_words_in_glove"] == backbone.provenance["vocabulary_size"] - 3


def test_glove_recurrent_layers_are_configurable():
    backbone = backbones.build("glove_bilstm", {"units": 4, "cell": "gru", "layers": 2, "bidirectional": False,
                                                "max_tokens": 200, "use_cudnn": False}, 8, TEXTS)
    recurrent = [layer for layer in backbone.network.layers if layer.__class__.__name__ == "GRU"]
    assert len(recurrent) == 2
    assert all(layer.use_cudnn is False for layer in recurrent)  # What ships: tests/test_mixed_precision.py.


def test_unknown_backbone_and_option():
    with pytest.raises(ValueError, match=r"Unknown backbone 'gpt'. Allowed: \['bert_base', 'bert_small'"):
        backbones.build("gpt")
    with pytest.raises(ValueError, match=r"Unknown options \['colour'\] for backbone 'glove_bilstm'. Allowed: "):
        backbones.build("glove_bilstm", {"colour": 1}, 8, TEXTS)
    with pytest.raises(ValueError, match=r"Unknown cell 'rnn'. Allowed: \['gru', 'lstm'\]"):
        backbones.build("glove_bilstm", {"cell": "rnn"}, 8, TEXTS)
    with pytest.raises(ValueError, match=r"Unknown standardize 'upper'"):
        backbones.build("ngram_linear", {"standardize": "upper"}, None, TEXTS)


def test_head_type_resolution():
    assert heads.resolve_head_type("auto", 2) == "sigmoid"
    assert heads.resolve_head_type("auto", 5) == "softmax"
    assert heads.resolve_head_type("softmax", 2) == "softmax"
    with pytest.raises(ValueError, match="A sigmoid head is binary: it needs 2 classes, received 3"):
        heads.resolve_head_type("sigmoid", 3)
    with pytest.raises(ValueError, match=r"Unknown head 'linear'. Allowed: \['auto', 'sigmoid', 'softmax'\]"):
        heads.resolve_head_type("linear", 3)
    with pytest.raises(ValueError, match="at least 2 classes, received 1"):
        heads.resolve_head_type("auto", 1)


@pytest.mark.parametrize("head_type,num_classes,width", [("sigmoid", 2, 1), ("softmax", 2, 2), ("softmax", 4, 4)])
def test_heads_shapes_losses_and_probabilities(head_type, num_classes, width):
    import keras

    features = keras.Input(shape=(6,))
    model = heads.build_head(num_classes, head_type, hidden_units=(64, 32), dropout=0.2)
    model(features)
    assert [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)] == [64, 32, width]
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in model.layers) == 2
    x = np.random.default_rng(0).normal(size=(7, 6)).astype("float32")
    raw = model(x)
    assert raw.shape == (7, width) and raw.dtype == "float32"
    probabilities = np.asarray(heads.class_probabilities(raw, head_type))
    assert probabilities.shape == (7, num_classes)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    loss, metric = heads.loss_and_metric(head_type)
    labels = heads.prepare_labels(tf.constant([0, 1, 1, 0, 1, 0, 1]), head_type)
    assert np.isfinite(float(loss(labels, raw)))
    assert metric.name == "accuracy"


@pytest.mark.parametrize("sublinear_tf", [True, False])
def test_tf_idf_layer_sparse_equals_dense_reference(sublinear_tf):
    from zoo.backbones import ngram_linear

    rng = np.random.default_rng(0)
    counts = rng.poisson(0.3, size=(6, 40)).astype(np.float32)
    counts[3] = 0  # An empty text stays all zeros.
    idf = rng.uniform(0.5, 3.0, size=40).astype(np.float32)
    tf_part = np.where(counts > 0, 1 + np.log(np.maximum(counts, 1)), 0) if sublinear_tf else counts
    weighted = tf_part * idf
    norms = np.linalg.norm(weighted, axis=1, keepdims=True)
    expected = np.divide(weighted, norms, out=np.zeros_like(weighted), where=norms > 0)
    layer = ngram_linear.TfIdf(40, sublinear_tf=sublinear_tf, normalize=True)
    layer.set_weights([idf])
    sparse = layer(tf.sparse.from_dense(counts))
    assert isinstance(sparse, tf.SparseTensor)
    np.testing.assert_allclose(tf.sparse.to_dense(sparse).numpy(), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(layer(tf.constant(counts))), expected, rtol=1e-5, atol=1e-7)


def test_ngram_counts_are_sparse_and_files_from_older_versions_are_refused(tmp_path):
    built = backbones.build("ngram_linear", {"max_tokens": 500}, None, TEXTS)
    assert isinstance(preprocess(built, TEXTS[:2]), tf.SparseTensor)
    backbones.save_preprocessor("ngram_linear", built.preprocessor, tmp_path / "p")
    config = json.loads((tmp_path / "p" / "config.json").read_text())
    assert config["text_vectorization"]["sparse"] is True and config["text_vectorization"]["ngrams"] == 2
    restored = backbones.load_preprocessor("ngram_linear", tmp_path / "p")
    assert isinstance(restored(tf.constant(TEXTS[:2])), tf.SparseTensor)
    (tmp_path / "p" / "config.json").write_text(json.dumps({"options": {}, "output_mode": "tf_idf",
                                                             "vocabulary_size": config["vocabulary_size"]}))
    with pytest.raises(ValueError, match="written by an older version of textzoo .*train the recipe again"):
        backbones.load_preprocessor("ngram_linear", tmp_path / "p")


def test_ngram_features_are_scikit_learns_tfidf_vectorizers():
    """By default ngram_linear computes TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)'s features: its
    tokens (two or more word characters, every letter lowercased), n-grams, IDF and L2 norm; n-grams outside the
    vocabulary weigh nothing."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    train = ["The cat sat on the mat.", "Stocks fell; the market's mood: GRIM!",
             "\u00c9cole d'\u00e9t\u00e9: 3D_models", "a b c", "snake_case and CamelCase, twice twice twice",
             "the cat, the cat and the mat-maker",
             "\u0421\u0422\u0410\u0422\u042c\u042f \u00b2x 1,000 e-mail"]
    test = train + ["unseen words only", "THE CAT'S MARKET \u00e9t\u00e9", ""]
    built = backbones.build("ngram_linear", {}, None, train)
    ours = np.asarray(dense(built.network(preprocess(built, test))["pooled_output"]))
    reference = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(train)
    vocabulary = built.preprocessor.get_vocabulary()
    assert vocabulary[0] == "[UNK]" and sorted(vocabulary[1:]) == sorted(reference.get_feature_names_out())
    columns = [vocabulary.index(name) for name in reference.get_feature_names_out()]
    np.testing.assert_allclose(ours[:, columns], reference.transform(test).toarray(), rtol=1e-5, atol=1e-6)
    assert not ours[:, 0].any()


@pytest.mark.parametrize("options, message", [
    ({"idf": "smooth"}, "Unknown idf 'smooth'. Allowed: ['keras', 'sklearn']"),
    ({"split": "regex"}, "Unknown split 'regex'. Allowed: ['whitespace', 'words']"),
    ({"standardize": "upper"}, "Unknown standardize 'upper'. Allowed: ['lower_and_strip_punctuation', 'lower', "
                               "'lower_unicode', 'strip_punctuation', 'none']"),
])
def test_unknown_ngram_feature_options_are_named(options, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        backbones.build("ngram_linear", options, None, TEXTS)


def test_keras_own_ngram_features_stay_available(tmp_path):
    """split=whitespace, standardize=lower_and_strip_punctuation, idf=keras: Keras' TextVectorization(tf_idf)
    IDF, its [UNK] slot weighing the mean; the files round-trip."""
    options = {"split": "whitespace", "standardize": "lower_and_strip_punctuation", "idf": "keras", "max_tokens": 500}
    built = backbones.build("ngram_linear", options, None, TEXTS)
    adapted = keras.layers.TextVectorization(output_mode="tf_idf", ngrams=2, max_tokens=500)
    adapted.adapt(np.asarray(TEXTS, dtype=object))
    np.testing.assert_allclose(built.network.get_layer("tf_idf").get_weights()[0], compat.adapted_idf(adapted),
                               rtol=1e-6)
    assert built.preprocessor.get_vocabulary() == adapted.get_vocabulary()
    backbones.save_preprocessor("ngram_linear", built.preprocessor, tmp_path / "p")
    restored = backbones.load_preprocessor("ngram_linear", tmp_path / "p")
    np.testing.assert_array_equal(dense(restored(tf.constant(["The cat's mat!"]))),
                                  dense(built.preprocessor(tf.constant(["The cat's mat!"]))))


def test_evaluation_draws_no_rnn_dropout_masks():
    """Keras 3.15's RNNs draw dropout masks even when not training; evaluation and serving (one function,
    TextClassifier.probabilities_fn) must not, nor advance their seeds."""
    backbone = backbones.build("glove_bilstm", {"units": 4, "max_tokens": 200, "dropout": 0.5}, 12, TEXTS)
    core = classifier.build_core(backbone, 2, "softmax")
    model = TextClassifier("glove_bilstm", ["a", "b"], head="softmax", preprocessor=backbone.preprocessor, core=core)
    seeds = [v for v in core.variables if "seed_generator" in v.path]
    assert seeds, "the LSTM cells' dropout has no seed generator to check"
    before = [np.asarray(v) for v in seeds]
    first = model.predict(TEXTS)
    for variable, value in zip(seeds, before):
        np.testing.assert_array_equal(np.asarray(variable), value)
    np.testing.assert_array_equal(model.predict(TEXTS), first)
    assert all(cell.dropout == 0.5 for cell in core._flatten_layers() if hasattr(cell, "get_dropout_mask"))


def test_glove_serving_cuts_a_request_to_its_longest_text_in_one_chunk():
    """A recurrent network pays per time step whatever the batch: serving runs a request whole, cut to its longest
    text (not padded to sequence_length, nor in length-sorted chunks), and the probabilities stay those of the
    padded inputs (the padding is masked)."""
    backbone = backbones.build("glove_bilstm", {"units": 4, "max_tokens": 200}, 40, TEXTS)
    core = classifier.build_core(backbone, 2, "softmax")
    model = TextClassifier("glove_bilstm", ["a", "b"], head="softmax", preprocessor=backbone.preprocessor, core=core)
    assert model.layout.variable_length and not model.layout.chunked_serving
    texts = ["one", "two words", "", "a text of seven words in all"]
    inputs = backbone.preprocessor(tf.constant(texts))
    assert inputs.shape == (4, 40)
    assert classifier.trim_padding(inputs, model.layout).shape == (4, 7)
    assert classifier.trim_padding(inputs[2:3], model.layout).shape == (1, 1)  # An empty text: one masked step.
    padded = core(inputs, training=False)
    np.testing.assert_allclose(model.probabilities_of_request(texts), padded, atol=1e-6)
    np.testing.assert_allclose(classifier.run_core(core, inputs, model.layout), padded, atol=1e-6)


def graph_op_types(concrete):
    """The op types of a concrete function's graph, its nested functions' included."""
    types = {op.type for op in concrete.graph.get_operations()}
    for function in concrete.graph._functions.values():  # While-loop bodies and the like.
        types.update(node.op for node in function.definition.node_def)
    return types


def test_ngram_head_multiplies_the_sparse_features_without_densifying_them():
    """The TF-IDF stays sparse into the head's product: no [batch, vocabulary] matrix in the served graph (a
    Sequential head made itself a dense input: SparseToDense, then MatMul; 10,000 short texts in one request took
    5 GB). The probabilities are the dense computation's."""
    built = backbones.build("ngram_linear", {"max_tokens": 500}, None, TEXTS)
    core = classifier.build_core(built, 3, "softmax")
    function = classifier.probabilities_function(built.preprocessor, core,
                                                 backbones.input_layout("ngram_linear", built.preprocessor), "softmax")
    types = graph_op_types(function)
    assert not types & {"SparseToDense", "MatMul", "SparseTensorDenseMatMul"}, sorted(types)
    features = built.network(preprocess(built, TEXTS[:4]))["pooled_output"]
    head = core.get_layer("head")
    expected = keras.ops.softmax(tf.sparse.to_dense(features) @ head.weights[0] + head.weights[1])
    np.testing.assert_allclose(function(tf.constant(TEXTS[:4])).numpy(), np.asarray(expected), rtol=1e-5, atol=1e-6)
