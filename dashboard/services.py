"""The dashboard's only door into the lab: cached reads of the run store, datasets and jobs.

Pages call these functions and never touch TensorFlow, MLflow or artifact paths. This is
the one module with ``st.cache_*``: finished runs are immutable, so their data is cached
for long; anything that changes while a job runs is cached for seconds.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core import datasets, evaluation, jobs, models, presets
from core.config import ARCHITECTURES, RunConfig
from core.tracking import RunStore

LIVE_TTL = 3  # seconds: curves of a running job refresh at the polling rate
CONFIG_IDS = presets.CONFIG_IDS
DESCRIPTIONS = presets.DESCRIPTIONS
# Measured on a 2-core CPU at 48x48 (DESIGN.md); used until this machine has its own runs.
DEFAULT_TRAIN_IMAGES_PER_SEC = {"resnet50": 12.0, "vgg16": 12.0}
STARTUP_SECONDS = 40.0  # model build + graph tracing + evaluation, per run


@st.cache_resource
def store() -> RunStore:
    return RunStore()


# ------------------------------------------------------------------ runs
@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def runs() -> pd.DataFrame:
    """All runs, newest first."""
    return store().list_runs()


def _finished(run_id: str) -> bool:
    table = runs()
    row = table[table.run_id == run_id]
    return not row.empty and row.iloc[0].status == "FINISHED"


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def _history_live(run_id: str) -> pd.DataFrame:
    return store().history(run_id)


@st.cache_data(show_spinner=False)
def _history_final(run_id: str) -> pd.DataFrame:
    return store().history(run_id)


def history(run_id: str) -> pd.DataFrame:
    """Per-epoch metrics; cached for good once the run has finished."""
    return _history_final(run_id) if _finished(run_id) else _history_live(run_id)


@st.cache_data(show_spinner=False)
def report(run_id: str) -> dict | None:
    return store().report(run_id)


@st.cache_data(show_spinner=False)
def predictions(run_id: str) -> dict[str, np.ndarray] | None:
    return store().predictions(run_id)


@st.cache_data(show_spinner=False)
def run_config(run_id: str) -> dict:
    return store().config(run_id).to_dict()


def run_labels(table: pd.DataFrame) -> dict[str, str]:
    """Readable unique labels: ``arch/variant · dataset · short id``."""
    return {r.run_id: f"{r.label} · {r.dataset} · {r.run_id[:6]}" for r in table.itertuples()}


def results_table(run_ids: list[str]) -> pd.DataFrame:
    """The Compare table: one row per run with test metrics, per-class F1, cost and speed."""
    table = runs().set_index("run_id")
    labels = run_labels(table.reset_index())
    rows = []
    for rid in run_ids:
        r = table.loc[rid]
        rep = report(rid) or {}
        row = {
            "run": labels[rid], "status": r.status, "dataset": r.dataset,
            "test accuracy": r.test_accuracy,
            "CI low": (rep.get("accuracy_ci") or [math.nan, math.nan])[0],
            "CI high": (rep.get("accuracy_ci") or [math.nan, math.nan])[1],
            "macro-F1": r.test_macro_f1, "best val accuracy": r.best_val_accuracy,
            "parameters (M)": (r.params_total or math.nan) / 1e6,
        }
        hist = history(rid)
        row["epochs"] = len(hist)
        row["epoch time (s)"] = hist.epoch_time.mean() if len(hist) else math.nan
        row["train images/s"] = hist.images_per_sec.mean() if len(hist) else math.nan
        row["total time (s)"] = r.train_time_s
        for name, f1 in zip(rep.get("class_names", []), rep.get("per_class", {}).get("f1", [])):
            row[f"F1 {name}"] = f1
        row["run_id"] = rid
        rows.append(row)
    return pd.DataFrame(rows)


def significance(run_a: str, run_b: str, names: tuple[str, str]) -> tuple[dict, str] | None:
    """McNemar between two runs scored on the same test images, with a plain-words verdict.

    Returns None when the runs were not evaluated on the same test set.
    """
    pa, pb = predictions(run_a), predictions(run_b)
    if pa is None or pb is None or len(pa["y_true"]) != len(pb["y_true"]) \
            or not np.array_equal(pa["y_true"], pb["y_true"]):
        return None
    result = evaluation.mcnemar(pa["y_true"], pa["y_pred"], pb["y_pred"])
    return result, evaluation.describe_mcnemar(*names, result)


@st.cache_data(show_spinner=False, max_entries=8)
def misclassified(run_id: str, limit: int = 24) -> dict[str, Any]:
    """Wrongly classified test images of a finished run, most confident mistakes first."""
    cfg = RunConfig.from_dict(run_config(run_id))
    preds = predictions(run_id)
    if preds is None:
        return {"images": np.zeros((0, 1, 1), np.uint8), "true": [], "pred": [], "confidence": []}
    ds = datasets.load_for_run(cfg.data, cfg.train.seed)
    x, y = ds.splits["test"]
    if len(y) != len(preds["y_true"]) or not np.array_equal(y, preds["y_true"]):
        # The dataset changed on disk since the run: indices no longer line up.
        return {"images": np.zeros((0, 1, 1), np.uint8), "true": [], "pred": [], "confidence": [],
                "stale": True}
    wrong = np.flatnonzero(preds["y_pred"] != y)
    conf = preds["probs"][wrong, preds["y_pred"][wrong]]
    order = wrong[np.argsort(-conf)][:limit]
    names = ds.class_names
    return {"images": x[order], "true": [names[i] for i in y[order]],
            "pred": [names[i] for i in preds["y_pred"][order]],
            "confidence": preds["probs"][order, preds["y_pred"][order]].tolist()}


# ------------------------------------------------------------------ datasets
@st.cache_data(ttl=30, show_spinner=False)
def dataset_names() -> list[str]:
    return [d["name"] for d in datasets.available_datasets()]


@st.cache_data(ttl=300, show_spinner="Loading dataset…")
def dataset_overview(name: str) -> dict[str, Any]:
    """Counts per split/class and a sample grid, or the loader's error message."""
    try:
        ds = datasets.load_dataset(name)
    except datasets.DatasetError as exc:
        return {"error": str(exc)}
    return {"counts": ds.counts(), "samples": datasets.sample_grid(ds, per_class=6),
            "skipped": ds.skipped, "notes": ds.notes, "image_size": ds.image_size}


def weights_status() -> pd.DataFrame:
    """ImageNet weights per architecture: cached or not, and where."""
    return pd.DataFrame([{"architecture": a, "cached": models.imagenet_weights_cached(a),
                          "path": str(models.imagenet_weights_path(a))} for a in ARCHITECTURES])


# ------------------------------------------------------------------ building runs
def build_configs(dataset: str, archs: list[str], config_ids: list[str], *, epochs: int, batch_size: int,
                  input_size: int, max_train: int | None = None, max_eval: int | None = None,
                  augment: bool = True, class_weights: bool = False, early_stopping: int = 0,
                  seed: int = 42, group: str = "") -> list[RunConfig]:
    """The configs a Train form describes (one per architecture x configuration)."""
    from dataclasses import replace

    out = []
    for arch in archs:
        base = presets.base_config(arch, dataset, epochs=epochs, batch_size=batch_size, seed=seed,
                                   early_stopping_patience=early_stopping)
        base = replace(base, group=group,
                       data=replace(base.data, max_train=max_train, max_eval=max_eval, augment=augment,
                                    class_weights=class_weights),
                       model=replace(base.model, input_size=input_size))
        out += [presets.preset(cid, base) for cid in config_ids]
    return out


def missing_weights(configs: list[RunConfig]) -> list[str]:
    """Architectures whose ImageNet weights these configs need but this machine lacks."""
    return sorted({c.model.arch for c in configs
                   if c.model.weights == "imagenet" and not models.imagenet_weights_cached(c.model.arch)})


def estimate_seconds(configs: list[RunConfig]) -> float:
    """Wall time for these runs on this machine, from throughput measured by earlier runs here."""
    table = runs()
    total = 0.0
    for c in configs:
        past = table[(table.arch == c.model.arch) & table.images_per_sec.notna()]
        rate = float(past.images_per_sec.median()) if len(past) else DEFAULT_TRAIN_IMAGES_PER_SEC[c.model.arch]
        # Throughput falls with pixel count; measured rates are at the store's typical 48 px.
        rate *= (48 / c.model.input_size) ** 2
        n_train, n_eval = _split_sizes(c)
        # Validation each epoch and the final test pass run ~3x faster than training.
        total += STARTUP_SECONDS + c.train.epochs * (n_train + n_eval / 3) / rate + n_eval / (3 * rate)
    return total


def _split_sizes(cfg: RunConfig) -> tuple[int, int]:
    overview = dataset_overview(cfg.data.dataset)
    if "error" in overview:
        return 0, 0
    counts = overview["counts"].groupby("split")["count"].sum()
    n_train = int(counts.get("train", 0))
    n_eval = int(counts.get("val", 0))
    if cfg.data.max_train:
        n_train = min(n_train, cfg.data.max_train)
    if cfg.data.max_eval:
        n_eval = min(n_eval, cfg.data.max_eval)
    return n_train, n_eval


def format_duration(seconds: float) -> str:
    """``1 h 05 min`` / ``3 min 20 s`` / ``45 s``."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def quick_comparison_configs() -> list[RunConfig]:
    """The Overview's one-click comparison: every configuration this machine can run, quickly."""
    configs = build_configs("synthetic", ["resnet50"], list(CONFIG_IDS), **presets.QUICK)
    missing = set(missing_weights(configs))
    return [c for c in configs if not (c.model.weights == "imagenet" and c.model.arch in missing)]


# ------------------------------------------------------------------ jobs
def submit(configs: list[RunConfig], group: str, key: str | None = None) -> list[int]:
    """Queue the runs (one job each, one group) and make sure a worker is running."""
    from dataclasses import replace

    configs = [replace(c, group=group) for c in configs]
    ids = jobs.submit_grid(configs, group=group, key=key)
    jobs.ensure_worker()
    runs.clear()
    job_table.clear()
    return ids


@st.cache_data(ttl=1, show_spinner=False)
def job_table() -> pd.DataFrame:
    return jobs.list_jobs()


def cancel(job_id: int) -> None:
    jobs.cancel(job_id)
    job_table.clear()


def worker_status() -> dict:
    return jobs.worker_status()


def ensure_worker() -> int | None:
    return jobs.ensure_worker()


# ------------------------------------------------------------------ compare page
def misclassified_or_error(run_id: str, limit: int = 24) -> dict[str, Any]:
    """``misclassified``, or ``{"error": message}`` when the run's dataset can no longer be loaded."""
    from core.tracking import RunNotFound

    try:
        return misclassified(run_id, limit)
    except (datasets.DatasetError, RunNotFound) as exc:
        return {"error": str(exc)}


# ------------------------------------------------------------------ predict page
YUNET_ENV = "EMOTION_LAB_YUNET_MODEL"  # path to a YuNet .onnx file; the operator's choice, never the browser's
DEFAULT_PREDICTORS = 4
_SHOW_MAX_SIDE = 1600  # the photo with its boxes is shown at most this large
_THUMB_SIDE = 320  # face crops and Grad-CAM overlays are shown about half this size; sharp on HiDPI screens


@st.cache_data(ttl=30, show_spinner=False)
def predictors() -> tuple[list[dict], str | None]:
    """(finished runs with a test report, newest first, then registered reference models; None),
    or ([], message) when the reference model registry cannot be read."""
    from core import inference

    try:
        return inference.list_predictors(store()), None
    except inference.ReferenceModelError as exc:
        return [], str(exc)


def default_predictors(available: list[dict], limit: int = DEFAULT_PREDICTORS) -> list[str]:
    """The best finished run of each architecture/configuration by test accuracy, best first, at most
    ``limit``; reference models fill the places runs leave."""
    table = runs()
    variants = dict(zip(table.run_id, table.variant))
    best: dict[tuple[str, str], dict] = {}
    for p in available:
        if p["kind"] != "run":
            continue
        group = (p["arch"], variants.get(p["id"], p["label"]))
        if group not in best or (p["test_accuracy"] or 0.0) > (best[group]["test_accuracy"] or 0.0):
            best[group] = p
    ranked = sorted(best.values(), key=lambda p: -(p["test_accuracy"] or 0.0))
    return [p["id"] for p in ranked + [p for p in available if p["kind"] == "reference"]][:limit]


def yunet_model() -> str | None:
    """The YuNet ONNX file the operator configured (env EMOTION_LAB_YUNET_MODEL), if it exists."""
    import os
    from pathlib import Path

    path = os.environ.get(YUNET_ENV, "").strip()
    return str(Path(path).expanduser()) if path and Path(path).expanduser().is_file() else None


def analyse_photo(data: bytes, name: str, predictor_ids: list[str], detector: str = "haar",
                  gradcam: bool = True) -> dict[str, Any]:
    """Every face in an uploaded photo scored by every chosen model, or ``{"error": message}``.

    The result is ``core.inference.predict_faces``'s, plus ``name`` and ``annotated`` (the
    photo, at most 1600 px wide or high, with numbered face boxes); crops and Grad-CAM
    overlays are display-sized (at most 320 px) and raw heatmaps are left out. An unreadable file, a
    model that disappeared or a broken detector file is an error message naming what went
    wrong, so one bad upload never hides the others.
    """
    from core.config import ConfigError
    from core.faces import ImageError
    from core.tracking import RunNotFound

    try:
        return _analyse_photo(data, name, tuple(predictor_ids), detector, gradcam,
                              yunet_model() if detector == "yunet" else None)
    except ImageError as exc:  # its message starts with the file name
        return {"error": str(exc), "name": name}
    except RunNotFound as exc:
        return {"error": f"{name}: {exc.args[0] if exc.args else exc}", "name": name}
    except (ConfigError, ValueError, OSError) as exc:
        return {"error": f"{name}: {exc}", "name": name}


@st.cache_data(show_spinner=False, max_entries=32, ttl=3600)
def _analyse_photo(data: bytes, name: str, predictor_ids: tuple[str, ...], detector: str, gradcam: bool,
                   yunet: str | None) -> dict[str, Any]:
    # Cached because every widget click reruns the page: the same upload with the same
    # models is scored once. Errors raise and so are never cached.
    from core import inference
    from core.faces import load_image

    image = load_image(data, name)
    result = inference.predict_faces(image, list(predictor_ids), detector=detector, gradcam=gradcam,
                                     yunet_model=yunet, store=store())
    result["name"] = name
    result["annotated"] = draw_faces(image, [f["box"] for f in result["faces"]])
    # Only what the page shows is kept (this result is cached): display-sized crops and overlays.
    for face in result["faces"]:
        face["crop"] = _thumbnail(face["crop"])
        face["gradcam"] = {pid: {"overlay": _thumbnail(c["overlay"]), "resolution": c["resolution"]}
                           for pid, c in face["gradcam"].items()}
    return result


def _thumbnail(image: np.ndarray, side: int = _THUMB_SIDE) -> np.ndarray:
    import cv2

    scale = side / max(image.shape[:2])
    if scale >= 1.0:
        return image
    return cv2.resize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))),
                      interpolation=cv2.INTER_AREA)


def draw_faces(image: np.ndarray, boxes: list[tuple[int, int, int, int]],
               max_side: int = _SHOW_MAX_SIDE) -> np.ndarray:
    """The photo (shrunk to ``max_side``) with each box outlined and numbered 1, 2, ... in box order."""
    import cv2

    scale = min(1.0, max_side / max(image.shape[:2]))
    out = image if scale == 1.0 else cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                                                interpolation=cv2.INTER_AREA)
    out = np.ascontiguousarray(out).copy()
    # Line and text sizes follow the photo, so numbers stay readable on small and large photos alike.
    thick = max(2, round(max(out.shape[:2]) / 300))
    font = max(0.5, max(out.shape[:2]) / 900)
    color, ink = (255, 221, 0), (0, 0, 0)
    for n, (x, y, w, h) in enumerate(boxes, start=1):
        x, y, w, h = (round(v * scale) for v in (x, y, w, h))
        cv2.rectangle(out, (x, y), (x + w, y + h), color, thick)
        (tw, th), base = cv2.getTextSize(str(n), cv2.FONT_HERSHEY_SIMPLEX, font, thick)
        # The label sits above the box, or inside it when the box touches the top edge.
        top = y - th - base - 2 * thick if y - th - base - 2 * thick >= 0 else y
        cv2.rectangle(out, (x, top), (x + tw + 2 * thick, top + th + base + 2 * thick), color, cv2.FILLED)
        cv2.putText(out, str(n), (x + thick, top + th + thick), cv2.FONT_HERSHEY_SIMPLEX, font, ink, thick,
                    cv2.LINE_AA)
    return out


def agreement(face: dict, labels: dict[str, str]) -> tuple[str, list[str]]:
    """("3 of 4 models say happy.", what each dissenting model says instead) for one face."""
    n, k, top = face["n_models"], face["agreement"], face["majority_label"]
    preds = face["predictions"]
    say = [f"{labels.get(pid, pid)}: {p['top_label']} ({p['probability']:.0%})" for pid, p in preds.items()]
    if n == 1:
        return f"The model says {top} ({next(iter(preds.values()))['probability']:.0%}).", []
    if k == n:
        return (f"Both models say {top}." if n == 2 else f"All {n} models say {top}."), []
    if k == 1:
        return f"The {n} models disagree.", say
    return f"{k} of {n} models say {top}.", [s for s, p in zip(say, preds.values()) if p["top_label"] != top]


def predictions_table(results: list[dict], labels: dict[str, str]) -> pd.DataFrame:
    """One row per (photo, face, model): the box, the top label and its probability, then every class."""
    rows = []
    for result in results:
        for face in result.get("faces", []):
            x, y, w, h = face["box"]
            for pid, pred in face["predictions"].items():
                rows.append({"photo": result["name"], "face": face["index"] + 1, "x": x, "y": y, "width": w,
                             "height": h, "model": labels.get(pid, pid), "top label": pred["top_label"],
                             "probability": pred["probability"], "model id": pid,
                             **{f"p({c})": v for c, v in pred["probs"].items()}})
    columns = ["photo", "face", "x", "y", "width", "height", "model", "top label", "probability", "model id"]
    return pd.DataFrame(rows, columns=None if rows else columns)


def timings_table(results: list[dict], labels: dict[str, str]) -> pd.DataFrame:
    """Milliseconds per photo and model: detection (once per photo), loading, preprocessing, prediction, Grad-CAM."""
    rows = []
    for result in results:
        if "timings" not in result:
            continue
        t = result["timings"]
        for pid, m in t["models"].items():
            rows.append({"photo": result["name"], "faces": len(result["faces"]), "detection (ms)": t["detection_ms"],
                         "model": labels.get(pid, pid), "load (ms)": m.get("load_ms"),
                         "preprocess (ms)": m.get("preprocess_ms"), "predict (ms)": m.get("predict_ms"),
                         "Grad-CAM (ms)": m.get("gradcam_ms")})
    return pd.DataFrame(rows)
