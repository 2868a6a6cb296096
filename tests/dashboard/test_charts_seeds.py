"""The grouped Compare view's chart builders: pure functions of data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.analysis import stats
from dashboard.charts import seeds as seed_charts


def _hist(acc, val):
    return pd.DataFrame({"epoch": [1, 2, 3], "accuracy": acc, "val_accuracy": val, "epoch_time": [5.0, 5.0, 5.0]})


def _entry(hists, smoothing=0.0):
    out = {}
    for split, col in (("train", "accuracy"), ("val", "val_accuracy")):
        out[split] = stats.curve_band(hists, col, smoothing=smoothing)
        out[f"{split}_raw"] = stats.curve_band(hists, col)
        out[f"{split}_seeds"] = [stats.curve_band([h], col, smoothing=smoothing) for h in hists]
    return out


def test_band_figure_draws_mean_band_and_faint_seeds():
    hists = [_hist([0.2, 0.4, 0.6], [0.1, 0.3, 0.5]), _hist([0.3, 0.5, 0.7], [0.2, 0.4, 0.6])]
    fig = seed_charts.band_figure({"adam": _entry(hists)}, "accuracy")
    by_meta = pd.Series([t.meta for t in fig.data]).value_counts().to_dict()
    assert by_meta == {"adam": 2, "adam band": 4, "adam seed": 4}  # no raw line: nothing is smoothed
    mean = next(t for t in fig.data if t.meta == "adam" and t.name == "train")
    assert list(mean.y) == pytest.approx([0.25, 0.45, 0.65])
    fill = [t for t in fig.data if t.meta == "adam band" and t.fill == "tonexty"]
    assert len(fill) == 2 and fill[0].fillcolor.startswith("rgba(")
    smoothed = seed_charts.band_figure({"adam": _entry(hists, smoothing=0.6)}, "accuracy")
    assert sum(t.meta == "adam raw" for t in smoothed.data) == 2  # the raw mean, faded, behind the smoothed one


def test_band_figure_with_one_seed_has_no_band_and_empty_says_so():
    fig = seed_charts.band_figure({"one": _entry([_hist([0.2, 0.4, 0.6], [0.1, 0.3, 0.5])])}, "accuracy")
    assert not [t for t in fig.data if t.meta == "one band"]
    empty = seed_charts.band_figure({}, "accuracy")
    assert empty.layout.annotations[0].text == "No epochs logged yet"


def test_seed_strip_and_per_class_bars():
    per_seed = pd.DataFrame({"configuration": ["a", "a", "a", "b"], "seed": [1, 2, 3, 1],
                             "test accuracy": [0.5, 0.6, 0.7, 0.4]})
    agg = pd.DataFrame({"configuration": ["a", "b"], "test accuracy": [0.6, 0.4],
                        "test accuracy CI low": [0.35, np.nan], "test accuracy CI high": [0.85, np.nan]})
    fig = seed_charts.seed_strip_figure(per_seed, agg, "test accuracy")
    dots = next(t for t in fig.data if t.name == "a seeds")
    assert list(dots.x) == [0.5, 0.6, 0.7] and list(dots.customdata) == [1, 2, 3]
    mean = next(t for t in fig.data if t.name == "a mean")
    assert mean.x[0] == 0.6 and mean.error_x.array[0] == pytest.approx(0.25)
    bars = seed_charts.per_class_band_figure({"a": {"class_names": ["happy", "sad"], "mean": [0.5, 0.7],
                                               "low": [0.4, np.nan], "high": [0.6, np.nan]}})
    assert list(bars.data[0].y) == [0.5, 0.7] and list(bars.data[0].error_y.array) == pytest.approx([0.1, 0.0])


def test_bands_and_error_bars_stay_inside_the_metrics_range():
    # Two seeds give a t-interval 12.7 standard errors wide: it reaches past 0 and 1, accuracy cannot.
    band = pd.DataFrame({"x": [1, 2], "mean": [0.1, 0.9], "low": [-0.3, 0.5], "high": [0.5, 1.4], "n": [2, 2]})
    fig = seed_charts.band_figure({"a": {"train": band}}, "accuracy")
    bounds = [t for t in fig.data if t.meta == "a band"]
    assert list(bounds[0].y) == [0.5, 1.0] and list(bounds[1].y) == [0.0, 0.5]
    loss = seed_charts.band_figure({"a": {"train": band.assign(high=[3.0, 4.0])}}, "loss")
    assert list([t for t in loss.data if t.meta == "a band"][0].y) == [3.0, 4.0]  # loss has no upper bound
    per_class = seed_charts.per_class_band_figure(
        {"a": {"class_names": ["happy", "sad"], "mean": [0.9, 0.1], "low": [0.5, -0.4], "high": [1.3, 0.6]}})
    bar = per_class.data[0]
    assert np.array(bar.error_y.array) == pytest.approx([0.1, 0.5])
    assert np.array(bar.error_y.arrayminus) == pytest.approx([0.4, 0.1])
