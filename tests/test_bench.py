"""The benchmark command runs end to end at smoke size and reports every number it promises.

Speed itself is never asserted here (timed assertions flake); `python -m core bench` prints ratios.
"""
from __future__ import annotations

import json

from core import bench


def test_bench_smoke_reports_all_sections(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "DETECTION_MEGAPIXELS", (0.25, 4.0))  # 40 MP at full resolution takes 10-30 s
    out = tmp_path / "bench.json"
    results = bench.run_benchmark(archs=("vgg16",), sizes=(32,), n_images=14, batch_size=7, epochs=2, out=out,
                                  progress=lambda line: None)
    saved = json.loads(out.read_text())
    assert saved["environment"]["device"] == "CPU" and saved["environment"]["tensorflow"]
    assert saved["matmul_gflops"] > 0
    row = saved["training"][0]
    for method in ("pipeline", "pipeline_augmented", "bare_fit", "notebook_flow_from_directory"):
        assert row[method]["images_per_sec"] > 0 and row[method]["first_epoch_s"] > 0
    assert row["ratio_pipeline_vs_bare"] > 0 and row["train_gflop_per_image"] > 0
    assert saved["frozen_features"]["speedup_total"] > 0
    assert saved["predict_latency"][0]["predict_ms"] > 0
    table = bench.format_table(results)
    assert "vgg16@32" in table and "matmul ceiling" in table and "frozen backbone" in table
    assert "Haar detection, 4.00 MP astronaut: full resolution" in table
    assert saved["detection"]["rows"][1]["faces_after"] >= 1
    assert saved["video"]["frames"] == 12 and saved["video"]["faces"] == 1 and "per sampled frame" in table


def test_forward_flops_match_a_hand_count():
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 2*8*8*4*3*3*3 = 13824
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5)(x)  # 2*4*5 = 40
    assert bench.forward_flops(keras.Model(inputs, outputs)) == 13824 + 40
