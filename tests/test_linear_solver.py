"""ngram_linear's head solved to its optimum (zoo.training.linear_solver): the classifier is the logistic
regression scikit-learn solves on the same features, the penalty is chosen on validation, the export serves it."""

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from zoo import export
from zoo import text_classifier
from zoo.training import linear_solver

WORDS = {"sport": "match goal striker league coach", "money": "shares market profit bank loan",
         "music": "album band concert song guitar"}
COMMON = "the a today new said after with big one".split()


def texts_of(classes, per_class, seed):
    """Texts of overlapping topics (a shared vocabulary, a few words of the topic): not separable, so that the
    penalty matters."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(per_class):
        for label, name in enumerate(classes):
            topic = WORDS[name].split() if rng.random() < 0.75 else WORDS[classes[(label + 1) % len(classes)]].split()
            texts.append(" ".join([*rng.choice(topic, 2), *rng.choice(COMMON, 5), f"w{rng.integers(60)}"]))
            labels.append(name)
    return texts, labels


def solved(classes, head="auto", grid=(0.1, 1.0, 10.0)):
    classifier = text_classifier.TextClassifier(
        "ngram_linear", class_names=list(classes), head=head,
        backbone_options={"solver": "newton-cg", "C": list(grid), "max_tokens": 5000})
    train, validation = texts_of(classes, 60, 0), texts_of(classes, 30, 1)
    history = classifier.fit(*train, validation_data=validation)
    return classifier, train, validation, history


@pytest.mark.parametrize("classes, head", [(("sport", "money", "music"), "auto"), (("sport", "money"), "auto"),
                                           (("sport", "money"), "softmax")])
def test_the_head_is_the_logistic_regression_scikit_learn_solves_on_its_features(classes, head, tmp_path):
    classifier, train, validation, history = solved(classes, head)
    rows = history.rows
    assert [r["C"] for r in rows] == [0.1, 1.0, 10.0] and len(history.history["val_loss"]) == 3
    best = max(rows, key=lambda r: (r["val_accuracy"], -r["val_loss"]))
    assert history.best_epoch == best["epoch"]
    ids = [list(classes).index(label) for label in train[1]]
    reference = LogisticRegression(C=best["C"], solver="newton-cg", max_iter=1000).fit(
        linear_solver.features(classifier, train[0]), ids)
    expected = reference.predict_proba(linear_solver.features(classifier, validation[0]))
    probabilities = classifier.predict(validation[0])
    np.testing.assert_allclose(probabilities, expected, atol=2e-3)
    assert best["val_accuracy"] == pytest.approx(
        np.mean(probabilities.argmax(1) == [list(classes).index(label) for label in validation[1]]))
    if len(classes) == 3:  # The export serves it: the head is a Keras layer of the exported graph (once: ~8 s).
        path = export.export_classifier(classifier, tmp_path / "exports", "solved")
        assert json.loads((path / "export_info.json").read_text())["verification"]["ok"]


def test_the_penalty_is_scikit_learns_c_and_the_validation_split_chooses_it():
    _, _, _, history = solved(("sport", "money", "music"), grid=(1e-4, 1.0))
    strongest, weaker = history.rows
    assert strongest["val_loss"] == pytest.approx(np.log(3), abs=0.01)  # Almost no weight: almost uniform.
    assert weaker["val_loss"] < strongest["val_loss"] - 0.1
    assert history.best_epoch == max(history.rows, key=lambda r: (r["val_accuracy"], -r["val_loss"]))["epoch"]


@pytest.mark.parametrize("options, fields, message", [
    ({"solver": "newton-cg"}, {"head_hidden_units": [8]}, "solver=newton-cg solves a linear head"),
    ({"solver": "sgd"}, {}, "Unknown solver 'sgd'. Allowed: ['newton-cg', 'adam']"),
    ({"solver": "newton-cg", "C": [0, 1]}, {}, "C takes positive numbers"),
])
def test_bad_solver_settings_are_named(options, fields, message):
    classifier = text_classifier.TextClassifier("ngram_linear", class_names=["sport", "money"],
                                                backbone_options=options, **fields)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        classifier.fit(*texts_of(("sport", "money"), 10, 0), validation_data=texts_of(("sport", "money"), 5, 1))
