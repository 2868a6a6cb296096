"""Tests for the dashboard's figure builders: the figure specs a user would notice."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.offline
import pytest

from dashboard.charts import data as data_charts
from dashboard.charts import evolve as evolve_charts
from dashboard.charts import predict as predict_charts
from dashboard.charts import runs as run_charts
from dashboard.charts.common import PALETTE, run_colors
from dashboard.charts.pareto import pareto_figure
from dashboard.charts.report import report_html

CLASSES = ["angry", "happy", "sad"]


def _history(acc: list[float], val_acc: list[float]) -> pd.DataFrame:
    n = len(acc)
    return pd.DataFrame(
        {
            "epoch": np.arange(1, n + 1),
            "loss": np.linspace(2.0, 1.0, n),
            "accuracy": acc,
            "val_loss": np.linspace(2.1, 1.2, n),
            "val_accuracy": val_acc,
            "learning_rate": [1e-3] * n,
            "epoch_time": [10.0] * n,
            "images_per_sec": [12.5] * n,
        }
    )


def _report(f1: list[float], classes: list[str] = CLASSES) -> dict:
    return {
        "class_names": classes,
        "accuracy": 0.5,
        "loss": 1.2,
        "macro_f1": float(np.mean(f1)),
        "per_class": {"precision": f1, "recall": f1, "f1": f1, "support": [10] * len(f1)},
        "confusion_matrix": np.eye(len(classes), dtype=int).tolist(),
    }


def _annotation_texts(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


# --- colours -------------------------------------------------------------------------


def test_run_colors_deterministic_distinct_and_order_independent():
    labels = [f"{a}/{c}" for a in ("resnet50", "vgg16") for c in
              ("imagenet-adam", "imagenet-rmsprop", "scratch-adam", "scratch-rmsprop", "imagenet-frozen-adam")]
    colors = run_colors(labels)
    assert set(colors) == set(labels)
    assert len(set(colors.values())) == len(labels)  # ten runs, ten distinct colours
    assert run_colors(list(reversed(labels))) == colors
    assert all(c in PALETTE for c in colors.values())


def test_run_colors_stable_for_a_run_shown_alone():
    # A run shown alone gets its preferred slot, the same one it usually gets in a group.
    assert run_colors(["vgg16/scratch-adam"]) == run_colors(["vgg16/scratch-adam"])
    assert run_colors([]) == {}


# --- curves ----------------------------------------------------------------------------


def test_curves_two_runs_give_train_solid_and_val_dashed_in_run_colour():
    histories = {
        "resnet50/imagenet-adam": _history([0.3, 0.5, 0.6], [0.25, 0.45, 0.55]),
        "vgg16/scratch-adam": _history([0.2, 0.3], [0.18, 0.28]),
    }
    fig = run_charts.curves_figure(histories, "accuracy")
    colors = run_colors(list(histories))
    assert len(fig.data) == 4
    for i, (run, hist) in enumerate(histories.items()):
        train, val = fig.data[2 * i], fig.data[2 * i + 1]
        assert train.line.dash == "solid" and val.line.dash == "dash"
        assert train.line.color == val.line.color == colors[run]
        assert train.legendgroup == val.legendgroup == run
        np.testing.assert_allclose(np.asarray(train.y), hist["accuracy"])
        np.testing.assert_allclose(np.asarray(val.y), hist["val_accuracy"])
        np.testing.assert_array_equal(np.asarray(train.x), hist["epoch"])
        assert train.meta == run and "%{meta}" in train.hovertemplate and "epoch %{x}" in train.hovertemplate
    assert fig.layout.xaxis.title.text == "Epoch"


def test_curves_skip_empty_run_and_missing_validation():
    running = _history([0.3], [np.nan])
    histories = {"a": running, "b": _history([], []), "c": pd.DataFrame()}
    fig = run_charts.curves_figure(histories, "accuracy")
    assert len(fig.data) == 1 and fig.data[0].name == "train"


@pytest.mark.parametrize("histories", [{}, {"a": pd.DataFrame(columns=["epoch", "accuracy"])}])
def test_curves_empty_gives_annotated_figure(histories):
    fig = run_charts.curves_figure(histories)
    assert len(fig.data) == 0
    assert _annotation_texts(fig) == ["No epochs logged yet"]


def test_pinned_colors_override_the_default():
    fig = run_charts.curves_figure({"a": _history([0.1], [0.1])}, colors={"a": "#123456"})
    assert fig.data[0].line.color == "#123456"


# --- confusion matrix ------------------------------------------------------------------


def test_confusion_normalised_rows_sum_to_one_and_zero_support_row_is_zero():
    cm = [[8, 2, 0], [0, 0, 0], [1, 1, 2]]
    fig = run_charts.confusion_figure(cm, CLASSES, normalize=True, title="resnet50")
    heat = fig.data[0]
    z = np.asarray(heat.z, dtype=float)
    expected = np.array([[0.8, 0.2, 0.0], [0.0, 0.0, 0.0], [0.25, 0.25, 0.5]])
    np.testing.assert_allclose(z, expected)
    np.testing.assert_allclose(z[[0, 2]].sum(axis=1), 1.0)
    assert not np.isnan(z).any()
    assert [list(r) for r in heat.text] == [["0.80", "0.20", "0.00"], ["0.00", "0.00", "0.00"],
                                            ["0.25", "0.25", "0.50"]]
    assert list(heat.x) == CLASSES and list(heat.y) == CLASSES
    assert fig.layout.yaxis.autorange == "reversed"  # first class at the top
    assert fig.layout.xaxis.title.text == "Predicted" and fig.layout.yaxis.title.text == "True"
    assert fig.layout.title.text == "resnet50"
    np.testing.assert_array_equal(np.asarray(heat.customdata), np.asarray(cm))  # counts in hover


def test_confusion_counts_annotated_as_integers():
    cm = np.array([[3, 1], [0, 5]])
    heat = run_charts.confusion_figure(cm, ["a", "b"]).data[0]
    np.testing.assert_array_equal(np.asarray(heat.z), cm)
    assert [list(r) for r in heat.text] == [["3", "1"], ["0", "5"]]


def test_confusion_shape_mismatch_names_the_shape():
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        run_charts.confusion_figure([[1, 0], [0, 1]], CLASSES)


def test_confusion_empty_gives_annotated_figure():
    fig = run_charts.confusion_figure([], [])
    assert len(fig.data) == 0 and _annotation_texts(fig)


# --- per-class bars --------------------------------------------------------------------


def test_per_class_one_trace_per_run_with_f1_values():
    reports = {"r1": _report([0.5, 0.9, 0.4]), "r2": _report([0.6, 0.8, 0.3])}
    fig = run_charts.per_class_figure(reports, "f1")
    colors = run_colors(list(reports))
    assert [t.name for t in fig.data] == ["r1", "r2"]
    for trace, (run, report) in zip(fig.data, reports.items()):
        assert list(trace.x) == CLASSES
        np.testing.assert_allclose(np.asarray(trace.y, dtype=float), report["per_class"]["f1"])
        assert trace.marker.color == colors[run]
    assert fig.layout.barmode == "group"
    assert tuple(fig.layout.yaxis.range) == (0, 1)


def test_per_class_aligns_runs_with_different_classes_by_name():
    fig = run_charts.per_class_figure({"r1": _report([0.5, 0.9, 0.4]), "r2": _report([0.7, 0.1], ["sad", "fear"])})
    assert list(fig.data[1].x) == ["angry", "happy", "sad", "fear"]
    y = np.asarray(fig.data[1].y, dtype=float)
    assert np.isnan(y[:2]).all() and y[2] == 0.7 and y[3] == 0.1


def test_per_class_rejects_support_and_handles_empty():
    with pytest.raises(ValueError, match="support"):
        run_charts.per_class_figure({"r1": _report([0.5, 0.9, 0.4])}, "support")
    assert _annotation_texts(run_charts.per_class_figure({})) == ["No test reports yet"]


# --- dataset counts, probabilities, fitness -------------------------------------------


def test_dataset_counts_one_trace_per_split_in_natural_order():
    counts = pd.DataFrame(
        {
            "split": ["test", "train", "train", "validation", "test", "train"],
            "class_name": ["happy", "angry", "happy", "angry", "angry", "angry"],
            "count": [4, 10, 20, 2, 3, 5],
        }
    )
    fig = data_charts.dataset_counts_figure(counts)
    assert [t.name for t in fig.data] == ["train", "validation", "test"]
    by_split = {t.name: dict(zip(t.x, np.asarray(t.y).tolist())) for t in fig.data}
    assert by_split["train"] == {"happy": 20, "angry": 15}  # duplicates summed
    assert by_split["validation"] == {"happy": 0, "angry": 2}  # absent class shown as 0
    assert _annotation_texts(data_charts.dataset_counts_figure(counts.iloc[:0])) == ["No dataset counts"]


def test_probability_figure_horizontal_bars_per_model():
    probs = {"m1": [0.7, 0.2, 0.1], "m2": [0.1, 0.1, 0.8]}
    fig = predict_charts.probability_figure(probs, CLASSES)
    assert [t.name for t in fig.data] == ["m1", "m2"]
    assert all(t.orientation == "h" and list(t.y) == CLASSES for t in fig.data)
    np.testing.assert_allclose(np.asarray(fig.data[1].x), probs["m2"])
    assert tuple(fig.layout.xaxis.range) == (0, 1)
    with pytest.raises(ValueError, match="one value per class"):
        predict_charts.probability_figure({"m1": [0.5, 0.5]}, CLASSES)
    assert _annotation_texts(predict_charts.probability_figure({}, CLASSES)) == ["No predictions"]


def test_fitness_band_fills_between_worst_and_best():
    gens = pd.DataFrame({"generation": [2, 1, 3], "best": [0.5, 0.4, 0.6],
                         "mean": [0.3, 0.2, 0.4], "worst": [0.1, 0.0, 0.2]})
    fig = evolve_charts.fitness_figure(gens)
    names = [t.name for t in fig.data]
    assert names == ["worst", "best", "mean"]
    best = fig.data[1]
    assert best.fill == "tonexty"  # fills down to the worst trace just before it
    np.testing.assert_array_equal(np.asarray(best.x), [1, 2, 3])  # sorted by generation
    np.testing.assert_allclose(np.asarray(best.y), [0.4, 0.5, 0.6])
    assert _annotation_texts(evolve_charts.fitness_figure(gens.iloc[:0])) == ["No generations yet"]


# --- parallel coordinates ---------------------------------------------------------------


def test_parallel_coordinates_encodes_strings_with_ticktext():
    pop = pd.DataFrame({"optimizer": ["adam", "rmsprop", "adam", "sgd"],
                        "lr": [1e-3, 1e-4, 3e-4, 1e-2],
                        "fitness": [0.6, 0.5, 0.7, 0.4]})
    fig = evolve_charts.parallel_coordinates_figure(pop)
    dims = fig.data[0].dimensions
    assert [d.label for d in dims] == ["optimizer", "lr", "fitness"]
    opt = dims[0]
    assert list(opt.ticktext) == ["adam", "rmsprop", "sgd"]
    assert list(opt.tickvals) == [0, 1, 2]
    np.testing.assert_array_equal(np.asarray(opt.values), [0, 1, 0, 2])
    assert dims[1].ticktext is None
    np.testing.assert_allclose(np.asarray(dims[1].values), pop["lr"])
    np.testing.assert_allclose(np.asarray(fig.data[0].line.color), pop["fitness"])


def test_parallel_coordinates_missing_fitness_and_empty():
    with pytest.raises(ValueError, match="score"):
        evolve_charts.parallel_coordinates_figure(pd.DataFrame({"a": [1]}), fitness_col="score")
    empty = evolve_charts.parallel_coordinates_figure(pd.DataFrame(columns=["a", "fitness"]))
    assert _annotation_texts(empty) == ["No population yet"]


# --- metric bars -------------------------------------------------------------------------


def test_metric_bars_sorted_best_first_with_asymmetric_ci():
    table = pd.DataFrame({"label": ["a", "b", "c"], "acc": [0.5, 0.7, 0.6],
                          "lo": [0.45, 0.66, 0.52], "hi": [0.56, 0.73, 0.61]})
    fig = run_charts.metric_bars_figure(table, "acc", low="lo", high="hi")
    bar = fig.data[0]
    assert list(bar.y) == ["b", "c", "a"]
    np.testing.assert_allclose(np.asarray(bar.x), [0.7, 0.6, 0.5])
    np.testing.assert_allclose(np.asarray(bar.error_x.array), [0.03, 0.01, 0.06])
    np.testing.assert_allclose(np.asarray(bar.error_x.arrayminus), [0.04, 0.08, 0.05])
    assert bar.error_x.symmetric is False
    assert fig.layout.yaxis.autorange == "reversed"  # first (best) row at the top
    colors = run_colors(["a", "b", "c"])
    assert list(bar.marker.color) == [colors["b"], colors["c"], colors["a"]]


def test_metric_bars_lower_is_better_and_no_ci():
    table = pd.DataFrame({"label": ["a", "b"], "loss": [1.2, 0.9]})
    bar = run_charts.metric_bars_figure(table, "loss", higher_is_better=False).data[0]
    assert list(bar.y) == ["b", "a"] and bar.error_x.array is None
    with pytest.raises(ValueError, match="both low and high"):
        run_charts.metric_bars_figure(table, "loss", low="loss")
    assert _annotation_texts(run_charts.metric_bars_figure(table.iloc[:0], "loss")) == ["No runs to compare"]


# --- HTML report ---------------------------------------------------------------------------


def test_report_html_embeds_plotlyjs_once_and_escapes_text():
    plotlyjs_head = plotly.offline.get_plotlyjs()[:200]
    fig1 = run_charts.curves_figure({"a": _history([0.1, 0.2], [0.1, 0.15])})
    fig2 = run_charts.confusion_figure([[1, 0], [0, 1]], ["x", "y"])
    table = pd.DataFrame({"run": ["resnet50/imagenet-adam"], "accuracy": [0.6789]})
    html = report_html(
        "Report <1>",
        [
            ("Curves", fig1),
            ("Summary", table),
            ("Notes", "<script>alert(1)</script>\n\nsecond & last"),
            ("Confusion", fig2),
        ],
    )
    assert html.count(plotlyjs_head) == 1
    # Works offline: no script is fetched (plotly.js itself mentions a CDN URL as an
    # unused topojson default, so look for script tags with src instead).
    assert re.search(r"<script[^>]*\bsrc=", html) is None
    assert html.count('class="plotly-graph-div"') == 2
    assert "resnet50/imagenet-adam" in html and "0.6789" in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "second &amp; last" in html
    assert "<title>Report &lt;1&gt;</title>" in html


def test_report_html_without_figures_has_no_plotlyjs_and_rejects_unknown_content():
    html = report_html("T", [("Text", "hello")])
    assert plotly.offline.get_plotlyjs()[:200] not in html and "<p>hello</p>" in html
    with pytest.raises(TypeError, match="int"):
        report_html("T", [("Bad", 3)])  # type: ignore[list-item]
    # A value that cannot exist is a dash in the report's tables, as on the page, never "NaN".
    html = report_html("T", [("Table", pd.DataFrame({"configuration": ["a"], "CI low": [np.nan]}))])
    assert "—" in html and "NaN" not in html and "nan" not in html


def test_epoch_and_generation_axes_tick_on_whole_numbers():
    hist = pd.DataFrame({"epoch": [1, 2, 3], "accuracy": [0.2, 0.3, 0.4], "val_accuracy": [0.2, 0.25, 0.3]})
    x = run_charts.curves_figure({"run": hist}).layout.xaxis
    assert (x.tick0, x.dtick) == (1, 1)
    long = pd.DataFrame({"epoch": range(1, 41), "accuracy": np.linspace(0.1, 0.9, 40)})
    assert run_charts.curves_figure({"run": long}).layout.xaxis.dtick == 4
    gens = pd.DataFrame({"generation": [0, 1, 2], "best": [0.3, 0.4, 0.5], "mean": [0.2, 0.3, 0.4],
                         "worst": [0.1, 0.2, 0.3]})
    g = evolve_charts.fitness_figure(gens).layout.xaxis
    assert (g.tick0, g.dtick) == (0, 1)


def test_page_helpers_escape_markdown_trim_margins_and_enlarge_faces():
    from dashboard import ui

    assert ui.md("a_b *c* [d](e) #1 `x` $5") == r"a\_b \*c\* \[d\](e) \#1 \`x\` \$5"
    bare = ui.tight(go.Figure(), height=300)
    assert bare.layout.margin.t == 30 and bare.layout.height == 300
    titled = ui.tight(go.Figure(layout=dict(title="Confusion")), legend=dict(orientation="h"))
    assert titled.layout.margin.t == 60 and titled.layout.legend.orientation == "h"
    face = np.arange(48 * 48, dtype=np.uint16).reshape(48, 48)
    big = ui.enlarge(face)
    assert big.shape == (144, 144) and (big[:3, :3] == face[0, 0]).all() and big[3, 3] == face[1, 1]
    assert ui.enlarge(np.zeros((200, 100))).shape == (200, 100)


def test_pareto_figure_highlights_and_joins_the_front():
    points = pd.DataFrame({"configuration": ["a", "b", "c", "d"], "acc": [0.8, 0.6, 0.7, 0.5],
                           "lo": [0.75, 0.55, 0.65, 0.45], "hi": [0.85, 0.65, 0.75, 0.55],
                           "time": [100.0, 60.0, 50.0, np.nan]})
    fig = pareto_figure(points, "time", "acc", [True, False, True, False], x_title="training time (s)",
                               y_title="test accuracy", low="lo", high="hi")
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["Pareto front"].text) == ["a", "c"] and list(by_name["dominated"].text) == ["b"]
    assert list(by_name["front (joined)"].x) == [50.0, 100.0]  # joined in cost order
    assert list(by_name["Pareto front"].error_y.array) == pytest.approx([0.05, 0.05])
    assert fig.layout.xaxis.title.text == "training time (s)"
    with pytest.raises(ValueError, match="one flag per point"):
        pareto_figure(points, "time", "acc", [True], x_title="t", y_title="a")


def test_strategy_band_figure_draws_a_mean_and_a_band_per_strategy():
    bands = pd.DataFrame({"strategy": ["ga", "ga", "random", "random"], "evaluations": [1.0, 2.0, 1.0, 2.0],
                          "mean": [0.2, 0.4, 0.2, 0.3], "low": [0.1, 0.3, np.nan, np.nan],
                          "high": [0.3, 0.5, np.nan, np.nan], "n": [3, 3, 1, 1]})
    fig = evolve_charts.strategy_band_figure(bands, "evaluations", x_title="trainings spent", y_title="best validation fitness",
                             names={"ga": "GA", "random": "random"})
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["GA"].y) == [0.2, 0.4] and list(by_name["random"].y) == [0.2, 0.3]
    assert list(by_name["GA 95% interval"].y) == [0.3, 0.5, 0.3, 0.1]  # high out, low back
    assert "random 95% interval" not in by_name  # one search: no interval to draw


def test_configurations_keep_their_colour_in_any_subset_and_palette_is_colour_blind_safe():
    from dashboard.charts.common import PALETTE, run_colors, short_label

    alone = run_colors(["vgg16/scratch-rmsprop · fer · 1a2b3c"])
    crowd = run_colors(["vgg16/scratch-adam · fer · 9f9f9f", "vgg16/scratch-adam · fer · 000000",
                        "vgg16/scratch-rmsprop · fer · 1a2b3c", "resnet50/imagenet-adam · fer"])
    grouped = run_colors(["vgg16/scratch-rmsprop · fer"])
    assert alone["vgg16/scratch-rmsprop · fer · 1a2b3c"] == crowd["vgg16/scratch-rmsprop · fer · 1a2b3c"] \
        == grouped["vgg16/scratch-rmsprop · fer"]
    assert len(set(crowd.values())) == 4  # a second seed shown apart probes to a free colour
    assert "#0072B2" in PALETTE and len(set(PALETTE)) == 10  # Okabe-Ito first
    assert short_label("resnet50/scratch-rmsprop · synthetic-small · 1a2b3c") == "resnet50/scratch-rmsprop"
    assert short_label("short") == "short"
