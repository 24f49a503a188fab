"""zoo.compat: the one module that reaches into Keras, keras-hub and TensorFlow internals.

Each upstream test below asserts the limitation a work-around exists for: when an upgrade removes it, the test
fails, and the work-around (and its test) can be deleted."""

import ast
import contextlib
import logging
import pathlib

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from zoo import compat

ROOT = pathlib.Path(__file__).resolve().parents[1]
# serving_check.py runs alone, as a serving host would, importing only tensorflow and tensorflow_text.
EXEMPT = {ROOT / "zoo" / "compat.py", ROOT / "zoo" / "serving_check.py"}
PRIVATE_MODULES = ("keras.src", "keras_hub.src", "tensorflow.python")

# Work-arounds whose upstream behaviour is checked by a test in another file (it runs them end to end).
CHECKED_ELSEWHERE = {
    "multi_worker_fit": "tests/test_training.py::test_multi_worker_*: two workers equal one worker's run",
    "cast_seed": "tests/test_backbones_and_heads.py: Dropout16 draws with Keras' own seeds",
    "convert_bert_weights": "tests/test_transformer_parity.py: minilm_l3 equals onnxruntime",
    "preset_file": "tests/test_assets.py: keras-hub preset sources",
    "all_layers": "used by rnn_dropout_off, whose test is here",
    "add_saved_model_asset": "tests/test_export.py: labels.txt in every export's assets/",
}


def private_uses(path):
    """(line, what) of every private name of another object or module used in a Python file: `x._name` where x is
    not self or cls, getattr/hasattr/setattr with a "_name" string, imports from private modules, an object's class
    changed (`x.__class__ = ...`), and in a class extending another library's class, a private method defined (an
    override of its base's, where the base has it) or a private attribute read that the class never sets (its
    base's)."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Attribute) and node.attr == "__class__" and isinstance(node.ctx, ast.Store):
            found.append((node.lineno, f"{ast.unparse(node)} = ..."))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
                "getattr", "hasattr", "setattr", "delattr") and len(node.args) > 1:
            name = node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str) and name.value.startswith("_") \
                    and not name.value.startswith("__"):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            found += [(node.lineno, f"import {m}") for m in modules if m.startswith(PRIVATE_MODULES)]
        elif isinstance(node, ast.ClassDef):
            found += inherited_private_uses(node, tree)
    return sorted(found)


LIBRARIES = {"keras": keras, "keras_hub": keras_hub, "tf": tf, "tensorflow": tf}


def library_base(base):
    """The class a base-class expression names where it is another library's (`keras.layers.Dense`), else None."""
    parts = ast.unparse(base).split(".")
    if parts[0] not in LIBRARIES:
        return None
    value = LIBRARIES[parts[0]]
    for part in parts[1:]:
        value = getattr(value, part, None)
    return value if isinstance(value, type) else None


def inherited_private_uses(node, tree):
    """A class's private names that are another library's: methods overriding a private one of its library base,
    and `self._name` read where the class (and the file's classes it extends) never set or define `_name`."""
    bases = [b for b in (library_base(b) for b in node.bases) if b is not None]
    local = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    family = [node] + [local[b.id] for b in node.bases if isinstance(b, ast.Name) and b.id in local]
    bases += [b for c in family[1:] for b in (library_base(b) for b in c.bases) if b is not None]
    if not bases:
        return []
    own = set()
    for c in family:
        for sub in ast.walk(c):
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                own.add(sub.name)
            elif isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Store) and isinstance(sub.value, ast.Name) \
                    and sub.value.id == "self":
                own.add(sub.attr)
    found = []
    for sub in ast.walk(node):
        private = lambda name: name.startswith("_") and not name.startswith("__")  # noqa: E731
        if isinstance(sub, ast.FunctionDef) and private(sub.name) and any(hasattr(b, sub.name) for b in bases):
            found.append((sub.lineno, f"{node.name}.{sub.name} overrides a private method"))
        elif isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id == "self" \
                and private(sub.attr) and sub.attr not in own:
            found.append((sub.lineno, f"{node.name} reads the inherited self.{sub.attr}"))
    return found


def test_no_module_but_compat_touches_private_names():
    files = [p for d in ("zoo", "recipes", "benchmarks") for p in sorted((ROOT / d).rglob("*.py"))
             if p not in EXEMPT]
    assert len(files) > 20
    offenders = {str(p.relative_to(ROOT)): uses for p in files if (uses := private_uses(p))}
    assert offenders == {}, f"private names used outside zoo/compat.py: {offenders}"


def test_the_scan_finds_what_it_must(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text("from keras.src.x import y\nimport tensorflow.python.ops\nself._ok = 1\nmodel._flatten_layers()\n"
                      "getattr(v, '_value', v)\nobj.__class__\nobj.__class__ = Other\n"
                      "class A(keras.layers.MultiHeadAttention):\n"
                      "    def _compute_attention(self, q):\n        return self._dropout + self._mine\n"
                      "    def _own_helper(self):\n        self._mine = 1\n"
                      "class B(A):\n    def call(self, x):\n        return self._mine + self._attention_axes\n")
    assert [what for _, what in private_uses(source)] == [
        "import keras.src.x", "import tensorflow.python.ops", "model._flatten_layers", "getattr(v, '_value', v)",
        "obj.__class__ = ...", "A._compute_attention overrides a private method",
        "A reads the inherited self._dropout", "B reads the inherited self._attention_axes"][:5] + [
        "A._compute_attention overrides a private method", "A reads the inherited self._dropout",
        "B reads the inherited self._attention_axes"]


def test_every_workaround_exists_and_is_checked():
    for name, (library, what, _) in compat.WORKAROUNDS.items():
        assert hasattr(compat, name), name
        assert library in compat.WRITTEN_FOR and what
    tests = (pathlib.Path(__file__).read_text())
    unchecked = [n for n in compat.WORKAROUNDS if n not in CHECKED_ELSEWHERE and f"def test_{n}" not in tests
                 and f"# checks {n}" not in tests]
    assert unchecked == []


def test_versions_are_those_written_for_and_others_are_named(monkeypatch, caplog):
    assert compat.check_versions() == {}  # uv.lock pins the versions the work-arounds were written for.
    monkeypatch.setitem(compat.WRITTEN_FOR, "keras", "3.14")
    monkeypatch.setattr(compat, "_warned", [])
    with caplog.at_level(logging.WARNING):
        assert compat.check_versions() == {"keras": keras.__version__.rsplit(".", 1)[0]}
    assert "Re-check" in caplog.text and "store_served_weights_once" in caplog.text
    assert "convert_bert_weights" not in caplog.text  # A keras-hub work-around.


def _saved_variable_count(path):
    return len([name for name, _ in tf.train.list_variables(str(path / "variables" / "variables"))
                if name.endswith(".ATTRIBUTES/VARIABLE_VALUE")])


@pytest.mark.parametrize("once", [False, True])
def test_store_served_weights_once(once, tmp_path):
    """Upstream (keras-team/keras#23553): without the work-around an export stores each weight twice."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda x: model(x), input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    if once:
        compat.store_served_weights_once(archive, tf.function(lambda x: model(x)).get_concrete_function(
            tf.TensorSpec([None, 3], tf.float32)))
    archive.write_out(str(tmp_path / "model"), verbose=False)
    assert _saved_variable_count(tmp_path / "model") == (2 if once else 4)


def test_rnn_dropout_off():
    """Upstream: Keras' LSTM draws dropout masks (moving its seed generator) at inference too."""
    inputs = keras.Input((4, 3))
    model = keras.Model(inputs, keras.layers.LSTM(2, dropout=0.5, recurrent_dropout=0.5, use_cudnn=False)(inputs))
    x = np.ones((1, 4, 3), np.float32)
    generators = [v for v in model.variables if "seed_generator" in v.path]
    assert generators

    def state():
        return [np.array(v.numpy()) for v in generators]

    before = state()
    model(x, training=False)
    assert any((a != b).any() for a, b in zip(before, state())), "Keras no longer draws masks at inference"
    before = state()
    with compat.rnn_dropout_off(model):
        model(x, training=False)
    assert all((a == b).all() for a, b in zip(before, state()))
    assert model.layers[-1].cell.dropout == 0.5  # Put back.


def test_set_feedforward_activation():
    """Upstream: keras-hub's BertBackbone takes no activation and runs the tanh GELU."""
    bert = keras_hub.models.BertBackbone(vocabulary_size=10, num_layers=1, num_heads=1, hidden_dim=4,
                                         intermediate_dim=8, max_sequence_length=8)
    assert "activation" not in bert.get_config()
    dense = bert.transformer_layers[0]._feedforward_intermediate_dense  # A private name, as compat uses it.
    x = tf.constant([[-1.0, 0.5]])
    np.testing.assert_allclose(dense.activation(x), keras.activations.gelu(x, approximate=True), atol=1e-6)
    compat.set_feedforward_activation(bert, keras.activations.relu)
    assert dense.activation is keras.activations.relu


def test_encoder_sublayers():
    """Upstream: keras-hub's TransformerEncoder keeps its attention and feed-forward layers in private attributes."""
    bert = keras_hub.models.BertBackbone(vocabulary_size=10, num_layers=2, num_heads=1, hidden_dim=4,
                                         intermediate_dim=8, max_sequence_length=8)
    found = compat.encoder_sublayers(bert)
    layer = bert.transformer_layers[1]
    assert found[1] == (layer._self_attention_layer,  # Private names, as compat uses them.
                        [layer._feedforward_intermediate_dense, layer._feedforward_output_dense])
    assert len(found) == 2 and type(found[0][0]) is keras.layers.MultiHeadAttention
    assert [d.units for d in found[0][1]] == [8, 4]


def test_FastAttention():
    """Upstream: MultiHeadAttention computes attention in its private `_compute_attention` (an override is called),
    and holds the scale, dropout and attention axes in the private attributes FastAttention reads."""
    scales = []

    class Plain(compat.FastAttention):
        def fast_attention(self, query, key, value, scale, keep=None, dropout=None):
            scales.append(float(scale))
            weights = tf.nn.softmax(tf.einsum("bqhd,bkhd->bhqk", query, key) * scale, axis=-1)
            return tf.einsum("bhqk,bkhd->bqhd", weights, value)

    stock = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)
    ours = Plain(num_heads=2, key_dim=3)
    x = np.random.default_rng(0).standard_normal((2, 5, 6)).astype("float32")
    expected = stock(x, x)
    ours(x, x)
    ours.set_weights(stock.get_weights())
    np.testing.assert_allclose(ours(x, x), expected, atol=1e-5)
    assert scales and scales[-1] == pytest.approx(1 / np.sqrt(3))
    calls = len(scales)
    np.testing.assert_allclose(ours(x, x, training=True), expected, atol=1e-5)  # Keras' own (no dropout here).
    assert len(scales) == calls


def test_become():
    """Upstream: Keras keeps no state by class beyond what a subclass adding kernels only shares (the object's
    layers, weights and config serve the subclass as they are). Checked end to end in test_fast_kernels.py."""
    class Doubled(keras.layers.Dense):
        def call(self, x):
            return 2 * super().call(x)

    layer = keras.layers.Dense(2, kernel_initializer="ones")
    x = np.ones((1, 3), "float32")
    before = layer(x)
    assert compat.become(layer, Doubled) is layer and isinstance(layer, Doubled)
    np.testing.assert_allclose(layer(x), 2 * before)
    with pytest.raises(TypeError, match="Dense cannot become a Dropout"):
        compat.become(keras.layers.Dense(2), keras.layers.Dropout)


def test_add_special_token():
    """Upstream: keras-hub's tokenizers register their special tokens with the private `_add_special_token`."""
    assert hasattr(keras_hub.tokenizers.Tokenizer, "_add_special_token")

    class Tokens(keras_hub.tokenizers.WordPieceTokenizer):
        def __init__(self, **kwargs):
            compat.add_special_token(self, "[CLS]", "cls_token")
            super().__init__(**kwargs)

    tokenizer = Tokens(vocabulary=["[PAD]", "[UNK]", "[CLS]", "word"], oov_token="[UNK]")
    assert tokenizer.cls_token == "[CLS]" and tokenizer.cls_token_id == 2


def test_wordpiece_from_file(tmp_path):
    """Upstream: keras-hub tokenizes with FastWordpiece (its vocabulary a graph constant); from the file, the ids
    are the same."""
    import tensorflow_text as tf_text

    # checks MAX_BYTES_PER_WORD too: the word limit the file's WordPiece shares with keras-hub's.
    vocabulary = ["[PAD]", "[UNK]", "the", "cat", "##s", "sat"]
    tokenizer = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=vocabulary, lowercase=True)
    assert isinstance(tokenizer._fast_word_piece, tf_text.FastWordpieceTokenizer)  # A private name, as compat.
    texts = tf.constant(["The cats sat", "dogs sat"])
    expected = _as_list(tokenizer(texts))
    path = tmp_path / "vocabulary.txt"
    path.write_text("\n".join(vocabulary) + "\n")
    assert _as_list(compat.wordpiece_from_file(tokenizer, path)(texts)) == expected == [[2, 3, 4, 5], [1, 5]]


def _as_list(ids):
    return ids.to_list() if hasattr(ids, "to_list") else [list(map(int, row)) for row in ids]


def test_adapted_idf():
    """Upstream: TextVectorization has no public IDF getter; the private one gives scikit-learn's smooth IDF."""
    layer = keras.layers.TextVectorization(output_mode="tf_idf")
    assert not hasattr(layer, "idf_weights")
    layer.adapt(["a b", "a c", "a"])
    vocabulary = layer.get_vocabulary()
    idf = dict(zip(vocabulary, compat.adapted_idf(layer)))
    # log(1 + n / (1 + df)), as Keras documents it.
    assert idf["a"] == pytest.approx(np.log(1 + 3 / 4)) and idf["b"] == pytest.approx(np.log(1 + 3 / 2))


def test_FusedAdamUpdate():
    """Upstream (keras-team/keras#19992): Keras' own Adam does not run TensorFlow's fused kernel."""
    from zoo import training

    def ops_of(optimizer):
        variable = keras.Variable(np.ones(3, np.float32))
        optimizer.build([variable])

        @tf.function
        def step():
            optimizer.apply([tf.ones(3)], [variable])

        graph = step.get_concrete_function().graph.as_graph_def()
        return {node.op for node in graph.node} | {node.op for f in graph.library.function for node in f.node_def}

    assert "ResourceApplyAdam" not in ops_of(keras.optimizers.Adam(1e-3))
    assert "ResourceApplyAdam" in ops_of(training.Adam(1e-3))


def test_untrack_layer():
    """Upstream: `del model.attribute` leaves the layer it held in the model's layers (and so in its saved files)."""
    class Holder(keras.layers.Layer):
        pass

    for untrack in (False, True):
        holder = Holder()
        holder.inner = keras.layers.Dense(2)
        if untrack:
            compat.untrack_layer(holder, holder.inner)
        del holder.inner
        assert len(holder._layers) == (0 if untrack else 1)


def test_set_op_determinism():
    """Upstream: TensorFlow exports no way to disable op determinism, and Keras compiles nothing with XLA while it is
    enabled (so the runtime picks one of the two: `training.xla_and_determinism`)."""
    assert not hasattr(tf.config.experimental, "disable_op_determinism")
    keras.utils.set_random_seed(1)
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    try:
        for deterministic in (True, False):
            compat.set_op_determinism(deterministic)
            with pytest.warns(UserWarning, match="jit_compile") if deterministic else contextlib.nullcontext():
                model.compile(optimizer="sgd", loss="mse", jit_compile=True)
            assert model.jit_compile is not deterministic
    finally:
        compat.set_op_determinism(True)
