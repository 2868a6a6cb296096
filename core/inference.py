"""Predict: every face in a photo, scored by every selected model, with Grad-CAM.

Models come from two places only: finished runs in the run store, and reference models
an operator registered from a trusted local file (``python -m core register-model``).
Both are wrapped as *predictors* with one interface, so the Predict page and the CLI
never care which kind they hold. Each predictor converts a face crop exactly as its
model's training data was converted: a trained run sees the face in grayscale at its
dataset's resolution, then through ``core.models.preprocess`` (the function the
training pipeline uses); a reference model sees it as its registration says.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from core import datasets, models
from core.config import ConfigError, DataConfig, ModelConfig, RunConfig, artifacts_dir
from core.faces import DETECTORS, Face, crop_face, detect_faces, to_gray
from core.tracking import RunNotFound, RunStore

REFERENCE_PREFIX = "ref:"
REGISTRY_FILE = "reference_models.json"
SCALINGS = ("0-1", "-1-1", "caffe", "none")
MODEL_SUFFIXES = (".keras", ".h5")
NO_FACE_MESSAGE = (
    "No face found. If the photo is already a cropped face (like FER2013 images), "
    "use detector='whole' to score the whole image."
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Reference evaluations are recorded through the training code's evaluate_and_log,
# which feeds the model this arch's pipeline output; an adapter layer turns that back
# into the reference's own input (see _reference_adapter).
_EVAL_ARCH = "vgg16"
_CACHE_SIZE = 8


class ReferenceModelError(ConfigError):
    """A reference model could not be registered or used; the message names the bad value."""


# ---------------------------------------------------------------- predictors


@dataclass(frozen=True)
class Predictor:
    """What the Predict page needs to know about one model, before loading it."""

    id: str  # a run id, or "ref:<name>"
    label: str
    kind: str  # "run" | "reference"
    arch: str  # "resnet50" | "vgg16" | "reference"
    class_names: tuple[str, ...]
    input_size: int
    color: str  # "gray" | "rgb": how the model sees the face
    source_size: int  # faces are first brought to this resolution (the training data's)
    scaling: str  # the arch name (its preprocess_input) for runs; one of SCALINGS for references
    dataset: str = ""  # the training dataset (runs)
    test_accuracy: float | None = None
    gradcam: bool = True
    path: str = ""  # the model file (references)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["class_names"] = list(self.class_names)
        return d


def list_predictors(store: RunStore | None = None) -> list[dict]:
    """Finished training runs in the store (newest first), then registered references.

    Each dict: id, label, kind ('run'|'reference'), arch, class_names, input_size, color,
    source_size, scaling, dataset, test_accuracy, gradcam, path. Evaluation runs are left
    out: their model is the one of the run (or reference) they evaluated.
    """
    store = store or RunStore()
    out = [p.to_dict() for p in _run_predictors(store)]
    out += [_reference_predictor(name, entry).to_dict() for name, entry in list_references().items()]
    return out


def _run_predictors(store: RunStore) -> list[Predictor]:
    runs = store.client.search_runs([store.experiment_id], filter_string="attributes.status = 'FINISHED'",
                                    max_results=1000, order_by=["attributes.start_time DESC"])
    found = []
    for run in runs:
        if run.data.tags.get("kind") == "evaluation":
            continue
        p = _predictor_from_run(store, run)
        if p is not None:
            found.append(p)
    return found


def _predictor_from_run(store: RunStore, run) -> Predictor | None:
    tags, params, run_id = run.data.tags, run.data.params, run.info.run_id
    report = store.report(run_id)
    if report is None or "model.input_size" not in params or tags.get("has_model") == "False":
        return None  # finished without evaluation, or its model was not kept: nothing to predict with
    size = int(params["model.input_size"])
    dataset = tags.get("dataset", "")
    source = tags.get("dataset.image_size", "")
    return Predictor(
        id=run_id, label=f"{tags.get('label', run.info.run_name)} ({dataset}, {run_id[:8]})", kind="run",
        arch=params.get("model.arch", tags.get("arch", "")), class_names=tuple(report["class_names"]),
        input_size=size, color="gray", source_size=int(source) if source.isdigit() else size,
        scaling=params.get("model.arch", ""), dataset=dataset, test_accuracy=report.get("accuracy"),
    )


def _run_predictor(store: RunStore, run_id: str) -> Predictor:
    try:
        run = store.client.get_run(run_id)
    except Exception as exc:
        raise RunNotFound(f"No run {run_id!r} in the store at {store.uri}") from exc
    if run.info.status != "FINISHED":
        raise RunNotFound(f"Run {run_id!r} is {run.info.status}; only finished runs can predict")
    p = _predictor_from_run(store, run)
    if p is None:
        raise RunNotFound(f"Run {run_id!r} has no test report or model to predict with")
    return p


def match_predictors(tokens: Sequence[str], predictors: Sequence[dict] | None = None) -> list[str]:
    """Resolve user input (full ids, unique run-id prefixes, 'ref:NAME' or a reference NAME) to ids."""
    predictors = list_predictors() if predictors is None else predictors
    ids = [p["id"] for p in predictors]
    out = []
    for token in tokens:
        hits = [i for i in ids if i == token or i == REFERENCE_PREFIX + token]
        hits = hits or [i for i in ids if not i.startswith(REFERENCE_PREFIX) and i.startswith(token)]
        if len(hits) != 1:
            what = "matches no finished run or reference model" if not hits else f"matches {len(hits)} runs"
            raise RunNotFound(f"{token!r} {what}; `python -m core runs` lists run ids")
        out.append(hits[0])
    return out


# ---------------------------------------------------------------- reference models


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
        raise ReferenceModelError(f"{path} is not a valid reference model registry ({exc}); fix or remove it")


def register_reference(name: str, path: str | Path, labels: Sequence[str] | str, input_size: int,
                       channels: int = 1, scaling: str = "0-1", replace: bool = False) -> dict:
    """Validate a trusted local Keras model and add it to the registry; returns its entry.

    ``labels`` are the model's output classes in order (a list or "angry,disgust,...");
    names are mapped onto the FER2013 vocabulary where they match ("Happiness" -> happy),
    so the model can be compared and evaluated by class name. ``scaling``: '0-1' (x/255),
    '-1-1' (x/127.5-1), 'caffe' (RGB->BGR minus ImageNet means, 3 channels only), 'none'.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ReferenceModelError("name: expected 1-64 letters, digits, '.', '_' or '-' (starting with a letter "
                                  f"or digit). Received: name={name!r}")
    labels = _check_labels(labels)
    if not isinstance(input_size, (int, np.integer)) or not 8 <= input_size <= 1024:
        raise ReferenceModelError(f"input_size: expected an integer in [8, 1024]. Received: input_size={input_size!r}")
    if channels not in (1, 3):
        raise ReferenceModelError(f"channels: expected 1 (grayscale) or 3 (RGB). Received: channels={channels!r}")
    if scaling not in SCALINGS:
        raise ReferenceModelError(f"scaling: expected one of {', '.join(SCALINGS)}. Received: scaling={scaling!r}")
    if scaling == "caffe" and channels != 3:
        raise ReferenceModelError(f"scaling: 'caffe' subtracts per-colour ImageNet means and needs channels=3. "
                                  f"Received: scaling={scaling!r}, channels={channels!r}")
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise ReferenceModelError(f"path: {file} does not exist or is not a file")
    if file.suffix.lower() not in MODEL_SUFFIXES:
        raise ReferenceModelError(f"path: {file} is not a Keras model file; expected a {' or '.join(MODEL_SUFFIXES)} "
                                  f"file. Received: path={str(path)!r}")
    existing = list_references()
    if name in existing and not replace:
        raise ReferenceModelError(f"name: a reference model named {name!r} is already registered "
                                  f"({existing[name]['path']}); pass replace=True (--replace) to overwrite it")

    model = _load_keras_file(file)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ReferenceModelError(f"path: {file.name} has {len(model.inputs)} inputs and {len(model.outputs)} "
                                  "outputs; expected one image input and one class-score output")
    shape = tuple(model.inputs[0].shape[1:])
    expected = (input_size, input_size, channels)
    if len(shape) != 3 or any(s is not None and s != e for s, e in zip(shape, expected)):
        raise ReferenceModelError(f"input shape: {file.name} expects input {shape}, but input_size={input_size}, "
                                  f"channels={channels} describe {expected}")
    n_out = model.outputs[0].shape[-1]
    if len(model.outputs[0].shape) != 2 or n_out != len(labels):
        raise ReferenceModelError(f"labels: {file.name} outputs {n_out} class scores but {len(labels)} labels were "
                                  f"given. Received: labels={','.join(labels)}")
    entry = {
        "path": str(file), "sha256": _sha256(file), "labels": list(labels), "input_size": int(input_size),
        "channels": int(channels), "scaling": scaling, "outputs": _output_kind(model, expected, scaling),
        "gradcam_layer": _gradcam_layer(model), "registered": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    _write_registry({**existing, name: entry})
    return entry


def _check_labels(labels: Sequence[str] | str) -> list[str]:
    raw = labels.split(",") if isinstance(labels, str) else list(labels)
    names = [datasets.canonical_class(str(label).strip()) for label in raw]
    if not names or any(not n for n in names):
        raise ReferenceModelError(f"labels: expected non-empty class names, comma-separated. Received: labels={labels!r}")
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise ReferenceModelError(f"labels: {dups} appear more than once. Received: labels={labels!r}")
    return names


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
    out = np.asarray(model.predict_on_batch(_scale(x, scaling)), dtype=np.float64)
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
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"models": entries}, indent=2))
    tmp.replace(path)  # atomic: a reader never sees half a file


def _reference_entry(name: str) -> dict:
    refs = list_references()
    if name not in refs:
        known = ", ".join(sorted(refs)) or "none registered"
        raise ReferenceModelError(f"Unknown reference model {name!r} (known: {known}); register one with "
                                  "`python -m core register-model NAME PATH --labels ...`")
    return refs[name]


def _reference_predictor(name: str, entry: dict) -> Predictor:
    return Predictor(
        id=REFERENCE_PREFIX + name, label=f"reference/{name}", kind="reference", arch="reference",
        class_names=tuple(entry["labels"]), input_size=int(entry["input_size"]),
        color="gray" if entry["channels"] == 1 else "rgb", source_size=int(entry["input_size"]),
        scaling=entry["scaling"], gradcam=entry.get("gradcam_layer") is not None, path=entry["path"],
    )


def _scale(x: np.ndarray, scaling: str) -> np.ndarray:
    """Float pixel values 0-255 (N,H,W,C; RGB order) -> a reference model's input range."""
    if scaling == "0-1":
        return x / np.float32(255.0)
    if scaling == "-1-1":
        return x / np.float32(127.5) - np.float32(1.0)
    if scaling == "caffe":
        from keras.applications import imagenet_utils

        return imagenet_utils.preprocess_input(np.array(x, dtype=np.float32), mode="caffe")
    return x


# ---------------------------------------------------------------- loading (cached)


@dataclass
class _Loaded:
    predictor: Predictor
    model: Any
    prepare: Callable[[list[np.ndarray]], np.ndarray]
    logits: bool
    cam_layer: str | None
    load_ms: float = 0.0
    forward: Any = None
    cam: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards building `cam`

    def __post_init__(self):
        import tensorflow as tf

        p = self.predictor
        channels = 1 if p.color == "gray" and p.kind == "reference" else 3
        # One traced graph per model for any number of faces: Keras' predict_on_batch
        # would retrace for every new batch size.
        self.forward = tf.function(
            lambda x: self.model(x, training=False),
            input_signature=[tf.TensorSpec((None, p.input_size, p.input_size, channels), tf.float32)],
        )


_cache: OrderedDict[tuple, _Loaded] = OrderedDict()
_cache_lock = threading.Lock()


def _load(predictor_id: str, store: RunStore) -> _Loaded:
    return _get(predictor_id, store)[0]


def _get(predictor_id: str, store: RunStore) -> tuple[_Loaded, bool]:
    """(loaded predictor, whether this call loaded it rather than the cache)."""
    if predictor_id.startswith(REFERENCE_PREFIX):
        name = predictor_id[len(REFERENCE_PREFIX):]
        entry = _reference_entry(name)
        file = Path(entry["path"])
        if not file.is_file():
            raise ReferenceModelError(f"reference model {name!r}: {file} no longer exists; re-register it")
        # A re-registration or a modified file is a different key: loaded (and checked) afresh.
        key: tuple = ("ref", name, json.dumps(entry, sort_keys=True), file.stat().st_mtime_ns)
    else:
        key = ("run", store.uri, predictor_id)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key], False
    from core.training import accelerator

    accelerator()  # on a GPU: memory growth on, so the predictor can share it with training jobs
    t0 = time.perf_counter()
    loaded = _load_reference(name, entry) if key[0] == "ref" else _load_run(predictor_id, store)
    loaded.load_ms = (time.perf_counter() - t0) * 1000
    with _cache_lock:
        _cache[key] = loaded
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return loaded, True


def _load_run(run_id: str, store: RunStore) -> _Loaded:
    p = _run_predictor(store, run_id)
    model = store.load_model(run_id)
    return _Loaded(p, model, lambda crops: _prepare_run(crops, p), logits=False,
                   cam_layer=models.get_spec(p.arch).last_conv_layer)


def _load_reference(name: str, entry: dict) -> _Loaded:
    file = Path(entry["path"])
    if _sha256(file) != entry["sha256"]:
        # Only the file the operator approved may run.
        raise ReferenceModelError(f"reference model {name!r}: {file} changed since it was registered; "
                                  "check it and register it again with --replace")
    p = _reference_predictor(name, entry)
    model = _load_keras_file(file)
    return _Loaded(p, model, lambda crops: _prepare_reference(crops, p), logits=entry["outputs"] == "logits",
                   cam_layer=entry.get("gradcam_layer"))


def load_predictor(predictor_id: str, store: RunStore | None = None) -> dict:
    """Load (or fetch from the in-memory cache) one predictor; returns its description."""
    return _load(predictor_id, store or RunStore()).predictor.to_dict()


# ---------------------------------------------------------------- preprocessing


def _resize_uint8(img: np.ndarray, size: int) -> np.ndarray:
    if img.shape[:2] == (size, size):
        return img
    shrink = min(img.shape[:2]) >= size
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _prepare_run(crops: list[np.ndarray], p: Predictor) -> np.ndarray:
    # Training images are uint8 grayscale at the dataset's resolution (48x48 for FER2013);
    # bringing the face there first keeps its detail level the one the model learnt from.
    gray = np.stack([_resize_uint8(to_gray(c), p.source_size) for c in crops])
    return models.preprocess(p.arch, gray, p.input_size)


def _prepare_reference(crops: list[np.ndarray], p: Predictor) -> np.ndarray:
    import tensorflow as tf

    batch = []
    for c in crops:
        img = to_gray(c)[..., None] if p.color == "gray" else (np.repeat(c[..., None], 3, 2) if c.ndim == 2 else c)
        x = tf.cast(img, tf.float32)
        if img.shape[:2] != (p.input_size, p.input_size):
            # The op the evaluation pipeline uses, so evaluate_reference sees what Predict sees.
            x = tf.image.resize(x, (p.input_size, p.input_size), method="bilinear", antialias=True)
        batch.append(x.numpy())
    return _scale(np.stack(batch).astype(np.float32), p.scaling)


def prepare_faces(predictor_id: str, crops: Sequence[np.ndarray], store: RunStore | None = None) -> np.ndarray:
    """Face crops (RGB uint8 (H,W,3) or gray (H,W), any sizes) -> the model's float32 input batch."""
    _check_crops(crops)
    return _load(predictor_id, store or RunStore()).prepare(list(crops))


def predict_crops(predictor_id: str, crops: Sequence[np.ndarray], store: RunStore | None = None) -> np.ndarray:
    """Class probabilities (N, K) for face crops, in one batch; K follows the predictor's class_names."""
    _check_crops(crops)
    loaded = _load(predictor_id, store or RunStore())
    return _predict(loaded, loaded.prepare(list(crops)))


def _check_crops(crops: Sequence[np.ndarray]) -> None:
    if len(crops) == 0:
        raise ValueError("crops: expected at least one face crop. Received: an empty list")


def _predict(loaded: _Loaded, x: np.ndarray) -> np.ndarray:
    out = np.asarray(loaded.forward(x), dtype=np.float64)
    if loaded.logits:
        out = np.exp(out - out.max(axis=1, keepdims=True))
        out /= out.sum(axis=1, keepdims=True)
    return out


# ---------------------------------------------------------------- Grad-CAM


@dataclass
class _CamGraph:
    inner: Any  # model input -> target feature maps
    rest: list  # the layers that turn those maps into the classifier layer's input, in order
    last: Any  # the classifier layer; its pre-softmax output is the class score


def _cam_graph(model, target: str, nested: str | None = None) -> _CamGraph:
    """Split ``model`` after layer ``target`` (inside the nested backbone ``nested`` if given).

    The maps and the class score must come from one computation for the gradient to
    exist, so the layers after the target are re-applied to the maps one by one.
    """
    import keras

    scope = model.get_layer(nested) if nested else model
    names = [layer.name for layer in scope.layers]
    if target not in names:
        raise ValueError(f"Grad-CAM target layer {target!r} not found in {scope.name}")
    i = names.index(target)
    rest = list(scope.layers[i + 1:])
    if nested:
        # Trained runs: image -> backbone (a nested Functional model) -> head layers.
        rest += model.layers[model.layers.index(scope) + 1:]
    return _CamGraph(keras.Model(scope.input, scope.layers[i].output), rest[:-1], rest[-1])


def _class_scores(last, h):
    """Pre-softmax class scores from the classifier layer's input (Grad-CAM uses y^c, not p^c)."""
    import keras
    from keras import ops

    act = getattr(last, "activation", None)
    if getattr(act, "__name__", "") == "softmax":
        if isinstance(last, keras.layers.Dense):
            z = ops.matmul(h, last.kernel)
            return z + last.bias if last.bias is not None else z
        if isinstance(last, keras.layers.Activation):
            return h
    if isinstance(last, keras.layers.Softmax):
        return h
    return last(h, training=False)


def grad_cam(model, x: np.ndarray, class_indices: Sequence[int], target_layer: str,
             nested: str | None = None) -> np.ndarray:
    """Grad-CAM maps (N, h, w) in [0, 1] at the target layer's resolution, one batched pass.

    ``nested`` names the backbone layer holding ``target_layer`` (trained runs); None
    for flat models. A map is all zero when no region raises the class score.
    """
    graph = _cam_graph(model, target_layer, nested)
    return _normalise(_cam_maps(graph, x, np.asarray(class_indices, dtype=np.int32)))


def _cam_maps(graph: _CamGraph, x, class_indices):
    """Unnormalised Grad-CAM (tensors in, tensor out; traceable by tf.function)."""
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        conv = graph.inner(x, training=False)
        h = conv
        for layer in graph.rest:
            h = layer(h, training=False)
        scores = _class_scores(graph.last, h)
        # Faces are independent in inference mode, so one summed score gives per-face gradients.
        total = tf.reduce_sum(tf.gather(scores, class_indices, axis=1, batch_dims=1))
    grads = tape.gradient(total, conv)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    return tf.nn.relu(tf.reduce_sum(weights * conv, axis=-1))


def _normalise(cam) -> np.ndarray:
    cam = np.asarray(cam, dtype=np.float32)
    peak = cam.reshape(len(cam), -1).max(axis=1)
    return np.where(peak[:, None, None] > 0, cam / np.maximum(peak, 1e-12)[:, None, None], 0.0).astype(np.float32)


def overlay_heatmap(crop: np.ndarray, cam: np.ndarray, alpha: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """Resize a Grad-CAM map onto the crop -> (heatmap float32 (H,W) in [0,1], RGB uint8 overlay (H,W,3))."""
    height, width = crop.shape[:2]
    heat = np.clip(cv2.resize(cam.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    colour = cv2.cvtColor(cv2.applyColorMap(np.round(heat * 255).astype(np.uint8), cv2.COLORMAP_JET),
                          cv2.COLOR_BGR2RGB)
    base = np.repeat(crop[..., None], 3, axis=2) if crop.ndim == 2 else crop
    return heat, cv2.addWeighted(base, 1.0 - alpha, colour, alpha, 0.0)


def _cams(loaded: _Loaded, x: np.ndarray, class_indices: np.ndarray) -> np.ndarray | None:
    if loaded.cam_layer is None:
        return None
    with loaded.lock:
        if loaded.cam is None:
            import tensorflow as tf

            nested = loaded.predictor.arch if loaded.predictor.kind == "run" else None
            graph = _cam_graph(loaded.model, loaded.cam_layer, nested)
            # Traced once: eager Grad-CAM through ResNet50 costs several times more.
            loaded.cam = tf.function(lambda images, idx: _cam_maps(graph, images, idx),
                                     input_signature=[tf.TensorSpec((None, *x.shape[1:]), tf.float32),
                                                      tf.TensorSpec((None,), tf.int32)])
    return _normalise(loaded.cam(x, np.asarray(class_indices, dtype=np.int32)))


# ---------------------------------------------------------------- predict


def predict_faces(rgb: np.ndarray, predictor_ids: Sequence[str], detector: str = "haar", margin: float = 0.2,
                  gradcam: bool = True, yunet_model: str | Path | None = None, min_size: int = 24,
                  store: RunStore | None = None) -> dict:
    """Detect faces in an RGB uint8 photo and score each with every predictor (one batch per model).

    Returns a dict:
      faces: list, left to right, each {index, box (x, y, w, h), score, crop (RGB uint8),
             predictions {predictor_id: {top_label, probability, probs {class: p}}},
             majority_label, agreement (models whose top label is the majority's), n_models,
             gradcam {predictor_id: {heatmap float32 (H,W) in [0,1], overlay RGB uint8 (H,W,3),
             resolution (h, w) of the map}} (only when gradcam=True and the model has one)}
      predictors: the predictor dicts used, in the order given
      timings: {detection_ms, models {predictor_id: {load_ms (0 when cached), preprocess_ms, predict_ms[,
               gradcam_ms]}}, total_ms}
      message: None, or why there is nothing to show (no face found)
      detector, image_shape (H, W)
    Grayscale (H, W) photos are accepted too. Unknown ids raise RunNotFound / ReferenceModelError.
    """
    t_start = time.perf_counter()
    ids = list(dict.fromkeys(predictor_ids))
    if not ids:
        raise ValueError("predictor_ids: choose at least one trained run or reference model")
    if detector not in DETECTORS:
        raise ValueError(f"Unknown detector {detector!r}; expected one of {', '.join(DETECTORS)}")
    store = store or RunStore()
    loaded = {}
    timings: dict[str, Any] = {"models": {}}
    for pid in ids:
        loaded[pid], fresh = _get(pid, store)
        timings["models"][pid] = {"load_ms": loaded[pid].load_ms if fresh else 0.0}

    t0 = time.perf_counter()
    faces = detect_faces(rgb, detector, min_size=min_size, yunet_model=yunet_model)
    timings["detection_ms"] = (time.perf_counter() - t0) * 1000
    result = {"faces": [], "predictors": [loaded[p].predictor.to_dict() for p in ids], "timings": timings,
              "message": None, "detector": detector, "image_shape": tuple(rgb.shape[:2])}
    if not faces:
        result["message"] = NO_FACE_MESSAGE
        timings["total_ms"] = (time.perf_counter() - t_start) * 1000
        return result

    crops = [crop_face(rgb, f, margin) for f in faces]
    probs, cams = {}, {}
    for pid, entry in loaded.items():
        t = timings["models"][pid]
        t0 = time.perf_counter()
        x = entry.prepare(crops)
        t["preprocess_ms"] = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        probs[pid] = _predict(entry, x)
        t["predict_ms"] = (time.perf_counter() - t0) * 1000
        if gradcam and entry.cam_layer is not None:
            t0 = time.perf_counter()
            cams[pid] = _cams(entry, x, probs[pid].argmax(axis=1))
            t["gradcam_ms"] = (time.perf_counter() - t0) * 1000

    for i, (face, crop) in enumerate(zip(faces, crops)):
        result["faces"].append(_face_result(i, face, crop, loaded, probs, cams))
    timings["total_ms"] = (time.perf_counter() - t_start) * 1000
    return result


def _face_result(i: int, face: Face, crop: np.ndarray, loaded: dict, probs: dict, cams: dict) -> dict:
    predictions = {}
    for pid, entry in loaded.items():
        p = probs[pid][i]
        names = entry.predictor.class_names
        top = int(p.argmax())
        predictions[pid] = {"top_label": names[top], "probability": float(p[top]),
                            "probs": {c: float(v) for c, v in zip(names, p)}}
    votes = Counter(v["top_label"] for v in predictions.values())
    # Ties go to the label its voters are surer of.
    confidence = Counter()
    for v in predictions.values():
        confidence[v["top_label"]] += v["probability"]
    majority = max(votes, key=lambda label: (votes[label], confidence[label]))
    out = {"index": i, "box": face.box, "score": face.score, "crop": crop, "predictions": predictions,
           "majority_label": majority, "agreement": votes[majority], "n_models": len(predictions), "gradcam": {}}
    for pid, maps in cams.items():
        if maps is not None:
            heat, overlay = overlay_heatmap(crop, maps[i])
            out["gradcam"][pid] = {"heatmap": heat, "overlay": overlay, "resolution": tuple(maps.shape[1:])}
    return out


# ---------------------------------------------------------------- evaluation of references


def evaluate_reference(name: str, dataset: str, store: RunStore | None = None,
                       max_eval: int | None = None) -> tuple[str, dict]:
    """Score a reference model on a dataset's test split, recorded as a run; returns (run_id, report).

    Classes are matched by name, as for ``core.training.evaluate_stored``. The run is
    written by ``core.training.evaluate_and_log``, so it carries the same report,
    per-sample predictions and model file as any evaluated run.
    """
    from core import training

    store = store or RunStore()
    entry = _reference_entry(name)
    size = int(entry["input_size"])
    if not 32 <= size <= 512:
        raise ReferenceModelError(f"reference model {name!r}: input_size={size} is outside [32, 512], the range "
                                  "the evaluation pipeline supports")
    loaded = _load(REFERENCE_PREFIX + name, store)
    cfg = RunConfig(variant=f"ref-{name}", data=DataConfig(dataset=dataset, max_eval=max_eval),
                    model=ModelConfig(arch=_EVAL_ARCH, weights="none", input_size=size)).validate()
    target = datasets.load_for_run(cfg.data, cfg.train.seed)
    ds = training.relabel(target, entry["labels"], f"reference model {name!r}")
    model = _reference_adapter(loaded.model, entry, name)
    tags = {"kind": "evaluation", "evaluated_from": REFERENCE_PREFIX + name, "label": f"reference/{name}",
            "arch": "reference", "variant": f"ref-{name}", "reference.path": entry["path"],
            "reference.sha256": entry["sha256"], "reference.scaling": entry["scaling"]}
    return training.record_evaluation(model, cfg, ds, store, tags)


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
    o = _scale(np.repeat(zero, channels, axis=-1), entry["scaling"]).reshape(channels)
    s = (_scale(np.repeat(one, channels, axis=-1), entry["scaling"]).reshape(channels) - o) / 255.0
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


# ---------------------------------------------------------------- benchmark


def latency_benchmark(predictor_id: str, n: int = 20, image: np.ndarray | None = None, detector: str = "haar",
                      margin: float = 0.2, store: RunStore | None = None) -> dict:
    """Per-face milliseconds for detection, preprocessing and prediction, model already loaded.

    ``image`` defaults to scikit-image's astronaut photo (one face). Returns
    {predictor_id, label, n, faces, image_shape, detector, detection_ms, preprocess_ms,
    predict_ms, total_ms}, each *_ms a dict of median, mean, p90 over ``n`` repetitions.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive integer. Received: n={n!r}")
    if image is None:
        try:
            from skimage import data as skdata
        except ImportError as exc:
            raise ValueError("image: pass a photo (RGB uint8); the default needs scikit-image") from exc
        image = skdata.astronaut()
    loaded = _load(predictor_id, store or RunStore())
    faces = detect_faces(image, detector)
    if not faces:
        raise ValueError(f"the benchmark image has no face for detector={detector!r}; {NO_FACE_MESSAGE}")
    # One untimed pass builds Keras' predict function for this batch size.
    _predict(loaded, loaded.prepare([crop_face(image, f, margin) for f in faces]))
    stages: dict[str, list[float]] = {"detection_ms": [], "preprocess_ms": [], "predict_ms": []}
    for _ in range(n):
        t0 = time.perf_counter()
        found = detect_faces(image, detector)
        t1 = time.perf_counter()
        x = loaded.prepare([crop_face(image, f, margin) for f in found])
        t2 = time.perf_counter()
        _predict(loaded, x)
        t3 = time.perf_counter()
        k = 1000.0 / len(found)
        stages["detection_ms"].append((t1 - t0) * k)
        stages["preprocess_ms"].append((t2 - t1) * k)
        stages["predict_ms"].append((t3 - t2) * k)
    stages["total_ms"] = [sum(v) for v in zip(*stages.values())]
    summary = {key: {"median": float(np.median(v)), "mean": float(np.mean(v)), "p90": float(np.percentile(v, 90))}
               for key, v in stages.items()}
    return {"predictor_id": predictor_id, "label": loaded.predictor.label, "n": n, "faces": len(faces),
            "image_shape": tuple(image.shape[:2]), "detector": detector, **summary}
