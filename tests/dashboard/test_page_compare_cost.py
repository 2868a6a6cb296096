"""The Compare page's "Accuracy against cost" section: the Pareto chart, its table and the sentence."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import array, figure
from streamlit.testing.v1 import AppTest
from test_page_compare import PAGE, _add_run, _config

pytestmark = pytest.mark.usefixtures("st_clean")
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

    traces = {t["name"]: t for t in figure(at, "compare_pareto")["data"]}
    assert sorted(traces["Pareto front"]["text"]) == ["resnet50/scratch-adam", "resnet50/scratch-rmsprop"]
    assert list(traces["dominated"]["text"]) == ["vgg16/scratch-adam"]
    assert array(traces["front (joined)"]["x"]).tolist() == [40.0, 100.0]
    assert sorted(array(traces["Pareto front"]["y"]).tolist()) == pytest.approx([17 / N, 18 / N])

    sentence = ("resnet50/scratch-rmsprop reaches the best accuracy's interval at 40% of its training time")
    assert any(sentence in m.value for m in at.markdown)
    front = at.dataframe[-1].value
    assert list(front.configuration) == ["resnet50/scratch-rmsprop", "resnet50/scratch-adam"]
    assert set(front.interval) == {"bootstrap over test images"}

    at.selectbox(key="compare_cost").set_value("train_flops").run()
    assert figure(at, "compare_pareto")["layout"]["xaxis"]["type"] == "log"
    assert any("at 40% of its training FLOPs" in m.value for m in at.markdown)

    html = downloads["compare_report"]()
    assert "Accuracy against training FLOPs" in html and "Pareto front" in html
    assert "reaches the best accuracy&#x27;s interval at 40%" in html
