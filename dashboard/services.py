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
# Used until this machine has finished a run: steady-state rates measured on a 2-core CPU
# at 48 px, batch 32 (resnet50: 2800 images in 77 s an epoch, vgg16: in 92 s).
DEFAULT_TRAIN_IMAGES_PER_SEC = {"resnet50": 36.0, "vgg16": 30.0}
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


KIND_NOTES = {"ga-individual": " · GA individual, scored on validation", "evaluation": " · re-evaluation"}


def run_labels(table: pd.DataFrame) -> dict[str, str]:
    """Readable unique labels: ``arch/variant · dataset · short id``, plus what kind of run it is."""
    kinds = table["kind"] if "kind" in table else pd.Series("run", index=table.index)
    return {r.run_id: f"{r.label} · {r.dataset} · {r.run_id[:6]}{KIND_NOTES.get(k, '')}"
            for r, k in zip(table.itertuples(), kinds)}


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


# ------------------------------------------------------------------ evolve page
# core.evolution imports only NumPy and pandas: reading searches never loads TensorFlow or PyGAD.
def gene_choices(mode: str = "hyper") -> dict[str, tuple]:
    """The genes a search of ``mode`` can pin, each with its allowed values in the search space's order."""
    from core import evolution

    genes = {g.name: g.choices for g in evolution.GENE_SPACE}
    return genes if mode == "hyper" else {name: genes[name] for name in evolution.HEAD_GENES}


def budget_defaults() -> dict[str, Any]:
    """The fitness budget a search gets unless told otherwise (epochs, max_train, max_eval, long_epochs)."""
    from dataclasses import asdict

    from core import evolution

    return asdict(evolution.Budget())


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def searches() -> pd.DataFrame:
    """Saved searches, newest first (``core.evolution.list_searches``)."""
    from core import evolution

    return evolution.list_searches()


@st.cache_data(ttl=1, show_spinner=False)
def search(search_id: str) -> dict | None:
    """``core.evolution.search_state``, or None while its job has not started it yet."""
    from core import evolution

    try:
        return evolution.search_state(search_id)
    except evolution.SearchNotFound:
        return None


def search_options() -> list[str]:
    """Search ids to offer: queued ones (no saved state yet) first, then saved searches, newest first."""
    saved = searches().search_id.tolist()
    table = job_table()
    queued = [g for g in table[table.kind == "evolve"].group if g and g not in saved]
    return list(dict.fromkeys(queued + saved))


def search_jobs(search_id: str) -> pd.DataFrame:
    """The queue's jobs for one search (start, resume, retrain), newest first."""
    table = job_table()
    return table[(table.kind == "evolve") & (table.group == search_id)]


def job_action(job_id: int) -> str:
    """What an evolve job does: 'start', 'resume' or 'retrain'."""
    return jobs.get_job(job_id)["payload"].get("action", "start")


def evolve_base(dataset: str, epochs: int, seed: int) -> RunConfig:
    """The full budget: what the best genome is retrained with (genes override it)."""
    return presets.base_config("resnet50", dataset, epochs=epochs, seed=seed)


def evolve_estimate(dataset: str, mode: str, population: int, generations: int, budget: dict[str, Any],
                    fixed: dict[str, Any], final_epochs: int, seed: int = 42, retrain_best: bool = True) -> dict:
    """Upper bound of a search's wall time here: every slot trained (cached repeats cost nothing), at the
    mean cost over the free architecture and input-size choices (the genes that set a run's speed)."""
    from dataclasses import replace
    from itertools import product

    genes = gene_choices()
    archs = [fixed["arch"]] if "arch" in fixed else list(genes["arch"])
    sizes = [fixed["input_size"]] if "input_size" in fixed else list(genes["input_size"])
    base = evolve_base(dataset, final_epochs, seed)
    full = [replace(base, model=replace(base.model, arch=a, input_size=s)) for a, s in product(archs, sizes)]

    def mean_cost(configs: list[RunConfig], epochs: int | None = None, capped: bool = True) -> float:
        if capped:
            configs = [replace(c, data=replace(c.data, max_train=budget.get("max_train") or None,
                                               max_eval=budget.get("max_eval") or None)) for c in configs]
        if epochs is not None:
            configs = [replace(c, train=replace(c.train, epochs=epochs)) for c in configs]
        return estimate_seconds(configs) / len(configs)

    if mode == "head":
        # One pass of the backbone over the images (at most a training epoch's cost); the GA and
        # the optimizers then work on cached features in seconds.
        features = mean_cost(full, epochs=1)
        return {"seconds": features, "trainings": 0, "per_training": 0.0, "long_trainings": 0,
                "final_seconds": 0.0, "features_seconds": features}
    per = mean_cost(full, epochs=int(budget["epochs"]))
    trainings = population * (generations + 1)
    longs = math.ceil(population / 3) * (generations + 1) if budget.get("long_epochs") else 0
    long_cost = mean_cost(full, epochs=int(budget["long_epochs"])) if longs else 0.0
    final = mean_cost(full, capped=False) if retrain_best else 0.0
    return {"seconds": trainings * per + longs * long_cost + final, "trainings": trainings, "per_training": per,
            "long_trainings": longs, "final_seconds": final, "features_seconds": 0.0}


def new_search_id(strategy: str, mode: str) -> str:
    """A fresh search id (``evo-...``, ``random-...``, ``head-...``)."""
    from core import evolution

    return evolution.new_search_id(strategy, mode)


def submit_evolve(dataset: str, *, population: int, generations: int, strategy: str, mode: str,
                  budget: dict[str, Any], fixed: dict[str, Any], seed: int, retrain_best: bool,
                  final_epochs: int, search_id: str | None = None, key: str | None = None) -> tuple[int, str]:
    """Queue a search and make sure a worker runs it; return ``(job_id, search_id)``."""
    job_id, search_id = jobs.submit_evolve(
        dataset, population=population, generations=generations, strategy=strategy, mode=mode, budget=budget,
        fixed=fixed, seed=seed, retrain_best=retrain_best, base=evolve_base(dataset, final_epochs, seed),
        search_id=search_id, key=key)
    jobs.ensure_worker()
    job_table.clear()
    return job_id, search_id


def submit_search_action(search_id: str, action: str, key: str | None = None) -> int:
    """Queue ``resume`` or ``retrain`` (the best genome, full budget) for a saved search; start a worker."""
    job_id = jobs.submit_search_action(search_id, action, key=key)
    jobs.ensure_worker()
    job_table.clear()
    search.clear()
    return job_id


def evolve_comparison(search_id: str) -> pd.DataFrame:
    """Test accuracy (with its 95% CI) of the search's retrained best genome beside the latest finished
    run of each architecture x configuration and the other searches' retrained best genomes, all on
    the search's dataset. Columns: label, kind, test_accuracy, CI low, CI high, epochs, run_id."""
    state = search(search_id)
    table = runs()
    done = table[(table.status == "FINISHED") & table.test_accuracy.notna() & (table.dataset == state["dataset"])]
    picked: list[tuple[str, str, str]] = []  # (run_id, label, kind)
    if state["final_run_id"] in set(done.run_id):
        picked.append((state["final_run_id"], f"ga-{search_id} (this search)", "this search"))
    latest = done[done.variant.isin(CONFIG_IDS)].drop_duplicates(["arch", "variant"])  # runs() is newest first
    picked += [(r.run_id, f"{r.arch}/{r.variant} · {r.run_id[:6]}", "configuration") for r in latest.itertuples()]
    others = searches()
    others = others[(others.search_id != search_id) & (others["mode"] == "hyper") & (others.dataset == state["dataset"])
                    & others.final_run_id.isin(set(done.run_id))]
    for r in others.itertuples():
        kind = "random search" if r.strategy == "random" else "GA search"
        picked.append((r.final_run_id, f"ga-{r.search_id} ({kind})", kind))
    rows = []
    by_id = done.set_index("run_id")
    for run_id, label, kind in picked:
        ci = (report(run_id) or {}).get("accuracy_ci") or [math.nan, math.nan]
        rows.append({"label": label, "kind": kind, "test_accuracy": by_id.loc[run_id, "test_accuracy"],
                     "CI low": ci[0], "CI high": ci[1], "epochs": by_id.loc[run_id, "epochs"], "run_id": run_id})
    return pd.DataFrame(rows, columns=["label", "kind", "test_accuracy", "CI low", "CI high", "epochs", "run_id"])


def search_fitness_peers(search_id: str) -> pd.DataFrame:
    """Best fitness of this search and of every search it can be compared with fairly: same dataset,
    mode hyper, population, generations and fitness budget (so GA and random spent the same).
    Columns: label, strategy, best_fitness, evaluations, status, search_id."""
    state = search(search_id)
    rows = []
    for r in searches().itertuples():
        other = state if r.search_id == search_id else search(r.search_id)
        if other is None or other["mode"] != "hyper" or other["dataset"] != state["dataset"]:
            continue
        same = all(other["settings"][k] == state["settings"][k] for k in ("population", "generations", "budget"))
        if not same or pd.isna(r.best_fitness):
            continue
        strategy = "GA" if r.strategy == "ga" else "random"
        rows.append({"label": f"{r.search_id} ({strategy}{', this search' if r.search_id == search_id else ''})",
                     "strategy": r.strategy, "best_fitness": r.best_fitness, "evaluations": r.evaluations,
                     "status": r.status, "search_id": r.search_id})
    return pd.DataFrame(rows, columns=["label", "strategy", "best_fitness", "evaluations", "status", "search_id"])
