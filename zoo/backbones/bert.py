"""BERT backbones (keras-hub `BertBackbone`): `bert_small` (keras-hub's `bert_small_en_uncased`), `minilm_l6`
(all-MiniLM-L6-v2), `minilm_l3` (paraphrase-MiniLM-L3-v2) and `bert_base`.

Weights come from `zoo.pretrained.BERT_WEIGHTS` (keras-hub preset, else the registry package, else a local
checkpoint). `bert_base` without reachable weights falls back to random initialisation, flagged in the logs and in
`provenance["pretrained"] = False`, which every result file carries.
"""

import copy
import json
import logging
import pathlib

import keras_hub

from zoo import assets
from zoo import pretrained
from zoo import windows
from zoo.backbones.bert_backbone import BertBackbone
from zoo.backbones.bert_tokenizer import BertTokenizer
from zoo.backbones.transformer import TRUNCATE
from zoo.backbones.transformer import Transformer
from zoo.backbones.transformer import check_sequence_length

# bert-base-uncased shapes, for random initialisation when no weights can be had.
_RANDOM_ARCHITECTURES = {
    "bert_small": dict(num_layers=4, num_heads=8, hidden_dim=512, intermediate_dim=2048),
    "minilm_l6": dict(num_layers=6, num_heads=12, hidden_dim=384, intermediate_dim=1536),
    "minilm_l3": dict(num_layers=3, num_heads=12, hidden_dim=384, intermediate_dim=1536),
    "bert_base": dict(num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072),
}
_VOCABULARY_SIZE = 30522
_MAX_POSITIONS = 512


def _vocabulary_file():
    """bert-base-uncased WordPiece vocabulary, for a randomly initialised model (the MiniLM package ships it)."""
    directory, _ = pretrained.resolve_bert("minilm_l6")
    vocab = pathlib.Path(directory) / "vocab.txt"
    if not vocab.exists():
        vocab = next(iter(sorted(pathlib.Path(directory).rglob("vocabulary.txt"))))
    return str(vocab)


def _random_backbone(name, options, reason):
    logging.warning(
        "!!! %s: NO PRETRAINED WEIGHTS (%s). Using RANDOM INITIALISATION: results will be far below a "
        "pretrained BERT. Pass --backbone_options=weights_path=DIR with a keras-hub preset or a Hugging Face "
        "BERT checkpoint to fix this.", name, reason)
    tokenizer = BertTokenizer(vocabulary=_vocabulary_file(), lowercase=True)
    network = BertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=options["num_layers"],
        num_heads=options["num_heads"],
        hidden_dim=options["hidden_dim"],
        intermediate_dim=options["intermediate_dim"],
        dropout=options["dropout"],
        max_sequence_length=_MAX_POSITIONS,
    )
    provenance = {
        "pretrained": False,
        "source": "random initialisation",
        "warning": f"{name} uses RANDOM weights: {reason}",
        "architecture": {k: options[k] for k in _RANDOM_ARCHITECTURES[name]},
    }
    return tokenizer, network, provenance


def _tokenizer(directory):
    """The checkpoint's tokenizer (`BertTokenizer`): its vocabulary, casing and accent stripping from a Hugging Face
    directory's tokenizer_config.json, or from a keras-hub preset's tokenizer."""
    directory = pathlib.Path(directory)
    hf_config = directory / "tokenizer_config.json"
    if hf_config.exists() and (directory / "vocab.txt").exists():
        config = json.loads(hf_config.read_text())
        return BertTokenizer(vocabulary=str(directory / "vocab.txt"), lowercase=config.get("do_lower_case", True),
                             strip_accents=config.get("strip_accents"))
    try:
        preset = keras_hub.models.BertTokenizer.from_preset(str(directory))
    except Exception as e:  # A Hugging Face directory without tokenizer_config.json.
        config = json.loads((directory / "config.json").read_text()) if (directory / "config.json").exists() else {}
        lowercase = config.get("do_lower_case", "uncased" in str(directory).lower())
        logging.info("BertTokenizer.from_preset(%s) failed (%s); reading vocab.txt with lowercase=%s",
                     directory, e, lowercase)
        return BertTokenizer(vocabulary=str(directory / "vocab.txt"), lowercase=lowercase)
    return BertTokenizer(vocabulary=preset.get_vocabulary(), lowercase=preset.lowercase)


class Bert(Transformer):
    """BERT: keras-hub's BertBackbone (as `BertBackbone`, with the zoo's kernels) and its WordPiece tokenizer (as
    `BertTokenizer`, with Hugging Face's normalization), from the weights `pretrained.resolve_bert` finds for the
    name, or randomly initialised where asked (or, for bert_base, where none can be found)."""
    # The recipe fields each BERT trains with by default, as in Devlin et al.'s fine-tuning (AdamW, warm-up 10 %,
    # 2-4 epochs; lr 2e-5 to 5e-5 for BERT-base, higher for the small ones). What a budget changes is recipes/'s.
    SETTINGS = {
        **{name: {"sequence_length": 256, "batch_size": 32, "bucket_width": 32, "learning_rate": 1e-4, "epochs": 3,
                  "warmup_fraction": 0.1, "weight_decay": 0.01, "patience": 2}
           for name in ("bert_small", "minilm_l6", "minilm_l3")},
        "bert_base": {"sequence_length": 256, "batch_size": 16, "bucket_width": 32, "learning_rate": 3e-5,
                      "epochs": 3, "warmup_fraction": 0.1, "weight_decay": 0.01, "patience": 2},
    }

    def default_settings(self):
        return copy.deepcopy(self.SETTINGS[self.name])

    def default_options(self):
        return {
            # None: the registered sources of the name; or a keras-hub preset / Hugging Face checkpoint directory.
            "weights_path": None,
            # "auto": random initialisation only where no weights can be found (bert_base); True forces it.
            "random_init": "auto" if self.name == "bert_base" else False,
            # Architecture of a randomly initialised model (tests use tiny ones); ignored for pretrained weights.
            **_RANDOM_ARCHITECTURES[self.name],
            "dropout": 0.1,
            # "cls": keras-hub's pooled_output ([CLS] through BERT's pooler); "mean": the mean of sequence_output
            # over the real tokens; "auto": as the weights were trained (pretrained.resolve_bert says; cls for
            # random ones).
            "pooling": "auto",
            # "all": fine-tune everything. An integer k: embeddings and all but the top k transformer layers are
            # frozen, computed once per training example, and only the top k layers, the pooling and the head train
            # (0: the head alone, on the pooled features).
            "trainable_layers": "all",
            # Long texts as windows (`zoo.windows`): max_windows 1 cuts a text at the sequence length.
            **windows.OPTIONS,
        }

    def missing_weights(self):
        """Why no pretrained weights can be had here, and what to provide (None when they can be had): the
        benchmark skips the backbone then."""
        try:
            pretrained.resolve_bert(self.name)
        except Exception as e:  # Every failure to find weights is a reason to report, not to stop.
            local = next((s.env for s in pretrained.BERT_WEIGHTS[self.name].sources if getattr(s, "env", None)),
                         None)
            return (f"no pretrained {self.name} weights reachable (tried: {assets.tried(e)}); provide a keras-hub "
                    f"preset or a Hugging Face BERT checkpoint directory with --backbone_options=weights_path=DIR"
                    + (f" or ${local}" if local else ""))
        return None

    def build(self, options, sequence_length, train_texts=None):
        del train_texts  # The vocabulary comes with the weights.
        name = self.name
        if options["random_init"] is True:
            tokenizer, network, provenance = _random_backbone(name, options, "random_init=True was asked for")
        else:
            try:
                directory, provenance = pretrained.resolve_bert(name, path=options["weights_path"])
            except Exception as e:
                if options["random_init"] != "auto":
                    raise
                tokenizer, network, provenance = _random_backbone(name, options, f"weights not found: {e}")
            else:
                network = BertBackbone.of(
                    keras_hub.models.BertBackbone.from_preset(str(directory), dropout=options["dropout"]),
                    activation=provenance["activation"])
                tokenizer = _tokenizer(directory)
                provenance = {"pretrained": True, **provenance}
        check_sequence_length(sequence_length, network.max_sequence_length)
        preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
            tokenizer, sequence_length=sequence_length, truncate=TRUNCATE)
        provenance["lowercase"] = tokenizer.uncased
        return self.assemble(network, preprocessor, provenance, options, sequence_length)
