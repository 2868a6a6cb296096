"""ONNX models on ONNX Runtime (CPU): exported runs and published ONNX emotion models (the HSEmotion kind).

``OnnxModel`` is the one place that opens an ``onnxruntime.InferenceSession``; it answers
the questions registration asks of a Keras model (input and output shapes) and runs a
float32 batch, so the reference registry and the predictors treat both alike. PyTorch
exports take channels first (N, C, H, W); such a model is described and fed channels last,
like every other model here, and transposes the batch itself.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


class OnnxModel:
    """An ONNX model on ONNX Runtime's CPU provider; call it with a channels-last float32 batch."""

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
        shape = tuple(d if isinstance(d, int) else None for d in inputs[0].shape)
        # Channels first when the second axis is 1 or 3 colours and the last is not (a 1- or 3-px image is no face).
        self.channels_first = len(shape) == 4 and shape[1] in (1, 3) and shape[3] not in (1, 3)
        self.input_shape = (shape[0], shape[2], shape[3], shape[1]) if self.channels_first else shape
        self.output_shape = tuple(d if isinstance(d, int) else None for d in outputs[0].shape)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Outputs for a channels-last float32 batch (N, H, W, C)."""
        x = np.asarray(x, dtype=np.float32)
        if self.channels_first:
            x = x.transpose(0, 3, 1, 2)
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0]

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        """Keras' name for one forward pass, so registration checks run on either kind of model."""
        return self(x)
