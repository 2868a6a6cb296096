"""Time estimates: measured rates win over defaults, caps and input size change the cost, and a
search's bound counts every slot, the longer runs of the top third and the final retrain."""
from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd
import pytest

from core.analysis import estimate
from core.configs import presets

SIZES = {"synthetic": {"train": 2800, "val": 350, "test": 350}}


def test_measured_rates_are_medians_per_architecture_with_defaults_for_the_rest():
    runs = pd.DataFrame({"arch": ["resnet50", "resnet50", "resnet50", "vgg16"],
                         "images_per_sec": [10.0, 20.0, 60.0, math.nan]})
    assert estimate.measured_rates(runs) == {"resnet50": 20.0, "vgg16": estimate.DEFAULT_TRAIN_IMAGES_PER_SEC["vgg16"]}
    assert estimate.measured_rates(None) == estimate.DEFAULT_TRAIN_IMAGES_PER_SEC
    assert estimate.measured_rates(runs.iloc[:0]) == estimate.DEFAULT_TRAIN_IMAGES_PER_SEC


def test_split_totals_and_caps():
    counts = pd.DataFrame({"split": ["train", "train", "val", "test"], "class_name": ["a", "b", "a", "a"],
                           "count": [5, 7, 3, 4]})
    totals = estimate.split_totals(counts)
    assert totals == {"train": 12, "val": 3, "test": 4}
    cfg = presets.preset("scratch-adam", presets.base_config("resnet50", "x"))
    assert estimate.split_sizes(cfg, totals) == (12, 3)
    capped = replace(cfg, data=replace(cfg.data, max_train=10, max_eval=100))
    assert estimate.split_sizes(capped, totals) == (10, 3)
    assert estimate.split_sizes(cfg, None) == (0, 0)


def test_run_seconds_follow_epochs_images_and_pixels():
    cfg = presets.grid("synthetic", ["resnet50"], ["scratch-adam"], epochs=3, batch_size=32, input_size=48)[0]
    # 3 epochs x (2800 train + 350/3 val) + 350/3 test, at 35 images/s, plus start-up.
    expected = estimate.STARTUP_SECONDS + (3 * (2800 + 350 / 3) + 350 / 3) / 35.0
    assert estimate.estimate_seconds([cfg], SIZES, {"resnet50": 35.0}) == pytest.approx(expected)
    bigger = replace(cfg, model=replace(cfg.model, input_size=96))
    assert estimate.run_seconds(bigger, 35.0, 2800, 350) - estimate.STARTUP_SECONDS == \
        pytest.approx(4 * (expected - estimate.STARTUP_SECONDS))
    # Unknown dataset sizes cost only the start-up; two runs cost twice one.
    other = replace(cfg, data=replace(cfg.data, dataset="missing"))
    assert estimate.estimate_seconds([other], SIZES) == estimate.STARTUP_SECONDS
    assert estimate.estimate_seconds([cfg, cfg], SIZES, {"resnet50": 35.0}) == pytest.approx(2 * expected)


@pytest.mark.parametrize("seconds, text", [(45, "45 s"), (200, "3 min 20 s"), (3900, "1 h 05 min"),
                                           (59.6, "1 min 00 s")])
def test_format_duration(seconds, text):
    assert estimate.format_duration(seconds) == text


def test_evolve_estimate_counts_slots_long_runs_and_the_final_retrain():
    base = presets.base_config("resnet50", "synthetic", epochs=10)
    genes = {"arch": ("resnet50", "vgg16"), "input_size": (48, 96)}
    rates = {"resnet50": 30.0, "vgg16": 30.0}
    budget = {"epochs": 1, "max_train": 280, "max_eval": 70, "long_epochs": 3}
    # 6 slots plus 2 longer runs (the best third) per generation, 3 generations (0 to 2).
    est = estimate.evolve_estimate(base, "hyper", 6, 2, 8, budget, {"arch": "vgg16", "input_size": 48}, genes,
                                   SIZES, rates)
    short = replace(base, model=replace(base.model, arch="vgg16"),
                    data=replace(base.data, max_train=280, max_eval=70))
    per = estimate.estimate_seconds([replace(short, train=replace(short.train, epochs=1))], SIZES, rates)
    long = estimate.estimate_seconds([replace(short, train=replace(short.train, epochs=3))], SIZES, rates)
    final = estimate.estimate_seconds([replace(base, model=replace(base.model, arch="vgg16"))], SIZES, rates)
    assert est["trainings"] == 18 and est["long_trainings"] == 2 * 3
    assert est["per_training"] == pytest.approx(per) and est["final_seconds"] == pytest.approx(final)
    assert est["seconds"] == pytest.approx(18 * per + 6 * long + final)
    # Free input size: the mean over its choices, so dearer than 48 px alone.
    free = estimate.evolve_estimate(base, "hyper", 6, 2, 6, {**budget, "long_epochs": 0}, {"arch": "vgg16"},
                                    genes, SIZES, rates, retrain_best=False)
    assert free["long_trainings"] == 0 and free["final_seconds"] == 0.0 and free["per_training"] > per
    head = estimate.evolve_estimate(base, "head", 6, 2, 6, budget, {"arch": "vgg16", "input_size": 48}, genes,
                                    SIZES, rates)
    assert head["trainings"] == 0 and head["seconds"] == head["features_seconds"] == pytest.approx(per)
