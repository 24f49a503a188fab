"""`BertTokenizer`: keras-hub's WordPiece tokenizer with Hugging Face's BasicTokenizer normalization
(`basic_normalize`, which MPNet's tokenizer shares)."""

import keras
import keras_hub
import tensorflow as tf
import tensorflow_text as tf_text


def basic_normalize(inputs, uncased, strip_accents):
    """Hugging Face BasicTokenizer's normalization of strings, with core TensorFlow ops and tf-text's NormalizeUTF8:
    NUL, U+FFFD and control characters (not tab, newline, return) dropped, every whitespace character made a space
    (`_clean_text`); then, for uncased vocabularies, Unicode lowercasing, and accents stripped (NFD, marks
    removed)."""
    text = tf.convert_to_tensor(inputs, dtype=tf.string)
    text = tf.strings.regex_replace(text, r"[\t\n\r\p{Zs}]", " ")
    text = tf.strings.regex_replace(text, r"[\x{0}\x{FFFD}\p{Cc}\p{Cf}]", "")
    if uncased:
        text = tf.strings.lower(text, encoding="utf-8")
    if strip_accents:
        text = tf.strings.regex_replace(tf_text.normalize_utf8(text, "NFD"), r"\p{Mn}", "")
    return text


class HuggingFaceNormalization:
    """A keras-hub WordPiece tokenizer's mixin: Hugging Face BasicTokenizer's normalization (`basic_normalize`) runs
    before keras-hub's pretokenization, keras-hub's own lowercasing and accent stripping being off. `uncased`:
    whether the vocabulary is uncased (Hugging Face's `do_lower_case`); `hf_strip_accents`: its `strip_accents`
    (None: as `uncased`)."""

    def normalize_as_hugging_face(self, lowercase, strip_accents):
        self.uncased = bool(lowercase)
        self.hf_strip_accents = bool(lowercase) if strip_accents is None else bool(strip_accents)

    def tokenize(self, inputs):
        return super().tokenize(basic_normalize(inputs, self.uncased, self.hf_strip_accents))

    def get_config(self):
        config = super().get_config()
        config.update(lowercase=self.uncased, strip_accents=self.hf_strip_accents)
        return config


@keras.saving.register_keras_serializable(package="textzoo")
class BertTokenizer(HuggingFaceNormalization, keras_hub.models.BertTokenizer):
    """keras-hub's BertTokenizer (same vocabulary, splitting and WordPiece) whose text normalization is Hugging
    Face's BasicTokenizer's, with which BERT checkpoints were trained: control characters dropped and whitespace
    made spaces; for an uncased vocabulary, Unicode lowercasing then accents stripped (NFD, marks removed).

    keras-hub strips accents before it case-folds with NFKC, which recomposes what NFD split and rewrites more than
    case: Korean became [UNK] where Hugging Face gives its jamo, "ß" became "ss", "ﬁ" "fi", full-width digits
    ASCII ones (tests/test_transformer_parity.py compares the ids with Hugging Face's tokenizers). Here keras-hub's
    own lowercasing and accent stripping are off, and this normalization runs before its pretokenization, with core
    TensorFlow ops and tf-text's NormalizeUTF8 (both in TF Serving).

    Args:
        vocabulary: a vocabulary file or list, as keras-hub's.
        lowercase: bool. Whether the vocabulary is uncased (Hugging Face's `do_lower_case`).
        strip_accents: bool or None. Hugging Face's `strip_accents`; None: as `lowercase`.
        **kwargs: keras-hub BertTokenizer's other arguments.
    """

    def __init__(self, vocabulary=None, lowercase=False, strip_accents=None, **kwargs):
        super().__init__(vocabulary=vocabulary, lowercase=False, strip_accents=False, **kwargs)
        self.normalize_as_hugging_face(lowercase, strip_accents)
