"""ONNX models on ONNX Runtime (CPU): exported runs and published ONNX emotion models (the HSEmotion kind).

``OnnxModel`` is the one place that opens an ``onnxruntime.InferenceSession``; it answers
the questions registration asks of a Keras model (input and output shapes) and runs a
float32 batch, so the reference registry and the predictors treat both alike.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


class OnnxModel:
    """One-input, one-output ONNX model on ONNX Runtime's CPU provider; call it with a float32 batch."""

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own (Fail, InvalidProtobuf, ...) for unreadable files
            raise ValueError(f"{self.path} could not be loaded as an ONNX model ({type(exc).__name__}: {exc})") from exc
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        self.n_inputs, self.n_outputs = len(inputs), len(outputs)
        self.input_name = inputs[0].name
        # Symbolic dimensions ("unk__85", "batch") read as None, like Keras' unknown batch size.
        self.input_shape = tuple(d if isinstance(d, int) else None for d in inputs[0].shape)
        self.output_shape = tuple(d if isinstance(d, int) else None for d in outputs[0].shape)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        """Keras' name for one forward pass, so registration checks run on either kind of model."""
        return self(x)
