"""Text helpers shared by the dataset loaders: decoding, whitespace keys, cleaning."""

import codecs
import html
import re
import threading

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


# One error handler for every decoder (registered once: codecs keeps each handler for the life of the process). It
# replaces as "replace" does and counts, per thread: a stream is decoded in the thread that reads it.
_REPLACE = "textzoo-replace"
_replacements = threading.local()


def _replace_and_count(error):
    _replacements.count = getattr(_replacements, "count", 0) + 1
    return "\ufffd", error.end


codecs.register_error(_REPLACE, _replace_and_count)


def _replacements_so_far():
    return getattr(_replacements, "count", 0)


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
        # Where the replacements counted in this thread stood when the last decoding began.
        self._since = _replacements_so_far()

    @property
    def _replaced(self):
        """Whether bytes were replaced since the last decoding began (a stream decodes ahead of its records)."""
        return _replacements_so_far() != self._since

    def _count(self, texts, where):
        self.texts_with_replacements += texts
        if len(self.examples) < 5:
            self.examples.append(where)

    def decode(self, data, where=""):
        """One text's bytes."""
        self._since = _replacements_so_far()
        text = data.decode(self.encoding, errors=_REPLACE)
        if self._replaced:
            self._count(1, where)
        return text

    def open(self, path, newline):
        """A text stream of the file at `path`, decoded with replacement: a UTF-8 byte-order mark (Excel's "CSV
        UTF-8") is skipped; `newline` is the one string that ends a line (`open`'s). `count_text` then counts each
        text read from it that holds a replacement."""
        self._since = _replacements_so_far()
        encoding = "utf-8-sig" if codecs.lookup(self.encoding).name == "utf-8" else self.encoding
        return open(path, encoding=encoding, errors=_REPLACE, newline=newline)

    def count_text(self, text, where=""):
        """Counts `text`, read from a stream of `open`, if it holds a replacement. The stream decodes ahead of what
        has been read, so a text read before any replacement happened holds none; after one, a U+FFFD in a text
        is counted as a replacement."""
        if self._replaced and "\ufffd" in text:
            self._count(1, where)

    def report(self):
        return {"encoding": self.encoding, "texts_with_undecodable_bytes": self.texts_with_replacements,
                "examples": self.examples}


_SURROGATE = re.compile("[\ud800-\udfff]")


def cut_text(text):
    """A Python string as `cut_to_input_limit` makes it in the graph: cut after MAX_INPUT_BYTES bytes of UTF-8,
    a character cut in two left as U+FFFD; a lone surrogate (JSON's "\\ud800" escapes decode to one, and no
    UTF-8 holds it) also becomes U+FFFD. The readers make each text so: a 10 MB field costs the memory of what the
    model reads, and no text fails to encode on its way to the model."""
    if _SURROGATE.search(text):
        text = text.encode("utf-8", errors="surrogatepass").decode("utf-8", errors="replace")
    if len(text) <= MAX_INPUT_BYTES // 4:
        return text
    data = text.encode("utf-8")
    return text if len(data) <= MAX_INPUT_BYTES else data[:MAX_INPUT_BYTES].decode("utf-8", errors="replace")


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
