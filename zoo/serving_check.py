"""Checks an exported SavedModel the way a serving stack sees it. Imports only tensorflow and tensorflow_text.

    python zoo/serving_check.py EXPORT_DIR REQUEST_JSON

REQUEST_JSON: {"texts": [...], "expected": [[...], ...], "tolerance": 1e-5}. Prints one JSON line with "ok".

Checks:
(a) TF2: `tf.saved_model.load(...).signatures["serving_default"]` on the texts, against `expected`;
(b) TF1: a session loads the "serve" MetaGraph and runs the SignatureDef tensors by name, as TF Serving's C++ loader
    does, for both signatures;
(c) the op set: every op in the graph and its functions is a core TensorFlow op or a tensorflow_text op that
    tf-text 2.12.1 (linked into TF Serving 2.12-2.19) registers;
(d) awkward inputs: empty, whitespace, 1 MB, invalid UTF-8, emoji and CJK, batches of 0 and 1024: finite
    probabilities that sum to 1, labels equal to argmax;
(e) float32: no op of the graph or its functions takes or makes bfloat16 or float16 tensors.
It is run as a file in a fresh process: none of the project's code, keras or keras_hub is imported.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.framework import op_def_pb2  # noqa: E402
from tensorflow.core.protobuf import saved_model_pb2  # noqa: E402
from tensorflow.python.client import pywrap_tf_session  # noqa: E402


def registered_ops():
    buffer = pywrap_tf_session.TF_GetAllOpList()
    op_list = op_def_pb2.OpList()
    op_list.ParseFromString(buffer if isinstance(buffer, bytes) else pywrap_tf_session.TF_GetBuffer(buffer))
    return {op.name for op in op_list.op}


CORE_OPS = registered_ops()  # Before tensorflow_text registers its ops.

import tensorflow_text  # noqa: E402,F401  Registers the tf-text ops the graph needs.

# The tensorflow_text ops that tf-text 2.12.1 registers (TF Serving 2.12-2.19 link that version): the ops tf-text
# 2.21 registers whose names appear in the op libraries of the tensorflow-text==2.12.1 wheel. Not there:
# TFText>RoundRobinTrim, TFText>RoundRobinGenerateMasks, TFText>Utf8Binarize, RougeL.
TF_TEXT_2_12_1_OPS = frozenset([
    "CaseFoldUTF8", "ConstrainedSequence", "FastBertNormalize", "FastWordpieceTokenizeWithOffsets",
    "FindSourceOffsets", "MaxSpanningTree", "NormalizeUTF8", "NormalizeUTF8WithOffsetsMap", "PhraseTokenize",
    "RegexSplitWithOffsets", "SentenceFragments", "SentenceFragmentsV2", "SentencepieceDetokenizeOp",
    "SentencepieceIdToStringOp", "SentencepieceOp", "SentencepieceStringToIdOp", "SentencepieceTokenizeOp",
    "SentencepieceTokenizeWithOffsetsOp", "SentencepieceVocabSizeOp", "SplitMergeTokenizeWithOffsets",
    "TFText>BoiseTagsToOffsets", "TFText>ByteSplitByOffsets", "TFText>ByteSplitWithOffsets",
    "TFText>FastSentencepieceDetokenize", "TFText>FastSentencepieceTokenize", "TFText>FastWordpieceDetokenize",
    "TFText>NgramsStringJoin", "TFText>OffsetsToBoiseTags", "TFText>PhraseDetokenize",
    "TFText>WhitespaceTokenizeWithOffsetsV2", "TokenizerFromLogits", "UnicodeScriptTokenizeWithOffsets",
    "WhitespaceTokenizeWithOffsets", "WordpieceTokenizeWithOffsets",
])


def _graph_nodes(path):
    """Every node of the SavedModel's graphs and of their library functions, and the functions' names."""
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    nodes, functions = [], set()
    for meta_graph in proto.meta_graphs:
        nodes += meta_graph.graph_def.node
        for function in meta_graph.graph_def.library.function:
            nodes += function.node_def
            functions.add(function.signature.name)
    return nodes, functions


def graph_op_types(path):
    """Every op type in the SavedModel: graph nodes and the nodes of every library function."""
    nodes, functions = _graph_nodes(path)
    return {node.op for node in nodes} - functions  # Calls of library functions appear as ops named after them.


# An export computes in float32: a graph computing in these serves far slower than the float32 one on CPUs and
# builds without their kernels (docs/measurements.md#float32-exports); a serving host that has them rewrites the
# float32 graph at load time.
HALF_PRECISION = {"DT_BFLOAT16", "DT_HALF"}


def half_precision_ops(path):
    """{op type: sorted half-precision dtypes it takes or makes} over the graph and its functions (empty: float32)."""
    from tensorflow.core.framework import types_pb2

    found = {}
    for node in _graph_nodes(path)[0]:
        for attr in node.attr.values():
            dtypes = [attr.type] if attr.HasField("type") else list(attr.list.type)
            for dtype in dtypes:
                name = types_pb2.DataType.Name(dtype)
                if name in HALF_PRECISION:
                    found.setdefault(node.op, set()).add(name)
    return {op: sorted(names) for op, names in sorted(found.items())}


def check_probabilities(probabilities, labels, label_ids, class_names, what):
    problems = []
    if not np.isfinite(probabilities).all():
        problems.append(f"{what}: non-finite probabilities")
    if probabilities.size and not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4):
        problems.append(f"{what}: rows do not sum to 1")
    if len(label_ids) and not np.array_equal(label_ids, probabilities.argmax(axis=1)):
        problems.append(f"{what}: label_id differs from argmax")
    if len(labels) and [x.decode() for x in labels] != [class_names[i] for i in label_ids]:
        problems.append(f"{what}: label differs from class_names[label_id]")
    return problems


def main(path, request_file):
    with open(request_file) as f:
        request = json.load(f)
    texts, expected, tolerance = request["texts"], np.asarray(request["expected"]), request["tolerance"]
    with open(os.path.join(path, "assets", "labels.txt"), encoding="utf-8") as f:
        class_names = f.read().splitlines()
    report = {"problems": [], "tolerance": tolerance}
    check_graph(path, report)
    check_tf2(path, texts, expected, class_names, report)
    check_tf1(path, texts, expected, class_names, report)
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("keras_hub", "keras_nlp", "zoo", "recipes"))
    if leaked:
        report["problems"].append(f"the check imported project or keras-hub modules: {leaked}")
    report["ok"] = not report["problems"]
    print(json.dumps(report))
    return 0 if report["ok"] else 1


def check_graph(path, report):
    """(c) The op set TF Serving links, and float32 compute."""
    problems = report["problems"]
    ops = graph_op_types(path)
    foreign = sorted(op for op in ops if op not in CORE_OPS and op not in TF_TEXT_2_12_1_OPS)
    report["op_types"] = len(ops)
    report["tf_text_ops"] = sorted(op for op in ops if op not in CORE_OPS)
    if foreign:
        problems.append(f"ops not in core TensorFlow or tf-text 2.12.1: {foreign}")
    half = half_precision_ops(path)
    report["compute_dtype"] = "float32" if not half else "half precision"
    if half:
        problems.append(f"the graph computes in half precision (ops: {half}); an export must compute in float32")


def check_tf2(path, texts, expected, class_names, report):
    """(a) The TF2 signature on the request, and (d) on awkward inputs."""
    problems, tolerance = report["problems"], report["tolerance"]
    serve = tf.saved_model.load(path).signatures["serving_default"]
    out = serve(text=tf.constant(texts, dtype=tf.string))
    probabilities = out["probabilities"].numpy()
    report["tf2_max_abs_diff"] = float(np.abs(probabilities - expected).max())
    if report["tf2_max_abs_diff"] > tolerance:
        problems.append(f"TF2 outputs differ from the in-memory model by {report['tf2_max_abs_diff']}")
    problems += check_probabilities(probabilities, out["label"].numpy(), out["label_id"].numpy(), class_names, "TF2")
    awkward = [b"", b"   \n\t ", ("word " * 200_000).encode()[:1_000_000], b"\xff\xfe\xc3(", b"ok \xe2\x82",
               "\U0001F600\U0001F389 \u4e2d\u6587\u6587\u672c \ud55c\uad6d\uc5b4".encode()]
    for batch, what in ((awkward, "awkward inputs"), ([], "batch of 0"), ([b"a text"] * 1024, "batch of 1024")):
        result = serve(text=tf.constant(batch, dtype=tf.string, shape=[len(batch)]))
        p = result["probabilities"].numpy()
        if p.shape != (len(batch), len(class_names)):
            problems.append(f"{what}: probabilities of shape {p.shape}")
        problems += check_probabilities(p, result["label"].numpy(), result["label_id"].numpy(), class_names, what)


def check_tf1(path, texts, expected, class_names, report):
    """(b) A TF1 session running the SignatureDefs' tensors by name, as TF Serving's C++ loader does: Predict and
    Classify."""
    problems, tolerance = report["problems"], report["tolerance"]
    examples = [tf.train.Example(features=tf.train.Features(feature={"text": tf.train.Feature(
        bytes_list=tf.train.BytesList(value=[t.encode()]))})).SerializeToString() for t in texts]
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
        signature = meta_graph.signature_def["serving_default"]
        fetched = session.run({k: v.name for k, v in signature.outputs.items()},
                              feed_dict={signature.inputs["text"].name: texts})
        report["tf1_max_abs_diff"] = float(np.abs(fetched["probabilities"] - expected).max())
        if report["tf1_max_abs_diff"] > tolerance:
            problems.append(f"TF1 outputs differ from the in-memory model by {report['tf1_max_abs_diff']}")
        classify = meta_graph.signature_def["classify"]
        report["classify_method_name"] = classify.method_name
        if classify.method_name != "tensorflow/serving/classify":
            problems.append(f"classify signature has method_name {classify.method_name!r}")
        scored = session.run({k: v.name for k, v in classify.outputs.items()},
                             feed_dict={classify.inputs["inputs"].name: examples})
        report["classify_max_abs_diff"] = float(np.abs(scored["scores"] - expected).max())
        if report["classify_max_abs_diff"] > tolerance:
            problems.append(f"classify scores differ from the in-memory model by {report['classify_max_abs_diff']}")
        if [c.decode() for c in scored["classes"][0]] != class_names:
            problems.append("classify classes are not the class names")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
