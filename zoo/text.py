"""Text helpers shared by the dataset loaders: decoding, whitespace keys, cleaning."""

import codecs
import html
import re

_WHITESPACE = re.compile(r"\s+")
_TAGS = re.compile(r"<[^>]{0,2000}>")
_PUNCTUATION = re.compile(r"[^\w\s]")

CLEANING_STEPS = ("html", "lower", "punctuation")

# The input limit: a text is cut after this many UTF-8 bytes where it enters the model (`zoo.classifier.preprocess`:
# training batches, cached features and served requests alike). A classifier reads far less, and one huge request
# must not take a server's or trainer's memory. A cut in the middle of a character leaves U+FFFD.
MAX_INPUT_BYTES = 1_000_000


def cut_to_input_limit(texts):
    """A string tensor's texts cut after MAX_INPUT_BYTES bytes, with invalid UTF-8 (a client's, or a cut's)
    repaired as U+FFFD so that no tokenizer fails on it. Applied once, by `zoo.classifier.preprocess`."""
    import tensorflow as tf  # The dataset loaders import this module without TensorFlow.

    texts = tf.strings.substr(texts, 0, MAX_INPUT_BYTES)
    return tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)


class DecodeCounter:
    """Decodes bytes (UTF-8 unless told otherwise), replacing bytes the encoding cannot read with U+FFFD, and counts
    the texts that needed it (reported, and warned about by `zoo.datasets.load`; never fatal)."""

    def __init__(self, encoding="utf-8"):
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ValueError(f"Unknown encoding {encoding!r}. Allowed: a Python codec name, e.g. utf-8, cp1252, "
                             f"latin-1, utf-16.")
        self.encoding = encoding
        self.texts_with_replacements = 0
        self.examples = []

    def _decode(self, data):
        try:
            return data.decode(self.encoding), False
        except UnicodeDecodeError:
            return data.decode(self.encoding, errors="replace"), True

    def _count(self, texts, where):
        self.texts_with_replacements += texts
        if len(self.examples) < 5:
            self.examples.append(where)

    def decode(self, data, where=""):
        """One text's bytes."""
        text, replaced = self._decode(data)
        if replaced:
            self._count(1, where)
        return text

    def decode_file(self, data, where=""):
        """A file of many texts, decoded whole: (its text, whether bytes were replaced); `count_texts` then counts
        its texts that hold a replacement."""
        del where
        return self._decode(data)

    def count_texts(self, texts, where=""):
        affected = sum("\ufffd" in t for t in texts)
        if affected:
            self._count(affected, where)

    def report(self):
        return {"encoding": self.encoding, "texts_with_undecodable_bytes": self.texts_with_replacements,
                "examples": self.examples}


def whitespace_key(text):
    """The key under which two texts count as duplicates: whitespace runs folded, ends stripped."""
    return _WHITESPACE.sub(" ", text).strip()


def strip_html(text):
    return html.unescape(_TAGS.sub(" ", text))


def clean_text(text, steps):
    """Applies cleaning steps in a fixed order. Allowed steps: CLEANING_STEPS."""
    unknown = set(steps) - set(CLEANING_STEPS)
    if unknown:
        raise ValueError(f"Unknown cleaning steps {sorted(unknown)}. Allowed: {list(CLEANING_STEPS)}.")
    if "html" in steps:
        text = strip_html(text)
    if "lower" in steps:
        text = text.lower()
    if "punctuation" in steps:
        text = _PUNCTUATION.sub(" ", text)
    return whitespace_key(text) if steps else text
