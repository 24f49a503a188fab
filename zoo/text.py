"""Text helpers shared by the dataset loaders: decoding, whitespace keys, cleaning."""

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
    """Decodes bytes as UTF-8, replacing bad bytes, and counts how many texts needed it (reported, never fatal)."""

    def __init__(self):
        self.texts_with_replacements = 0
        self.examples = []

    def decode(self, data, where=""):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self.texts_with_replacements += 1
            if len(self.examples) < 5:
                self.examples.append(where)
            return data.decode("utf-8", errors="replace")

    def report(self):
        return {"texts_with_undecodable_bytes": self.texts_with_replacements, "examples": self.examples}


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
