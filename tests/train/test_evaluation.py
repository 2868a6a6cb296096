"""Evaluation numbers on hand-made labels."""
from __future__ import annotations

import numpy as np
import pytest

from core.train import evaluation


def one_hot_probs(pred, k):
    p = np.full((len(pred), k), 0.1 / (k - 1))
    p[np.arange(len(pred)), pred] = 0.9
    return p


def test_report_on_hand_made_labels():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 0])
    r = evaluation.classification_report(y_true, one_hot_probs(y_pred, 3), ["a", "b", "c"])
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    # class a: P = 2/3, R = 2/3; class b: P = 2/3, R = 1; class c: never predicted.
    assert r["per_class"]["precision"] == pytest.approx([2 / 3, 2 / 3, 0.0])
    assert r["per_class"]["recall"] == pytest.approx([2 / 3, 1.0, 0.0])
    assert r["per_class"]["support"] == [3, 2, 1]
    f1 = [2 / 3, 0.8, 0.0]
    assert r["macro_f1"] == pytest.approx(np.mean(f1))
    assert r["loss"] == pytest.approx(-np.mean(np.log([0.9, 0.9, 0.05, 0.9, 0.9, 0.05])))


def test_report_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"shape \(3, 2\)"):
        evaluation.classification_report(np.array([0, 1, 1]), np.ones((3, 3)) / 3, ["a", "b"])


def test_bootstrap_interval_contains_accuracy_and_narrows_with_n():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 400)
    pred = np.where(rng.random(400) < 0.7, y, (y + 1) % 7)
    low, high = evaluation.bootstrap_ci(y, pred)
    acc = np.mean(y == pred)
    assert low < acc < high
    low_small, high_small = evaluation.bootstrap_ci(y[:50], pred[:50])
    assert high_small - low_small > high - low


def test_mcnemar_exact_and_chi2():
    y = np.zeros(100, dtype=int)
    a = np.zeros(100, dtype=int)
    b = np.zeros(100, dtype=int)
    b[:10] = 1  # A right, B wrong on 10; never the reverse
    r = evaluation.mcnemar(y, a, b)
    assert (r["b"], r["c"], r["method"]) == (10, 0, "exact")
    assert r["p_value"] == pytest.approx(2 * 0.5 ** 10)
    assert "significant" in evaluation.describe_mcnemar("A", "B", r) and "A is genuinely" in evaluation.describe_mcnemar("A", "B", r)
    b[:] = 0
    b[:20] = 1
    a[20:35] = 1  # 20 vs 15 discordant
    r = evaluation.mcnemar(y, a, b)
    assert r["method"] == "chi2" and r["p_value"] > 0.05
    assert "could easily be chance" in evaluation.describe_mcnemar("A", "B", r)


def test_mcnemar_identical_models():
    y = np.array([0, 1, 2])
    r = evaluation.mcnemar(y, y, y)
    assert r["p_value"] == 1.0
    assert "same mistakes" in evaluation.describe_mcnemar("A", "B", r)
