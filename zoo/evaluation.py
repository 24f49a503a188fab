"""Evaluation on the test split: metrics (scikit-learn), confusion matrix and training-curve plots, report text."""

import json

import matplotlib

matplotlib.use("Agg")  # Files only, no display.

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn import metrics as sk_metrics  # noqa: E402

from zoo import runs  # noqa: E402


def compute_metrics(labels, probabilities, class_names):
    """Accuracy, macro-F1, per-class precision/recall/F1/support, confusion matrix, and ROC-AUC for binary tasks.

    Args:
        labels: int array [n]. True class ids.
        probabilities: float array [n, num_classes]. Predicted class probabilities.
        class_names: list of str.
    """
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape != (len(labels), len(class_names)):
        raise ValueError(f"Expected probabilities of shape ({len(labels)}, {len(class_names)}), received "
                         f"{probabilities.shape}.")
    ids = list(range(len(class_names)))
    predicted = probabilities.argmax(axis=1)
    report = sk_metrics.classification_report(labels, predicted, labels=ids, target_names=class_names,
                                              output_dict=True, zero_division=0)
    result = {
        "num_examples": int(len(labels)),
        "accuracy": float(sk_metrics.accuracy_score(labels, predicted)),
        "macro_f1": float(sk_metrics.f1_score(labels, predicted, labels=ids, average="macro", zero_division=0)),
        "weighted_f1": float(sk_metrics.f1_score(labels, predicted, labels=ids, average="weighted",
                                                 zero_division=0)),
        "per_class": {name: {"precision": float(report[name]["precision"]), "recall": float(report[name]["recall"]),
                             "f1": float(report[name]["f1-score"]), "support": int(report[name]["support"])}
                      for name in class_names},
        "confusion_matrix": sk_metrics.confusion_matrix(labels, predicted, labels=ids).tolist(),
        # float32 rows sum to 1 only within rounding; scikit-learn wants them exact.
        "log_loss": float(sk_metrics.log_loss(labels, probabilities / probabilities.sum(1, keepdims=True),
                                              labels=ids)),
    }
    if len(class_names) == 2:
        result["roc_auc"] = (float(sk_metrics.roc_auc_score(labels, probabilities[:, 1]))
                             if len(np.unique(labels)) == 2 else None)
    return result


def report_text(labels, probabilities, class_names, metrics):
    predicted = np.asarray(probabilities).argmax(axis=1)
    text = sk_metrics.classification_report(labels, predicted, labels=list(range(len(class_names))),
                                            target_names=class_names, digits=4, zero_division=0)
    lines = [text, f"accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}"]
    if metrics.get("roc_auc") is not None:
        lines.append(f"ROC-AUC {metrics['roc_auc']:.4f}")
    return "\n".join(lines) + "\n"


def plot_confusion_matrix(matrix, class_names, path, title="Confusion matrix (test)"):
    matrix = np.asarray(matrix)
    size = max(4.0, 0.5 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    shown = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(shown, ax=ax, fraction=0.046)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center",
                    color="white" if matrix[i, j] > threshold else "black", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_training_curves(history, path, title="Training curves"):
    """Loss and accuracy per epoch, train against validation."""
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for prefix, label in (("", "train"), ("val_", "validation")):
            values = [row.get(prefix + metric) for row in history]
            if any(v is not None for v in values):
                ax.plot(epochs, values, marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_predictions(path, labels, probabilities, class_names, texts):
    """One JSON line per test example: index in the test split, true and predicted label, probabilities."""
    with open(path, "w") as f:
        for i, (label, row, text) in enumerate(zip(labels, probabilities, texts)):
            f.write(json.dumps({
                "index": i, "label": class_names[int(label)], "predicted": class_names[int(np.argmax(row))],
                "probabilities": [round(float(p), 7) for p in row], "text_preview": text[:80],
            }) + "\n")


def write_evaluation(run_dir, labels, probabilities, class_names, texts, history, title):
    """Writes metrics.json's metric part, report.txt, the two PNGs and test_predictions.jsonl; returns metrics."""
    run = runs.RunDir(run_dir)
    metrics = compute_metrics(labels, probabilities, class_names)
    run.file(runs.REPORT).write_text(report_text(labels, probabilities, class_names, metrics))
    plot_confusion_matrix(metrics["confusion_matrix"], class_names, run.file(runs.CONFUSION_MATRIX),
                          title=f"{title}: confusion matrix (test)")
    plot_training_curves(history, run.file(runs.TRAINING_CURVES), title=title)
    write_predictions(run.file(runs.PREDICTIONS), labels, probabilities, class_names, texts)
    return metrics
