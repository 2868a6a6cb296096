"""The Compare page, run headless with AppTest against a real run store.

The store is filled through ``core.store.tracking.RunStore`` exactly as training fills it
(per-epoch metrics, report.json from ``classification_report``, predictions.npz on the
real synthetic-tiny test labels), without training models, so the page sees finished,
running and failed runs in a second rather than minutes.
"""
from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import array, figure
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.usefixtures("st_clean")

PAGE = str(Path(__file__).resolve().parents[2] / "dashboard" / "views" / "compare.py")
GRID = "grid-1"
OOM = "ResourceExhaustedError: OOM when allocating tensor with shape [8,512,3,3]"


def _config(arch: str, config_id: str, dataset: str = "synthetic-tiny", group: str = GRID):
    from core.configs import presets

    return replace(presets.preset(config_id, presets.base_config(arch, dataset, epochs=3)), group=group)


def _add_run(store, cfg, curve: list[float], correct: np.ndarray | None = None, status: str = "FINISHED",
             error: str | None = None) -> str:
    """One run as training would log it; ``correct`` marks which test images it gets right."""
    from core.data import datasets
    from core.train import evaluation

    ds = datasets.load_for_run(cfg.data)
    identity = {"name": ds.name, "source": ds.source, "fingerprint": ds.fingerprint(),
                "classes": ",".join(ds.class_names)}
    run_id = store.create_run(cfg, identity)
    for epoch, acc in enumerate(curve, start=1):
        store.log_epoch(run_id, epoch, {"loss": 2.0 - acc, "accuracy": acc, "val_loss": 2.1 - acc,
                                        "val_accuracy": acc - 0.05, "learning_rate": 1e-3,
                                        "epoch_time": 10.0 + epoch, "images_per_sec": 12.5})
    store.set_tags(run_id, {"epochs_done": len(curve)})
    if correct is None:  # still training, or failed before evaluation
        if status != "RUNNING":
            store.finish(run_id, status, error=error)
        return run_id
    y_true = ds.splits["test"][1]
    k = len(ds.class_names)
    # Right answers get 0.8, mistakes put 0.6 on the next class; the rest is spread evenly.
    target = np.where(correct, y_true, (y_true + 1) % k)
    top = np.where(correct, 0.8, 0.6)[:, None]
    probs = np.repeat((1 - top) / (k - 1), k, axis=1)
    probs[np.arange(len(y_true)), target] = top[:, 0]
    report = evaluation.classification_report(y_true, probs, ds.class_names)
    y_pred = probs.argmax(axis=1)
    report["accuracy_ci"] = list(evaluation.bootstrap_ci(y_true, y_pred))
    store.log_json(run_id, "report.json", report)
    store.log_arrays(run_id, "predictions.npz", y_true=y_true, y_pred=y_pred, probs=probs)
    store.log_summary(run_id, {"test_accuracy": report["accuracy"], "test_macro_f1": report["macro_f1"],
                               "test_loss": report["loss"], "best_val_accuracy": max(curve) - 0.05,
                               "params_total": 23.6e6, "train_time_s": 33.0, "mean_images_per_sec": 12.5})
    store.finish(run_id, status)
    return run_id


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A store with an older run on another dataset, then a grid of two finished runs,
    one still training and one that failed."""
    from core.store import RunStore

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMOTION_LAB_ARTIFACTS", str(tmp_path_factory.mktemp("compare") / "artifacts"))
        store = RunStore()
        n_small = 30 * 7
        ids = {"other": _add_run(store, _config("resnet50", "scratch-adam", "synthetic-small", group=""),
                                 [0.2, 0.3, 0.4], correct=np.arange(n_small) % 2 == 0)}
        n = 21  # synthetic-tiny: 3 test images per class
        ids["good"] = _add_run(store, _config("resnet50", "scratch-adam"), [0.31, 0.52, 0.73],
                               correct=np.arange(n) >= 3)  # 18 of 21 right
        ids["weak"] = _add_run(store, _config("resnet50", "scratch-rmsprop"), [0.21, 0.32, 0.43],
                               correct=np.arange(n) >= 12)  # 9 right, all also right for "good"
        ids["running"] = _add_run(store, _config("vgg16", "scratch-adam"), [0.25, 0.45], status="RUNNING")
        ids["failed"] = _add_run(store, _config("vgg16", "scratch-rmsprop"), [0.15], status="FAILED", error=OOM)
        yield ids


def run_page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at




def label(run_id: str) -> str:
    from dashboard import services

    return services.run_labels(services.runs())[run_id]


def texts(elements) -> str:
    """What the user reads: the elements' Markdown without its backslash escapes."""
    return re.sub(r"\\(.)", r"\1", "\n".join(el.value for el in elements))


def test_empty_store_says_where_to_start(fresh_artifacts):
    at = run_page()
    assert "No runs yet" in texts(at.info)
    assert "Train" in texts(at.info) and "quick comparison" in texts(at.info)
    assert not at.get("plotly_chart")


def test_defaults_to_latest_grid_and_shows_every_state(lab):
    at = run_page()
    assert at.selectbox(key="compare_group").value == GRID
    assert set(at.multiselect(key="compare_runs").value) == {lab[k] for k in ("good", "weak", "running", "failed")}

    acc = figure(at, "compare_curves_accuracy")
    train = {t["meta"]: array(t["y"]).tolist() for t in acc["data"] if t["line"]["dash"] == "solid"}
    val = {t["meta"]: array(t["y"]).tolist() for t in acc["data"] if t["line"]["dash"] == "dash"}
    assert train[label(lab["good"])] == pytest.approx([0.31, 0.52, 0.73])
    assert val[label(lab["good"])] == pytest.approx([0.26, 0.47, 0.68])
    assert train[label(lab["running"])] == pytest.approx([0.25, 0.45])  # curves so far
    loss = figure(at, "compare_curves_loss")
    assert {t["meta"] for t in loss["data"]} >= {label(lab["good"]), label(lab["weak"])}

    assert "still training (epoch 2 of 3)" in texts(at.info)
    assert "ResourceExhaustedError" in texts(at.error) and "no test results" in texts(at.error)

    table = at.dataframe[0].value
    assert sorted(table["run"]) == sorted([label(lab["good"]), label(lab["weak"])])  # failed/running skipped
    assert table.set_index("run")["test accuracy"].to_dict() == pytest.approx(
        {label(lab["good"]): 18 / 21, label(lab["weak"]): 9 / 21})
    assert {"CI low", "CI high", "macro-F1", "F1 happy", "epoch time (s)", "train images/s"} <= set(table.columns)

    bars = figure(at, "compare_accuracy_bars")["data"][0]
    assert bars["y"][0] == label(lab["good"]) and array(bars["x"])[0] == pytest.approx(18 / 21)
    assert len(array(bars["error_x"]["array"])) == 2
    per_class = figure(at, "compare_per_class")
    assert {t["name"] for t in per_class["data"]} == {label(lab["good"]), label(lab["weak"])}
    cm = figure(at, f"compare_cm_{lab['good']}")["data"][0]
    assert np.trace(array(cm["z"])) == 18


def test_significance_in_plain_words(lab):
    at = run_page()
    words = texts(at.markdown)
    # "good" is right on 9 images where "weak" is wrong, never the reverse: p = 2 * 0.5**9.
    assert f"{label(lab['good'])} was right where {label(lab['weak'])} was wrong on 9 test images; the reverse " \
        "happened on 0" in words or f"{label(lab['weak'])} was right where {label(lab['good'])} was wrong on 0 " \
        "test images; the reverse happened on 9" in words
    assert "statistically significant" in words

    at.selectbox(key="compare_group").set_value("All runs").run()
    finished = {lab["good"], lab["weak"], lab["other"]}
    assert set(at.multiselect(key="compare_runs").value) == finished
    at.selectbox(key="compare_sig_a").set_value(lab["good"])
    at.selectbox(key="compare_sig_b").set_value(lab["other"]).run()
    assert "not scored on the same test images" in texts(at.warning)


def test_gallery_shows_most_confident_mistakes(lab):
    at = run_page()
    at.selectbox(key="compare_gallery_run").set_value(lab["good"]).run()
    gallery = at.image[0]
    assert len(gallery.value) == 3  # the three images "good" gets wrong
    assert all("→" in c and c.endswith("(60%)") for c in gallery.captions)
    at.selectbox(key="compare_gallery_run").set_value(lab["weak"]).run()
    assert len(at.image[0].captions) == 12


def test_normalised_confusion_matrices(lab):
    at = run_page()
    at.toggle(key="compare_cm_normalize").set_value(True).run()
    z = array(figure(at, f"compare_cm_{lab['weak']}")["data"][0]["z"])
    assert z.max() <= 1 and np.allclose(z.sum(axis=1), 1)


def test_downloads_carry_the_comparison(lab, downloads):
    run_page()
    csv = pd.read_csv(io.StringIO(downloads["compare_csv"]))
    assert set(csv.run_id) == {lab["good"], lab["weak"]}
    assert csv.set_index("run_id")["test accuracy"][lab["good"]] == pytest.approx(18 / 21)

    html = downloads["compare_report"]()  # built only when the user clicks
    assert html.startswith("<!DOCTYPE html>") and "plotly" in html
    for key in ("good", "weak", "running", "failed"):
        assert label(lab[key]) in html
    assert "still training" in html and "ResourceExhaustedError" in html
    assert "statistically significant" in html


def test_runs_without_results_still_show_curves(lab):
    at = run_page()
    at.multiselect(key="compare_arch").set_value(["vgg16"]).run()
    assert set(at.multiselect(key="compare_runs").value) == {lab["running"], lab["failed"]}
    assert "None of the selected runs has test results yet" in texts(at.info)
    assert not at.dataframe and not at.download_button
    names = {t["meta"] for t in figure(at, "compare_curves_accuracy")["data"]}
    assert names == {label(lab["running"]), label(lab["failed"])}


def test_each_run_links_to_the_optimizers_page_preset_to_its_optimizer(lab):
    at = run_page()
    links = next(c.value for c in at.caption if "on 2-D loss surfaces" in c.value)
    # scratch-adam trains with Adam at 1e-3, scratch-rmsprop with RMSprop at 1e-3.
    assert "(optimizers?opt=adam&lr=0.001)" in links and "(optimizers?opt=rmsprop&lr=0.001)" in links
    assert links.count("](optimizers?") == len(at.multiselect(key="compare_runs").value)
