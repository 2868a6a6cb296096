"""Export a finished run out of the lab: SavedModel, ONNX, LiteRT or a Keras file, with its model card.

Owns the *face model* (the run's network behind one exact 1x1 convolution that turns a
grayscale face of 0-255 pixel values into the backbone's input, so the exported file carries
its preprocessing and needs no lab code to feed), writing it in each format with Keras'
own ``model.export`` (tf2onnx for ONNX, the TFLite converter for LiteRT), loading an export
back as a probability function, and checking an export against the run's Keras model on
the run's test split (the largest absolute probability difference goes on the card).
"""
from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.configs import ConfigError
from core.store import RunNotFound, RunStore

# --format name -> what Keras writes and the file or folder name it goes to.
FORMATS: dict[str, str] = {"savedmodel": "saved_model", "onnx": "model.onnx", "litert": "model.tflite",
                           "keras": "model.keras"}
FORMAT_NOTES: dict[str, str] = {
    "savedmodel": "TensorFlow SavedModel (TF Serving, TF.js converter); signature 'serve'",
    "onnx": "ONNX (ONNX Runtime, HSEmotion-style deployments); converted by tf2onnx through Keras' model.export",
    "litert": "LiteRT / TFLite flatbuffer (Android, iOS, microcontrollers); converted by the TFLite converter",
    "keras": "Keras 3 .keras file (keras.models.load_model, safe_mode on)",
}
INPUT_NAME = "face"  # the exported models' input, as ONNX Runtime and serving signatures name it
CHECK_BATCH = 64


class ExportError(ConfigError):
    """A run could not be exported; the message names the run, format or path and what was expected."""


@dataclass(frozen=True)
class FaceSpec:
    """How to feed an exported model: one grayscale face, ``input_size`` px square, pixel values 0-255."""

    labels: tuple[str, ...]
    input_size: int
    source_size: int  # the training images' resolution (faces were brought to it before the model's resize)
    arch: str
    channels: int = 1
    scaling: str = "none"  # references.SCALINGS: values stay 0-255, the model scales them itself

    def to_dict(self) -> dict:
        return {"labels": list(self.labels), "input_size": self.input_size, "source_size": self.source_size,
                "channels": self.channels, "scaling": self.scaling, "arch": self.arch, "input_name": INPUT_NAME,
                "input_shape": [None, self.input_size, self.input_size, self.channels],
                "input_dtype": "float32", "output": f"{len(self.labels)} softmax probabilities, in label order"}


def face_spec(store: RunStore, run_id: str) -> FaceSpec:
    """The input/output description of a finished run's exported model."""
    from core.inference.predictors import run_predictor

    p = run_predictor(store, run_id)
    return FaceSpec(labels=p.class_names, input_size=p.input_size, source_size=p.source_size, arch=p.arch)


def face_model(run_model, arch: str, input_size: int):
    """``run_model`` behind a fixed 1x1 convolution: (N, S, S, 1) gray 0-255 -> (N, K) probabilities.

    The lab feeds a run gray faces tiled to 3 channels, then the backbone's
    ``preprocess_input``; both are per-channel affine maps of the gray value, so one exact
    linear layer (built-in, safe to serialise, convertible by every exporter) replaces them.
    """
    import keras

    from core.train import models

    offset = models.preprocess(arch, np.zeros((1, 1, 1), np.uint8), 1).reshape(3)
    slope = (models.preprocess(arch, np.full((1, 1, 1), 255, np.uint8), 1).reshape(3) - offset) / 255.0
    inputs = keras.Input((input_size, input_size, 1), name=INPUT_NAME)
    to_backbone = keras.layers.Conv2D(3, 1, name="lab_preprocess", trainable=False)
    outputs = run_model(to_backbone(inputs))
    to_backbone.set_weights([slope.reshape(1, 1, 1, 3).astype(np.float32), offset.astype(np.float32)])
    return keras.Model(inputs, outputs, name="face_emotion")


def run_face_model(store: RunStore, run_id: str):
    """(face model, spec) of a finished run: its stored Keras model made self-contained."""
    spec = face_spec(store, run_id)
    return face_model(store.load_model(run_id), spec.arch, spec.input_size), spec


def write_format(model, fmt: str, out_dir: Path) -> Path:
    """Write ``model`` in ``fmt`` (one of FORMATS) into ``out_dir``; returns the file or folder written."""
    if fmt not in FORMATS:
        raise ExportError(f"format: expected one of {', '.join(FORMATS)}. Received: format={fmt!r}")
    target = Path(out_dir) / FORMATS[fmt]
    if fmt == "keras":
        model.save(target)
    else:
        import tensorflow as tf

        signature = [tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32, name=INPUT_NAME)]
        keras_format = "tf_saved_model" if fmt == "savedmodel" else fmt
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # tf2onnx probes np.object
            model.export(str(target), format=keras_format, verbose=False, input_signature=signature)
    return target


def load_export(path: str | Path, fmt: str) -> Callable[[np.ndarray], np.ndarray]:
    """A function (N, S, S, 1) float32 -> (N, K) probabilities that runs an export in its own runtime."""
    path = Path(path)
    if not path.exists():
        raise ExportError(f"{path} does not exist; expected the {fmt} export written by `python -m core export`")
    if fmt == "keras":
        import keras

        model = keras.models.load_model(path, safe_mode=True, compile=False)
        return lambda x: np.asarray(model.predict_on_batch(x))
    if fmt == "savedmodel":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))  # held by the closure: its variables die with it
        return lambda x: loaded.serve(tf.constant(x, tf.float32)).numpy()
    if fmt == "onnx":
        from core.inference.onnx_model import OnnxModel

        return OnnxModel(path)
    if fmt == "litert":
        return _litert_function(path)
    raise ExportError(f"format: expected one of {', '.join(FORMATS)}. Received: format={fmt!r}")


def _litert_function(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "use ai_edge_litert": TF 2.21 still ships this interpreter
        interpreter = tf.lite.Interpreter(model_path=str(path))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def run(x: np.ndarray) -> np.ndarray:
        interpreter.resize_tensor_input(inp["index"], x.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(inp["index"], np.asarray(x, np.float32))
        interpreter.invoke()
        return np.array(interpreter.get_tensor(out["index"]))

    return run


def test_faces(store: RunStore, run_id: str, max_images: int | None = None) -> np.ndarray:
    """The run's test split as exported-model input: (N, S, S, 1) float32 gray 0-255, resized as the lab does."""
    import tensorflow as tf

    from core.data import datasets

    cfg = store.config(run_id)
    x, _ = datasets.load_for_run(cfg.data).splits["test"]
    x = x[:max_images] if max_images else x
    size = int(cfg.model.input_size)
    gray = tf.cast(x[..., None] if x.ndim == 3 else x[..., :1], tf.float32)
    if gray.shape[1] != size or gray.shape[2] != size:
        # The resize of core.data.pipeline.to_model_input, so the export sees what the run saw.
        gray = tf.image.resize(gray, (size, size), method="bilinear", antialias=True)
    return np.asarray(gray, np.float32)


def max_difference(reference: Callable[[np.ndarray], np.ndarray], other: Callable[[np.ndarray], np.ndarray],
                   x: np.ndarray, batch: int = CHECK_BATCH) -> float:
    """Largest absolute probability difference between two probability functions over ``x``, in batches."""
    worst = 0.0
    for i in range(0, len(x), batch):
        a, b = np.asarray(reference(x[i:i + batch]), np.float64), np.asarray(other(x[i:i + batch]), np.float64)
        if a.shape != b.shape:
            raise ExportError(f"the export returns shape {b.shape} where the Keras model returns {a.shape}")
        worst = max(worst, float(np.max(np.abs(a - b))))
    return worst


@dataclass(frozen=True)
class ExportResult:
    """What ``export_run`` wrote: the model, its card (JSON and Markdown) and the check it passed."""

    model_path: Path
    card_json: Path
    card_md: Path
    card: dict


def export_run(run_id: str, fmt: str, out_dir: str | Path, store: RunStore | None = None,
               max_check: int | None = None, overwrite: bool = False) -> ExportResult:
    """Export a finished run in ``fmt`` into ``out_dir`` with MODEL_CARD.md and model_card.json.

    The export is loaded back in its own runtime and compared with the run's Keras model on
    the run's test split (the first ``max_check`` images if given); the card reports the
    largest absolute probability difference. ``out_dir`` must be empty or new unless ``overwrite``.
    """
    from core.inference import card as model_card

    if fmt not in FORMATS:
        raise ExportError(f"format: expected one of {', '.join(FORMATS)}. Received: format={fmt!r}")
    store = store or RunStore()
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out: {out} is a file; expected a folder (new or empty)")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ExportError(f"--out: {out} is not empty; choose a new folder or pass --overwrite")
    model, spec = run_face_model(store, run_id)
    x = test_faces(store, run_id, max_check)
    if len(x) == 0:
        raise RunNotFound(f"Run {run_id!r}: its dataset has no test images to check the export against")
    out.mkdir(parents=True, exist_ok=True)
    target = out / FORMATS[fmt]
    if target.is_dir():
        shutil.rmtree(target)
    # Written beside the target first, so a failed conversion leaves no half-written model behind.
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        written = write_format(model, fmt, Path(tmp))
        exported = load_export(written, fmt)
        diff = max_difference(lambda b: np.asarray(model.predict_on_batch(b)), exported, x)
        del exported
        shutil.move(str(written), target)
    card = model_card.build_card(store, run_id, spec, fmt=fmt, check={"max_abs_prob_diff": diff, "images": len(x),
                                                                       "against": "the run's Keras model"})
    card_json, card_md = out / "model_card.json", out / "MODEL_CARD.md"
    card_json.write_text(json.dumps(card, indent=2))
    card_md.write_text(model_card.card_markdown(card))
    return ExportResult(target, card_json, card_md, card)
