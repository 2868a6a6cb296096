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
    def front(accuracy, cost):  # maximise accuracy, minimise cost
        return list(pareto.non_dominated(np.column_stack([np.asarray(accuracy, float), -np.asarray(cost, float)])))

    assert front(accuracy, cost) == [True, False, True, True, False, True, False]
    # Same cost, different accuracy: only the more accurate one.
    assert front([0.7, 0.6], [5, 5]) == [True, False]
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

    # Wall time varies from run to run and the frozen configuration ran once: its 38% is not resolved.
    got = pareto.cheapest_within_best(summary.reset_index(), "train_time_s")
    assert got["configuration"] == "resnet50/imagenet-frozen-adam" and got["fraction"] == pytest.approx(0.38)
    assert not got["resolved"]
    assert got["sentence"].startswith("resnet50/imagenet-frozen-adam and resnet50/imagenet-adam are tied")
    assert "one seed has no interval on its training time" in got["sentence"]
    # Latency: a t-interval across the three seeds, none for the single runs.
    lat = stats.t.interval(0.95, 2, loc=21.0, scale=stats.sem([20.0, 22.0, 21.0]))
    assert (best.latency_ms_per_face_low, best.latency_ms_per_face_high) == pytest.approx(lat)
    assert np.isnan(frozen.train_time_s_low)
    # FLOPs are deterministic: vgg16 spends more of them, so that difference counts with one run.
    assert (summary.loc["vgg16/scratch-adam"].train_flops_low, summary.loc["vgg16/scratch-adam"].train_flops_high) \
        == (5e12, 5e12)
    # By parameters nothing within the interval is smaller than the best: it says so.
    got = pareto.cheapest_within_best(summary.reset_index(), "params_total")
    assert got["configuration"] == "resnet50/imagenet-adam" and "nothing within its interval" in got["sentence"]


def _seeded(name: str, accuracy: list[float], seconds: list[float], flops: float = 3e12):
    return [(f"{name}{i}", name, "fer", a, t, flops, 20.0, 24e6) for i, (a, t) in enumerate(zip(accuracy, seconds))]


def test_one_percent_apart_in_wall_time_with_overlapping_intervals_is_not_a_trade_off():
    # Issue 27: scratch-rmsprop sat on the front because its mean training time was 1% shorter
    # (199.8 s against 202 s) on an axis spanning 2 s. Overlapping intervals on both axes: a tie.
    runs = _runs(_seeded("vgg16/scratch-adam", [0.30, 0.34, 0.32], [201.0, 203.5, 201.5])
                 + _seeded("vgg16/scratch-rmsprop", [0.29, 0.33, 0.31], [199.0, 201.2, 199.2]))
    summary = pareto.summarise_configurations(runs, {})
    assert summary.train_time_s.iloc[1] / summary.train_time_s.iloc[0] == pytest.approx(0.99, abs=0.002)
    front = pareto.resolved_front(summary, "train_time_s")
    assert list(front.front) == [True, True]
    assert list(front.tied_with) == [["vgg16/scratch-rmsprop"], ["vgg16/scratch-adam"]]
    got = pareto.cheapest_within_best(summary, "train_time_s")
    ties = pareto.ties_sentence(summary, front, "train_time_s")
    assert not got["resolved"] and "are tied" in got["sentence"] and "intervals across seeds overlap" in got["sentence"]
    assert "Tied on the front" in ties and "vgg16/scratch-adam and vgg16/scratch-rmsprop" in ties
    assert "trade-off" not in got["sentence"] + ties
    # The plain (unresolved) front would have called it a trade-off: each point is better on one axis.
    plain = np.column_stack([summary.test_accuracy, -summary.train_time_s])
    assert list(pareto.non_dominated(plain)) == [True, True]


def test_resolved_accuracy_with_tied_time_dominates_and_deterministic_costs_count_with_one_run():
    # Adam resolvably more accurate, rmsprop 1% faster within the noise: rmsprop is dominated.
    runs = _runs(_seeded("vgg16/scratch-adam", [0.60, 0.61, 0.62], [201.0, 203.5, 201.5])
                 + _seeded("vgg16/scratch-rmsprop", [0.30, 0.31, 0.32], [199.0, 201.2, 199.2]))
    summary = pareto.summarise_configurations(runs, {})
    front = pareto.resolved_front(summary, "train_time_s")
    assert list(front.front) == [True, False] and front.dominated_by.iloc[1] == ["vgg16/scratch-adam"]
    # Time resolved (intervals apart) in the other direction: a real trade-off, both on the front, no tie.
    runs = _runs(_seeded("vgg16/scratch-adam", [0.60, 0.61, 0.62], [300.0, 302.0, 301.0])
                 + _seeded("vgg16/scratch-rmsprop", [0.30, 0.31, 0.32], [100.0, 101.0, 102.0]))
    summary = pareto.summarise_configurations(runs, {})
    front = pareto.resolved_front(summary, "train_time_s")
    assert list(front.front) == [True, True] and list(front.tied_with) == [[], []]
    assert pareto.ties_sentence(summary, front, "train_time_s") == ""
    # One run each with overlapping bootstrap intervals: FLOPs (deterministic) decide, time cannot.
    runs = _runs([("a", "resnet50/scratch-adam", "fer", 0.50, 100.0, 4e12, 5.0, 24e6),
                  ("b", "vgg16/scratch-adam", "fer", 0.49, 90.0, 9e12, 4.0, 15e6)])
    summary = pareto.summarise_configurations(runs, {"a": (0.40, 0.60), "b": (0.39, 0.59)})
    assert list(pareto.resolved_front(summary, "train_flops").front) == [True, False]
    assert list(pareto.resolved_front(summary, "params_total").front) == [False, True]
    assert list(pareto.resolved_front(summary, "train_time_s").tied_with) == [["vgg16/scratch-adam"],
                                                                              ["resnet50/scratch-adam"]]
    got = pareto.cheapest_within_best(summary, "train_flops")
    assert got["resolved"] and "training FLOPs" in got["sentence"]


def test_units_use_si_prefixes():
    from core.analysis.units import format_cost, si

    assert si(1.024e13, "FLOP") == "10.2 TFLOP" and si(23.6e6) == "23.6 M" and si(float("nan")) == "not recorded"
    assert format_cost("train_flops", 1.024e13) == "10.2 TFLOP"
    assert format_cost("params_total", 23_587_712) == "23.6 M parameters"
    assert format_cost("train_time_s", 199.83) == "199.8 s" and format_cost("latency_ms_per_face", 5.123) == "5.12 ms"
