"""Reference models: trusted local Keras files an operator registers to compare with trained runs.

Owns the registry (artifacts/reference_models.json): registering a model (validated
against its labels, input shape and scaling, pinned by its SHA-256), listing and looking
up entries, loading a registered file only while it still matches its hash, the input
scalings a reference may declare, and scoring a reference on a dataset as an evaluation run.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.configs import ConfigError, DataConfig, ModelConfig, RunConfig, artifacts_dir, atomic_write
from core.data import datasets
from core.data.loaders import canonical_class
from core.store import RunStore
from core.train import models, runs
from core.train.device import accelerator

REFERENCE_PREFIX = "ref:"
REGISTRY_FILE = "reference_models.json"
SCALINGS = ("0-1", "-1-1", "caffe", "torch", "none")
# Names that read well on a command line ("-1-1" parses as an option there); entries store SCALINGS.
SCALING_NAMES: dict[str, str] = {"unit": "0-1", "symmetric": "-1-1"}
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")  # .hdf5 is the legacy HDF5 format under its other common name
ONNX_SUFFIX = ".onnx"  # run on ONNX Runtime (core.inference.onnx_model): exported runs, published ONNX models
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Reference evaluations are recorded through runs.evaluate_and_log, which feeds the model
# this arch's pipeline output; an adapter layer turns that back into the reference's own
# input (see _reference_adapter).
_EVAL_ARCH = "vgg16"


class ReferenceModelError(ConfigError):
    """A reference model could not be registered or used; the message names the bad value."""


def registry_path() -> Path:
    """The operator's list of reference models (artifacts/reference_models.json)."""
    return artifacts_dir() / REGISTRY_FILE


def list_references() -> dict[str, dict]:
    """Registered reference models: name -> entry (path, labels, input_size, channels, scaling, ...)."""
    path = registry_path()
    if not path.is_file():
        return {}
    try:
        return dict(json.loads(path.read_text()).get("models", {}))
    except (ValueError, AttributeError) as exc:
        raise ReferenceModelError(f"{path} is not a valid reference model registry ({exc}); fix or remove it") from exc


def reference_entry(name: str) -> dict:
    """The registry entry of reference ``name``; ReferenceModelError naming the known ones if absent."""
    refs = list_references()
    if name not in refs:
        known = ", ".join(sorted(refs)) or "none registered"
        raise ReferenceModelError(f"Unknown reference model {name!r} (known: {known}); register one with "
                                  "`python -m core register-model NAME PATH --labels ...`")
    return refs[name]


def register_reference(name: str, path: str | Path, labels: Sequence[str] | str, input_size: int,
                       channels: int = 1, scaling: str = "0-1", replace: bool = False,
                       provenance: dict | None = None) -> dict:
    """Validate a trusted local Keras or ONNX model and add it to the registry; returns its entry.

    ``labels`` are the model's output classes in order (a list or "angry,disgust,...");
    names are mapped onto the FER2013 vocabulary where they match ("Happiness" -> happy),
    so the model can be compared and evaluated by class name. ``scaling``: 'unit' or '0-1'
    (x/255), 'symmetric' or '-1-1' (x/127.5-1), 'caffe' (RGB->BGR minus ImageNet means,
    3 channels only), 'torch' (x/255 minus ImageNet means, over ImageNet standard deviations:
    PyTorch exports such as HSEmotion's ONNX models; 3 channels only), 'none'. ``provenance``
    (package, version, licence, trained_on, ...) is stored with the entry and shown wherever
    the model is offered. ``.onnx`` files run on ONNX Runtime; channels-first graphs are fed
    channels last like the rest (``core.inference.onnx_model``).
    """
    scaling = SCALING_NAMES.get(scaling, scaling)
    labels = _check_arguments(name, labels, input_size, channels, scaling)
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise ReferenceModelError(f"path: {file} does not exist or is not a file")
    if file.suffix.lower() not in (*MODEL_SUFFIXES, ONNX_SUFFIX):
        raise ReferenceModelError(f"path: {file} is not a Keras or ONNX model file; expected a "
                                  f"{', '.join(MODEL_SUFFIXES)} or {ONNX_SUFFIX} file. Received: path={str(path)!r}")
    existing = list_references()
    if name in existing and not replace:
        raise ReferenceModelError(f"name: a reference model named {name!r} is already registered "
                                  f"({existing[name]['path']}); pass replace=True (--replace) to overwrite it")

    model = _load_model_file(file)
    n_in, n_out_tensors, in_shape, out_shape = _io_shapes(model)
    if n_in != 1 or n_out_tensors != 1:
        raise ReferenceModelError(f"path: {file.name} has {n_in} inputs and {n_out_tensors} "
                                  "outputs; expected one image input and one class-score output")
    shape = tuple(in_shape[1:])
    expected = (input_size, input_size, channels)
    if len(shape) != 3 or any(s is not None and s != e for s, e in zip(shape, expected)):
        raise ReferenceModelError(f"input shape: {file.name} expects input {shape}, but input_size={input_size}, "
                                  f"channels={channels} describe {expected}")
    n_out = out_shape[-1]
    if len(out_shape) != 2 or n_out != len(labels):
        raise ReferenceModelError(f"labels: {file.name} outputs {n_out} class scores but {len(labels)} labels were "
                                  f"given. Received: labels={','.join(labels)}")
    entry = {
        "path": str(file), "sha256": _sha256(file), "labels": list(labels), "input_size": int(input_size),
        "channels": int(channels), "scaling": scaling, "outputs": _output_kind(model, expected, scaling),
        "gradcam_layer": None if is_onnx(file) else _gradcam_layer(model),
        "registered": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if provenance:
        entry["provenance"] = dict(provenance)
    _write_registry({**existing, name: entry})
    return entry


def _check_arguments(name: str, labels: Sequence[str] | str, input_size: int, channels: int,
                     scaling: str) -> list[str]:
    """Everything about a registration that needs no file; returns the canonical labels."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ReferenceModelError("name: expected 1-64 letters, digits, '.', '_' or '-' (starting with a letter "
                                  f"or digit). Received: name={name!r}")
    labels = _check_labels(labels)
    if not isinstance(input_size, (int, np.integer)) or not 8 <= input_size <= 1024:
        raise ReferenceModelError(f"input_size: expected an integer in [8, 1024]. Received: input_size={input_size!r}")
    if channels not in (1, 3):
        raise ReferenceModelError(f"channels: expected 1 (grayscale) or 3 (RGB). Received: channels={channels!r}")
    if scaling not in SCALINGS:
        names = ", ".join([*(f"{k} ({v})" for k, v in SCALING_NAMES.items()), *SCALINGS])
        raise ReferenceModelError(f"scaling: expected one of {names}. Received: scaling={scaling!r}")
    if scaling in ("caffe", "torch") and channels != 3:
        raise ReferenceModelError(f"scaling: {scaling!r} normalises each colour by ImageNet statistics and needs "
                                  f"channels=3. Received: scaling={scaling!r}, channels={channels!r}")
    return labels


def _check_labels(labels: Sequence[str] | str) -> list[str]:
    raw = labels.split(",") if isinstance(labels, str) else list(labels)
    names = [canonical_class(str(label).strip()) for label in raw]
    if not names or any(not n for n in names):
        raise ReferenceModelError(f"labels: expected non-empty class names, comma-separated. Received: labels={labels!r}")
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise ReferenceModelError(f"labels: {dups} appear more than once. Received: labels={labels!r}")
    return names


def load_reference_model(name: str, entry: dict):
    """The model (Keras, or ``OnnxModel`` for .onnx) of a registered reference, refused if its file moved or
    changed since registration."""
    file = Path(entry["path"])
    if not file.is_file():
        raise ReferenceModelError(f"reference model {name!r}: {file} no longer exists; re-register it")
    if _sha256(file) != entry["sha256"]:
        # Only the file the operator approved may run.
        raise ReferenceModelError(f"reference model {name!r}: {file} changed since it was registered; "
                                  "check it and register it again with --replace")
    return _load_model_file(file)


def is_onnx(path: str | Path) -> bool:
    """Whether a model file is run on ONNX Runtime rather than Keras (by its suffix)."""
    return Path(path).suffix.lower() == ONNX_SUFFIX


def _load_model_file(file: Path):
    if not is_onnx(file):
        return _load_keras_file(file)
    from core.inference.onnx_model import OnnxModel

    try:
        return OnnxModel(file)
    except ValueError as exc:
        raise ReferenceModelError(f"path: {exc}") from exc


def _io_shapes(model) -> tuple[int, int, tuple, tuple]:
    """(number of inputs, number of outputs, first input's shape, first output's shape) of a Keras or ONNX model."""
    from core.inference.onnx_model import OnnxModel

    if isinstance(model, OnnxModel):
        return model.n_inputs, model.n_outputs, model.input_shape, model.output_shape
    return len(model.inputs), len(model.outputs), tuple(model.inputs[0].shape), tuple(model.outputs[0].shape)


def _load_keras_file(file: Path):
    import keras

    try:
        # Even for an operator's trusted file, refuse arbitrary code (Lambda layers).
        return keras.models.load_model(file, safe_mode=True, compile=False)
    except Exception as exc:
        raise ReferenceModelError(f"path: {file} could not be loaded as a Keras model "
                                  f"({type(exc).__name__}: {exc})") from exc


def _sha256(file: Path) -> str:
    h = hashlib.sha256()
    with file.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _output_kind(model, shape: tuple[int, int, int], scaling: str) -> str:
    """'probabilities' if the model ends in a softmax, else 'logits' (softmax is applied on top)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (4, *shape)).astype(np.float32)
    out = np.asarray(model.predict_on_batch(scale(x, scaling)), dtype=np.float64)
    ok = np.all(out >= -1e-6) and np.allclose(out.sum(axis=1), 1.0, atol=1e-3)
    return "probabilities" if ok else "logits"


def _gradcam_layer(model) -> str | None:
    """The Grad-CAM target of a flat model: its last layer with a 4-D (feature map) output,
    provided the layers after it form a simple chain (the CAM path re-applies them in order)."""
    import keras

    layers = model.layers
    for i in range(len(layers) - 1, -1, -1):
        if isinstance(layers[i], keras.layers.InputLayer):
            return None
        try:
            if len(layers[i].output.shape) != 4:
                continue
            chained = all(nxt.input is prev.output for prev, nxt in zip(layers[i:], layers[i + 1:]))
        except (AttributeError, ValueError):  # a shared layer has no single input/output
            return None
        return layers[i].name if chained else None
    return None


def _write_registry(entries: dict[str, dict]) -> None:
    path = registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps({"models": entries}, indent=2))


def scale(x: np.ndarray, scaling: str) -> np.ndarray:
    """Float pixel values 0-255 (N,H,W,C; RGB order) -> a reference model's input range (one of SCALINGS)."""
    if scaling == "0-1":
        return x / np.float32(255.0)
    if scaling == "-1-1":
        return x / np.float32(127.5) - np.float32(1.0)
    if scaling in ("caffe", "torch"):
        from keras.applications import imagenet_utils

        return imagenet_utils.preprocess_input(np.array(x, dtype=np.float32), mode=scaling)
    return x


def evaluate_reference(name: str, dataset: str, store: RunStore | None = None,
                       max_eval: int | None = None) -> tuple[str, dict]:
    """Score a reference model on a dataset's test split, recorded as a run; returns (run_id, report).

    Classes are matched by name, as for ``core.train.runs.evaluate_stored``. The run is written
    by ``core.train.runs.record_evaluation``, so it carries the same report, per-sample
    predictions and model file as any evaluated run.
    """
    store = store or RunStore()
    entry = reference_entry(name)
    size = int(entry["input_size"])
    if not 32 <= size <= 512:
        raise ReferenceModelError(f"reference model {name!r}: input_size={size} is outside [32, 512], the range "
                                  "the evaluation pipeline supports")
    if is_onnx(entry["path"]):
        # An evaluation run stores a Keras model (re-evaluable like any run); an ONNX graph cannot be one.
        raise ReferenceModelError(f"reference model {name!r}: {entry['path']} is an ONNX model; ONNX references "
                                  "predict (python -m core predict --runs ref:NAME) but are not evaluated as runs. "
                                  "Evaluate the run it was exported from instead")
    accelerator()  # on a GPU: memory growth on, so the evaluation can share it with training jobs
    reference = load_reference_model(name, entry)
    cfg = RunConfig(variant=f"ref-{name}", data=DataConfig(dataset=dataset, max_eval=max_eval),
                    model=ModelConfig(arch=_EVAL_ARCH, weights="none", input_size=size)).validate()
    target = datasets.load_for_run(cfg.data)
    ds = runs.relabel(target, entry["labels"], f"reference model {name!r}")
    model = _reference_adapter(reference, entry, name)
    tags = {"kind": "evaluation", "evaluated_from": REFERENCE_PREFIX + name, "label": f"reference/{name}",
            "arch": "reference", "variant": f"ref-{name}", "reference.path": entry["path"],
            "reference.sha256": entry["sha256"], "reference.scaling": entry["scaling"]}
    return runs.record_evaluation(model, cfg, ds, store, tags)


def _reference_adapter(model, entry: dict, name: str):
    """Reference model behind a fixed 1x1 convolution that turns _EVAL_ARCH's pipeline output
    (grayscale tiled to 3 channels, then its preprocess_input) into the reference's own input.

    Both ends are per-channel affine maps of the gray value g, so one exact linear layer
    inverts one and applies the other. The saved run model therefore matches its recorded
    config: the store stays consistent, and the run can be re-evaluated like any other.
    """
    import keras

    channels = int(entry["channels"])
    zero, one = np.zeros((1, 1, 1, 1), np.float32), np.full((1, 1, 1, 1), 255.0, np.float32)
    # Pipeline side: p_c = a_c * g + b_c.
    b = models.to_model_input(zero, _EVAL_ARCH, 1).numpy().reshape(3)
    a = (models.to_model_input(one, _EVAL_ARCH, 1).numpy().reshape(3) - b) / 255.0
    # Reference side: r_k = s_k * g + o_k (gray tiled to its channels, then its scaling).
    o = scale(np.repeat(zero, channels, axis=-1), entry["scaling"]).reshape(channels)
    s = (scale(np.repeat(one, channels, axis=-1), entry["scaling"]).reshape(channels) - o) / 255.0
    kernel = (s[None, :] / (3.0 * a[:, None])).reshape(1, 1, 3, channels)
    bias = o - s * np.sum(b / (3.0 * a))
    size = int(entry["input_size"])
    inputs = keras.Input((size, size, 3), name="image")
    adapter = keras.layers.Conv2D(channels, 1, name="reference_input_adapter", trainable=False)
    out = model(adapter(inputs))
    adapter.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    if entry["outputs"] == "logits":
        out = keras.layers.Softmax(name="reference_softmax")(out)
    return keras.Model(inputs, out, name=f"reference_{re.sub(r'[^A-Za-z0-9_]', '_', name)}")
