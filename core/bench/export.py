"""Per-face latency of a run's model in Keras (the Predict path's traced forward) vs its ONNX export on
ONNX Runtime (CPU), for each architecture.

Models are built in memory with random weights (weights do not change the cost) and exported
the way ``python -m core export --format onnx`` exports a run. The two runtimes take turns,
call by call, so a load spike on the machine slows both rather than one.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from core.bench.runner import NUM_CLASSES
from core.train import models

EXPORT_REPEATS = 30


def bench_export_latency(arch: str, size: int = 48, repeats: int = EXPORT_REPEATS) -> dict:
    """Median milliseconds for one face (batch of 1, already cropped) through Keras and through ONNX Runtime.

    Keras: the run model behind its preprocessing, called through ``tf.function`` as the
    Predict path calls it (``core.inference.predictors``); ONNX Runtime: the exported face
    model (the same network with its preprocessing inside). Also reports the largest absolute
    probability difference between the two on the timed face and the export's seconds.
    """
    import tensorflow as tf

    from core.configs import ModelConfig
    from core.inference.export import face_model, write_format
    from core.inference.onnx_model import OnnxModel

    model = models.build_model(ModelConfig(arch=arch, weights="none", input_size=size), NUM_CLASSES)
    exported = face_model(model, arch, size)
    gray = np.random.default_rng(0).integers(0, 256, (1, size, size), dtype=np.uint8)
    face, keras_input = gray[..., None].astype(np.float32), models.preprocess(arch, gray, size)
    forward = tf.function(lambda x: model(x, training=False),
                          input_signature=[tf.TensorSpec((None, size, size, 3), tf.float32)])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        onnx = OnnxModel(write_format(exported, "onnx", Path(tmp)))
        export_s = time.perf_counter() - t0
        keras_probs, onnx_probs = forward(keras_input).numpy(), onnx(face)  # untimed: traces, warms up
        keras_ms, onnx_ms = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            forward(keras_input).numpy()
            keras_ms.append(1000 * (time.perf_counter() - t0))
            t0 = time.perf_counter()
            onnx(face)
            onnx_ms.append(1000 * (time.perf_counter() - t0))
    keras_median, onnx_median = float(np.median(keras_ms)), float(np.median(onnx_ms))
    return {"arch": arch, "size": size, "repeats": repeats, "keras_ms": keras_median, "onnx_ms": onnx_median,
            "keras_iqr_ms": [float(q) for q in np.percentile(keras_ms, [25, 75])],
            "onnx_iqr_ms": [float(q) for q in np.percentile(onnx_ms, [25, 75])],
            "keras_over_onnx": keras_median / onnx_median, "export_s": export_s,
            "max_abs_prob_diff": float(np.max(np.abs(keras_probs - onnx_probs)))}
