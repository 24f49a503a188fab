"""Cleaning up and splitting: de-duplication across splits, stratified seeded splits (and how many examples
they need), caps and balancing."""

import collections
import logging
import math

import numpy as np
from sklearn.model_selection import train_test_split

from zoo import text as text_lib
from zoo.datasets.base import DatasetError


def deduplicate(splits):
    """Removes exact duplicates (whitespace-folded) and texts with conflicting labels, across all splits.

    A text seen in several splits is kept in the first of test, validation, train, all: official test sets keep
    their size and nothing in them also appears in training data.

    Returns:
        (splits, report): the filtered splits, and the counts removed.
    """
    labels_by_key = collections.defaultdict(set)
    for texts, labels in splits.values():
        for t, y in zip(texts, labels):
            labels_by_key[text_lib.whitespace_key(t)].add(int(y))
    conflicting = {k for k, ys in labels_by_key.items() if len(ys) > 1}
    seen, out = set(), {}
    report = {"exact_duplicates_removed": 0, "conflicting_label_texts_dropped": 0, "duplicates_across_splits": 0}
    seen_in = {}
    for split in sorted(splits, key=lambda s: ("test", "validation", "train", "all").index(s)):
        texts, labels = splits[split]
        kept_t, kept_y = [], []
        for t, y in zip(texts, labels):
            key = text_lib.whitespace_key(t)
            if key in conflicting:
                report["conflicting_label_texts_dropped"] += 1
                continue
            if key in seen:
                report["exact_duplicates_removed"] += 1
                if seen_in[key] != split:
                    report["duplicates_across_splits"] += 1
                continue
            seen.add(key)
            seen_in[key] = split
            kept_t.append(t)
            kept_y.append(int(y))
        out[split] = (kept_t, kept_y)
    report["conflicting_label_keys"] = len(conflicting)
    return {s: out[s] for s in splits}, report


def examples_needed(classes, shares):
    """The fewest examples from which splits of these `shares` can be taken one after the other (each of the rest),
    stratified as scikit-learn does it (ceil(share x n) taken), every split and what is left with one example of
    each of `classes` classes."""
    total = classes
    while True:
        left, enough = total, True
        for share in shares:
            taken = math.ceil(share * left)
            left -= taken
            enough = enough and taken >= classes and left >= classes
        if enough:
            return total
        total += 1


def split_off(texts, labels, share, seed, class_names, where, split, needed):
    """(train texts, train labels, taken texts, taken labels, {class: count kept in train}): a stratified, seeded
    `share` of the examples taken as `split`. A class with a single example cannot be stratified: it stays in
    train, with a warning (Reuters R52's `platinum`), rather than stopping the run. Too few examples for a split
    with every class stop it with one line saying how many are needed (`needed`)."""
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=len(class_names))
    rare = [int(c) for c in np.flatnonzero((counts > 0) & (counts < 2))]
    kept = {class_names[c]: int(counts[c]) for c in rare}
    if kept:
        logging.warning("%s: classes with a single example stay in train, none in %s: %s.", where, split, kept)
    common = np.flatnonzero(~np.isin(labels, rare))
    classes = len(np.unique(labels[common]))
    taken = math.ceil(share * len(common))
    if not classes or taken < classes or len(common) - taken < classes:
        raise DatasetError(
            f"{where}: {len(common)} examples of {classes} classes are too few to take a stratified {split} split "
            f"({share:.0%}: {taken} examples) with each class in it and in train: it needs at least {needed} "
            "examples, or validation and test files of your own (validation_path=..., test_path=...).")
    train_index, taken_index = train_test_split(common, test_size=share, random_state=seed, stratify=labels[common])
    train_index = np.concatenate([train_index, np.flatnonzero(np.isin(labels, rare))])
    return ([texts[i] for i in train_index], labels[train_index].tolist(), [texts[i] for i in taken_index],
            labels[taken_index].tolist(), kept)


def check_two_classes(splits, class_names, where):
    """A classifier needs examples of at least two classes (after de-duplication)."""
    labels = np.concatenate([np.asarray(y, dtype=np.int64) for _, y in splits.values()])
    present = np.unique(labels)
    if len(present) < 2:
        found = {class_names[i]: int((labels == i).sum()) for i in present}
        raise DatasetError(f"{where}: a classifier needs examples of at least 2 classes, received "
                           f"{len(present)}: {found or 'no examples'}.")


def subsample(texts, labels, limit, seed):
    if limit is None or len(texts) <= limit:
        return texts, labels
    try:
        texts, _, labels, _ = train_test_split(texts, labels, train_size=limit, random_state=seed, stratify=labels)
    except ValueError:  # A class too small to stratify at this size: fall back to a seeded random sample.
        texts, _, labels, _ = train_test_split(texts, labels, train_size=limit, random_state=seed)
    return texts, labels


def downsample(texts, labels, seed):
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    smallest = np.bincount(labels)[np.bincount(labels) > 0].min()
    keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), smallest, replace=False)
                                   for c in np.unique(labels)]))
    return [texts[i] for i in keep], labels[keep].tolist()


