"""The benchmark command runs end to end at smoke size and reports every number it promises.

Speed itself is never asserted here (timed assertions flake); `python -m core bench` prints ratios.
"""
from __future__ import annotations

import json
import os

import pytest

from core.bench import inference, levers, report, runner, stats, suites, system


@pytest.mark.slow
def test_bench_smoke_reports_all_sections(tmp_path, monkeypatch):
    monkeypatch.setattr(inference, "DETECTION_MEGAPIXELS", (0.25, 4.0))  # 40 MP at full resolution takes 10-30 s
    out = tmp_path / "bench.json"
    results = suites.run_benchmark(archs=("vgg16",), sizes=(32,), n_images=14, batch_size=7, windows=1,
                                   startup=False, out=out, progress=lambda line: None)
    saved = json.loads(out.read_text())
    assert saved["schema"] == stats.SCHEMA and saved["environment"]["device"] == "CPU"
    assert saved["matmul_gflops"] > 0 and saved["machine"]["load_before"]
    row = saved["training"][0]
    for method in ("pipeline", "pipeline_augmented", "bare_fit", "notebook_flow_from_directory"):
        fig = saved["figures"][f"train/vgg16@32/{method}"]
        assert len(fig["windows"]) == 1 and fig["median"] > 0
    assert row["first_window_s"] > 0 and row["train_gflop_per_image"] > 0
    # One window gives no interval: no ratio may claim a verdict.
    assert saved["ratios"]["train/vgg16@32/pipeline_vs_bare"]["verdict"] == stats.NOT_RESOLVED
    frozen = saved["frozen_features"][0]
    assert frozen["expected_speedup_flops"] > 1 and 0 < frozen["trainable_flop_share"] < 1
    assert saved["figures"]["frozen/vgg16@32/cached_features"]["median"] > 0
    assert saved["predict_latency"][0]["predict_ms"] > 0
    table = report.format_table(results)
    assert "vgg16@32" in table and "matmul ceiling" in table and "frozen backbone" in table
    assert "Haar detection, 4.00 MP astronaut: full resolution" in table
    assert saved["detection"]["rows"][1]["faces_after"] >= 1
    assert saved["video"]["frames"] == 12 and saved["video"]["faces"] == 1 and "per sampled frame" in table
    assert "| vgg16@32 |" in report.format_markdown(results)
    # A second run's JSON compares against the first, figure by figure.
    diff = stats.compare(saved, saved)
    assert {f["figure"] for f in diff["figures"]} == set(saved["figures"])


@pytest.mark.slow
def test_levers_report_one_line_per_lever_with_its_ratio_or_why_it_was_not_measured(monkeypatch):
    from core.train import device

    monkeypatch.setattr(device, "accelerator", lambda: {"device": "CPU", "gpu": False, "bf16": False})
    x, y = runner.bench_data(14)
    got = levers.bench_levers("vgg16", 32, x, y, 7, 1, runner.NUM_CLASSES, progress=lambda line: None)
    lines = got["levers"]
    assert [line["lever"] for line in lines] == [lever.lever for lever in levers.LEVERS]
    assert lines[0]["setting"] == "3 vs 7" and lines[1]["ratio"] == "batch_14"
    assert lines[6]["ratio"] == f"threads_intra{os.cpu_count()}_inter1"
    bf16 = next(line for line in lines if line["lever"].startswith("mixed precision"))
    assert bf16["ratio"] is None and bf16["note"].startswith("not measured")
    measured = [line["ratio"] for line in lines if line["ratio"]]
    assert list(got["ratios"]) == [name for name in got["figures"] if name in measured]
    assert set(got["figures"]) == {levers.DEFAULT, levers.WORKER_DEFAULT, *measured}
    assert got["worker_cpu_s"] > 0


@pytest.mark.slow
def test_startup_probe_splits_the_time_to_the_first_step():
    got = system.bench_startup("vgg16", 32, batch_size=7)
    for phase in ("import_tensorflow_s", "import_project_s", "build_compile_s", "first_step_s", "steady_step_s"):
        assert got[phase] > 0
    assert got["to_first_step_s"] >= got["first_step_s"] + got["import_tensorflow_s"]


def test_forward_flops_match_a_hand_count():
    import keras

    from core.train.models import forward_flops

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 2*8*8*4*3*3*3 = 13824
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5)(x)  # 2*4*5 = 40
    assert forward_flops(keras.Model(inputs, outputs)) == 13824 + 40


def test_prebuilt_train_state_lets_keras_trace_the_train_step_once():
    import keras
    import numpy as np

    from core.train import models

    traced = []

    class Counting(keras.Model):
        def train_step(self, data):
            traced.append(1)  # runs once per trace, never per step
            return super().train_step(data)

    def fit(prebuild: bool) -> int:
        traced.clear()
        inputs = keras.Input((4,))
        model = Counting(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
        # With a compiled metric, as core.train.training compiles: its variables would be created in the first trace too.
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        if prebuild:
            models.build_train_state(model)
        model.fit(np.zeros((8, 4), "float32"), np.eye(3, dtype="float32")[[0] * 8], batch_size=4, epochs=2, verbose=0)
        return len(traced)

    assert fit(prebuild=False) == 2 and fit(prebuild=True) == 1
