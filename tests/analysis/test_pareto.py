"""Accuracy against cost: the non-dominated set (ties included) and the sentence under the chart."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from core.analysis import pareto


def test_front_of_a_hand_made_set_with_ties():
    # (accuracy, cost):  A best and dearest; B dominated by C; C and D tie exactly (both stay);
    # E same accuracy as F but dearer (dominated); F cheapest; G has no cost (never on the front).
    accuracy = [0.80, 0.60, 0.70, 0.70, 0.50, 0.50, 0.90]
    cost = [100, 60, 50, 50, 30, 10, np.nan]
    mask = pareto.accuracy_cost_front(accuracy, cost)
    assert list(mask) == [True, False, True, True, False, True, False]
    # Same cost, different accuracy: only the more accurate one.
    assert list(pareto.accuracy_cost_front([0.7, 0.6], [5, 5])) == [True, False]
    # Three objectives: a point better in one is kept even if worse in the others.
    assert list(pareto.non_dominated([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]])) == [True, True, True, False]
    with pytest.raises(ValueError, match="2-D"):
        pareto.non_dominated([1, 2, 3])


def _runs(rows):
    # One configuration per label here: the repeat key stands in for RunStore's hash of the params.
    frame = pd.DataFrame(rows, columns=["run_id", "label", "dataset", "test_accuracy", *pareto.COSTS])
    return frame.assign(repeat_key=frame.label)


def test_runs_of_one_label_with_other_settings_are_not_averaged_as_seeds():
    runs = _runs([
        ("a1", "resnet50/imagenet-adam", "fer", 0.70, 100.0, 3e12, 20.0, 24e6),
        ("b1", "resnet50/imagenet-adam", "fer", 0.40, 10.0, 3e11, 20.0, 24e6),
    ]).assign(repeat_key=["a1b2c3d4e5f6", "f6e5d4c3b2a1"])  # e.g. the quick and the paper profile
    summary = pareto.summarise_configurations(runs, {"a1": (0.6, 0.8), "b1": (0.3, 0.5)})
    assert list(summary.n_runs) == [1, 1] and list(summary.test_accuracy) == [0.70, 0.40]
    assert list(summary.configuration) == ["resnet50/imagenet-adam · a1b2", "resnet50/imagenet-adam · f6e5"]


def test_configurations_across_seeds_and_the_cheapest_within_the_best_interval():
    runs = _runs([
        ("a1", "resnet50/imagenet-adam", "fer", 0.70, 100.0, 3e12, 20.0, 24e6),
        ("a2", "resnet50/imagenet-adam", "fer", 0.74, 120.0, 3e12, 22.0, 24e6),
        ("a3", "resnet50/imagenet-adam", "fer", 0.72, 110.0, 3e12, 21.0, 24e6),
        ("f1", "resnet50/imagenet-frozen-adam", "fer", 0.69, 41.8, 3e12, 20.0, 24e6),
        ("s1", "vgg16/scratch-adam", "fer", 0.55, 30.0, 5e12, 10.0, 15e6),
    ])
    summary = pareto.summarise_configurations(runs, {"f1": (0.66, 0.72), "s1": (0.52, 0.58)}).set_index(
        "configuration")
    best = summary.loc["resnet50/imagenet-adam"]
    acc = np.array([0.70, 0.74, 0.72])
    low, high = stats.t.interval(0.95, 2, loc=acc.mean(), scale=stats.sem(acc))
    assert best.n_runs == 3 and best.test_accuracy == pytest.approx(0.72)
    assert (best.ci_low, best.ci_high) == pytest.approx((low, high)) and "3 seeds" in best.interval
    assert best.train_time_s == pytest.approx(110.0)
    frozen = summary.loc["resnet50/imagenet-frozen-adam"]
    assert (frozen.ci_low, frozen.ci_high) == (0.66, 0.72) and frozen.interval == "bootstrap over test images"

    got = pareto.cheapest_within_best(summary.reset_index(), "train_time_s")
    assert got["configuration"] == "resnet50/imagenet-frozen-adam" and got["fraction"] == pytest.approx(0.38)
    assert got["sentence"].startswith("resnet50/imagenet-frozen-adam reaches the best accuracy's interval at 38% "
                                      "of its training time")
    # By parameters nothing within the interval is smaller than the best: it says so.
    got = pareto.cheapest_within_best(summary.reset_index(), "params_total")
    assert got["configuration"] == "resnet50/imagenet-adam" and "nothing within its interval" in got["sentence"]
