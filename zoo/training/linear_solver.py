"""A linear head solved to its optimum: multinomial (or binary) logistic regression with an L2 penalty on the
backbone's fixed features, the penalty chosen on the validation split.

For a backbone whose network trains nothing (`ngram_linear`: TF-IDF features), the classifier is exactly the
model family of logistic regression, and a few epochs of Adam stop short of that family's optimum (the TF-IDF +
LogisticRegression reference beat it on 20 Newsgroups). Here the features are computed once by the classifier's
own preprocessor and network (the very graph that is exported), scikit-learn's `LogisticRegression` (newton-cg, a
full-batch Newton method on the sparse matrix, as the reference) is solved from scratch for each inverse penalty `C`
of the grid (warm-started, newton-cg stopped at once: docs/measurements.md#ngram-solver), the one with the best
validation accuracy (then loss) is kept, and its coefficients become the head's Dense weights: the head stays a
Keras layer in the exported graph.
"""

import json
import logging
import time

import numpy as np
import tensorflow as tf
from scipy import sparse

from zoo import classifier as classifier_lib
from zoo import runs

SOLVERS = ("newton-cg", "adam")


def applies(classifier, options):
    """Whether `classifier` (its backbone `options` merged over the defaults) trains by this solver: a backbone
    with the `solver` option "newton-cg" (the others train by Keras' fit: "adam"); such a head must be linear."""
    solver = options.get("solver", "adam")
    if solver not in SOLVERS:
        raise ValueError(f"Unknown solver {solver!r}. Allowed: {list(SOLVERS)}.")
    if solver != "newton-cg":
        return False
    if classifier.head_hidden_units:
        raise ValueError(f"solver=newton-cg solves a linear head; received head_hidden_units="
                         f"{classifier.head_hidden_units}. Pass --head_hidden_units=none, or "
                         "--backbone_options=solver=adam.")
    return True


def features(classifier, texts, batch_size=512):
    """The network's pooled output of `texts` as a scipy CSR matrix (float32)."""
    network = classifier_lib.network_of(classifier.core)
    blocks = []
    for start in range(0, len(texts), batch_size):
        inputs = classifier_lib.preprocess(classifier.preprocessor, tf.constant(list(texts[start:start + batch_size])))
        pooled = network(inputs)["pooled_output"]
        if isinstance(pooled, tf.SparseTensor):
            indices = pooled.indices.numpy()
            blocks.append(sparse.csr_matrix((pooled.values.numpy(), (indices[:, 0], indices[:, 1])),
                                            shape=tuple(pooled.dense_shape.numpy())))
        else:
            blocks.append(sparse.csr_matrix(np.asarray(pooled)))
    return sparse.vstack(blocks, format="csr").astype(np.float32)


def penalties(options):
    """The grid of inverse L2 penalties (scikit-learn's C), smallest (the strongest penalty) first."""
    grid = options.get("C", 10.0)
    grid = sorted(float(c) for c in (grid if isinstance(grid, (list, tuple)) else [grid]))
    if not grid or min(grid) <= 0:
        raise ValueError(f"C takes positive numbers (a grid as C=1+10+100), received {options.get('C')!r}.")
    return grid


def fit_head(classifier, options, train, validation, run_dir, class_weight=None, stages=lambda name, **d: None):
    """Solves `classifier`'s linear head on `train` (texts, label ids) for each C of `penalties(options)`, keeps
    the C with the best `validation` accuracy (ties: the lower loss), sets the head's weights and writes one
    history row per C to `run_dir`'s history. Returns (history rows, best row's epoch, seconds computing the
    features)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score
    from sklearn.metrics import log_loss

    started = time.time()
    stages("computing the features", examples=len(train[0]) + len(validation[0]))
    x_train, x_validation = features(classifier, train[0]), features(classifier, validation[0])
    feature_seconds = time.time() - started
    grid = penalties(options)
    stages("training", epochs=len(grid), steps=1)
    classes = np.arange(len(classifier.class_names))
    model = LogisticRegression(solver="newton-cg", max_iter=1000, class_weight=class_weight)
    rows, solutions = [], []
    for epoch, c in enumerate(grid, start=1):
        model.set_params(C=c)
        model.fit(x_train, train[1])
        solutions.append((model.coef_.copy(), model.intercept_.copy()))
        row = {"epoch": epoch, "C": c}
        for prefix, x, y in (("", x_train, train[1]), ("val_", x_validation, validation[1])):
            p = model.predict_proba(x)
            row[f"{prefix}loss"] = float(log_loss(y, p, labels=classes))
            row[f"{prefix}accuracy"] = float(accuracy_score(y, model.classes_[p.argmax(1)]))
        rows.append({**row, "solver_iterations": int(np.max(model.n_iter_)), "seconds": time.time() - started})
        logging.info("C=%g: val_accuracy %.4f, val_loss %.4f (%d iterations)", c, row["val_accuracy"],
                     row["val_loss"], rows[-1]["solver_iterations"])
    best = max(range(len(rows)), key=lambda i: (rows[i]["val_accuracy"], -rows[i]["val_loss"]))
    _set_head(classifier, *solutions[best], model.classes_)
    history = runs.RunDir(run_dir).history_file
    history.parent.mkdir(parents=True, exist_ok=True)
    history.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows, rows[best]["epoch"], feature_seconds


def _set_head(classifier, coef, intercept, present):
    """The head's output Dense from scikit-learn's coefficients: [classes or 1, features] for the classes seen in
    training (`present`); a softmax head over two classes gets the binary solution split evenly between them."""
    layer = classifier.core.get_layer("head").get_layer("probabilities")
    kernel, bias = np.zeros(layer.kernel.shape, np.float32), np.zeros(layer.bias.shape, np.float32)
    if coef.shape[0] == 1 and kernel.shape[1] == 1:  # Sigmoid head, binary solution.
        kernel[:, 0], bias[0] = coef[0], intercept[0]
    elif coef.shape[0] == 1:  # Softmax over two classes: logits -z/2 and z/2 give the same probabilities.
        kernel[:, present[0]], kernel[:, present[1]] = -coef[0] / 2, coef[0] / 2
        bias[present[0]], bias[present[1]] = -intercept[0] / 2, intercept[0] / 2
    else:
        # A class absent from training gets a very negative bias: never predicted, as scikit-learn would not.
        bias[:] = -1e4
        kernel[:, present], bias[present] = coef.T, intercept
    layer.set_weights([kernel, bias])
