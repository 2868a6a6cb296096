"""The Compare page's "Accuracy against cost" section: the Pareto chart, its table and the sentence."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import array, figure
from streamlit.testing.v1 import AppTest
from test_page_compare import PAGE, _add_run, _config

from dashboard.charts.common import run_colors

pytestmark = pytest.mark.usefixtures("st_clean")


def kinds(fig: dict) -> dict[str, list[str]]:
    """The Pareto chart's configurations by kind ("Pareto front", "dominated", "tied: not resolved"), from
    its legend entries (one per configuration, "name · kind")."""
    out: dict[str, list[str]] = {}
    for t in fig["data"]:
        if " · " in t["name"]:
            name, kind = t["name"].rsplit(" · ", 1)
            out.setdefault(kind, []).append(name)
    return {k: sorted(v) for k, v in out.items()}
GRID = "cost-grid"
N = 21  # synthetic-tiny: 3 test images per class


@pytest.fixture
def cost_lab(fresh_artifacts):
    """Three finished runs of one grid: the most accurate, a cheaper one within its interval, a dominated one."""
    from core.store import RunStore

    store = RunStore()
    ids = {}
    for key, arch, config, right, seconds, flops in (
            ("best", "resnet50", "scratch-adam", 18, 100.0, 4e12),
            ("cheap", "resnet50", "scratch-rmsprop", 17, 40.0, 1.6e12),  # within the best's bootstrap interval
            ("dominated", "vgg16", "scratch-adam", 9, 200.0, 9e12)):
        ids[key] = _add_run(store, _config(arch, config, group=GRID), [0.3, 0.5], correct=np.arange(N) >= N - right)
        store.log_summary(ids[key], {"train_time_s": seconds, "train_time_per_epoch_s": seconds / 2,
                                     "train_flops": flops, "latency_ms_per_face": 5.0, "params_trainable": 23.6e6})
    return ids


def test_pareto_chart_table_sentence_and_report(cost_lab, downloads):
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert "Accuracy against cost" in [s.value for s in at.subheader]
    assert at.selectbox(key="compare_cost").value == "train_time_s"

    # One run each: wall time has no interval, so 40 s against 100 s is not resolved and the two most
    # accurate are drawn (and named) as a tie; the clearly less accurate vgg16 is dominated.
    fig = figure(at, "compare_pareto")
    assert kinds(fig) == {"tied: not resolved": ["resnet50/scratch-adam", "resnet50/scratch-rmsprop"],
                          "dominated": ["vgg16/scratch-adam"]}
    assert "front (joined)" not in [t["name"] for t in fig["data"]]
    tied = [t for t in fig["data"] if t["name"].endswith("tied: not resolved")]
    assert sorted(float(array(t["y"])[0]) for t in tied) == pytest.approx([17 / N, 18 / N])
    # Each configuration in its own colour, the one it has on every page.
    assert {t["marker"]["color"] for t in fig["data"]} == {run_colors([c])[c] for c in (
        "resnet50/scratch-adam", "resnet50/scratch-rmsprop", "vgg16/scratch-adam")}
    assert any("resnet50/scratch-rmsprop and resnet50/scratch-adam are tied" in m.value for m in at.markdown)
    assert any("Tied on the front" in m.value for m in at.markdown)
    # Every number says what it was measured on: the test images, and the profile the runs were trained with.
    caption = next(c.value for c in at.caption if "configuration(s)" in c.value or "configurations with" in c.value)
    assert f"Measured on {N} test images of synthetic" in caption.replace("\\", "") and "profile" in caption
    front = at.dataframe[-1].value
    assert list(front.configuration) == ["resnet50/scratch-rmsprop", "resnet50/scratch-adam"]
    assert set(front.interval) == {"bootstrap over test images"}
    assert list(front["training FLOPs"]) == ["1.6 TFLOP", "4 TFLOP"]

    # FLOPs are the same for every seed: 1.6 against 4 TFLOP is resolved, and one test image more is not,
    # so the cheaper configuration dominates the nominally more accurate one.
    at.selectbox(key="compare_cost").set_value("train_flops").run()
    fig = figure(at, "compare_pareto")
    assert fig["layout"]["xaxis"]["type"] == "log" and "2 TFLOP" in fig["layout"]["xaxis"]["ticktext"]
    assert kinds(fig) == {"Pareto front": ["resnet50/scratch-rmsprop"],
                          "dominated": ["resnet50/scratch-adam", "vgg16/scratch-adam"]}
    assert any("at 40% of its training FLOPs" in m.value for m in at.markdown)

    html = downloads["compare_report"]()
    assert "Accuracy against training FLOPs" in html and "Pareto front" in html
    assert "reaches the best accuracy&#x27;s interval at 40%" in html
