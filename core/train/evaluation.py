"""Evaluation on the test split: numbers and arrays only (plots live in the dashboard)."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def classification_report(y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str]) -> dict:
    """Accuracy, loss, macro-F1, per-class P/R/F1/support and the confusion matrix.

    ``probs`` are softmax outputs (N, K); predictions are their argmax.
    """
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    k = len(class_names)
    if probs.ndim != 2 or probs.shape != (len(y_true), k):
        raise ValueError(f"probs must have shape ({len(y_true)}, {k}); got {probs.shape}")
    y_pred = probs.argmax(axis=1)
    labels = list(range(k))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    eps = 1e-7
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(y_true)), y_true], eps, 1.0))))
    present = [c for c in labels if s[c] > 0]
    return {
        "class_names": list(class_names),
        "n": int(len(y_true)),
        "accuracy": float(np.mean(y_pred == y_true)) if len(y_true) else float("nan"),
        "loss": loss,
        # Macro-F1 over classes present in the test set: an absent class has no F1 to average.
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "per_class": {"precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist(), "support": s.tolist()},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def bootstrap_ci(y_true: np.ndarray, y_pred: np.ndarray, n_boot: int = 2000, alpha: float = 0.05,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval for accuracy (resampling test images)."""
    correct = (np.asarray(y_true) == np.asarray(y_pred)).astype(np.float64)
    if correct.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, correct.size, size=(n_boot, correct.size))
    accs = correct[idx].mean(axis=1)
    return float(np.quantile(accs, alpha / 2)), float(np.quantile(accs, 1 - alpha / 2))


def mcnemar(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> dict:
    """McNemar's test for two classifiers on the same test images.

    Exact binomial p-value when the discordant count is small (< 25), chi-square with
    continuity correction otherwise. ``b``: A right and B wrong; ``c``: A wrong and B right.
    """
    y_true, pred_a, pred_b = map(np.asarray, (y_true, pred_a, pred_b))
    if not (len(y_true) == len(pred_a) == len(pred_b)):
        raise ValueError("McNemar needs predictions for the same test images "
                         f"(got {len(y_true)}, {len(pred_a)}, {len(pred_b)} samples)")
    a_ok, b_ok = pred_a == y_true, pred_b == y_true
    b = int(np.sum(a_ok & ~b_ok))
    c = int(np.sum(~a_ok & b_ok))
    n = b + c
    if n == 0:
        return {"b": b, "c": c, "statistic": 0.0, "p_value": 1.0, "method": "exact"}
    if n < 25:
        from scipy.stats import binomtest

        return {"b": b, "c": c, "statistic": float(min(b, c)), "method": "exact",
                "p_value": float(binomtest(min(b, c), n, 0.5).pvalue)}
    from scipy.stats import chi2

    stat = (abs(b - c) - 1) ** 2 / n
    return {"b": b, "c": c, "statistic": float(stat), "p_value": float(chi2.sf(stat, 1)), "method": "chi2"}


def describe_mcnemar(name_a: str, name_b: str, result: dict, alpha: float = 0.05) -> str:
    """The test's outcome in plain words."""
    b, c, p = result["b"], result["c"], result["p_value"]
    base = (f"{name_a} was right where {name_b} was wrong on {b} test images; the reverse happened on {c}. ")
    if b + c == 0:
        return base + "The two models made exactly the same mistakes, so there is no difference to test."
    better = name_a if b > c else name_b
    if p < alpha:
        return base + (f"That imbalance is statistically significant (McNemar {result['method']}, p = {p:.3g} "
                       f"< {alpha}): {better} is genuinely more accurate on this test set.")
    return base + (f"That difference could easily be chance (McNemar {result['method']}, p = {p:.3g} >= {alpha}): "
                   "the test set does not show that either model is better.")


def predict_probs(model, dataset) -> np.ndarray:
    """Softmax outputs for a batched tf.data dataset of (image, label)."""
    return np.asarray(model.predict(dataset, verbose=0), dtype=np.float32)
