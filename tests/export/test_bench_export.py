"""The bench's per-face latency, Keras vs ONNX Runtime: both measured on one exported model, outputs agreeing."""
from __future__ import annotations

import pytest

from core.bench import export as bench_export


@pytest.mark.slow
def test_export_latency_row_times_both_runtimes_on_the_same_model():
    row = bench_export.bench_export_latency("vgg16", 32, repeats=3)
    assert (row["arch"], row["size"], row["repeats"]) == ("vgg16", 32, 3)
    assert row["keras_ms"] > 0 and row["onnx_ms"] > 0 and row["export_s"] > 0
    assert row["keras_over_onnx"] == pytest.approx(row["keras_ms"] / row["onnx_ms"])
    assert row["keras_iqr_ms"][0] <= row["keras_ms"] <= row["keras_iqr_ms"][1]
    assert row["max_abs_prob_diff"] < 1e-4
