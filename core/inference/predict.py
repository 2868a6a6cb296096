"""Scoring faces: photo -> detected faces -> every selected predictor, with Grad-CAM.

Owns converting face crops into each predictor's input exactly as its training data was
converted, scoring crops in one batch per model, the per-face result of a photo (votes,
agreement, Grad-CAM overlays, timings), and the per-face latency benchmark.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.inference.faces import DETECTORS, Face, ImageError, crop_face, detect_faces, load_image, to_gray
from core.inference.gradcam import normalise, overlay_heatmap, traced_grad_cam
from core.inference.predictors import LoadedPredictor, Predictor, load
from core.inference.references import scale
from core.store import RunStore
from core.train import models

NO_FACE_MESSAGE = (
    "No face found. If the photo is already a cropped face (like FER2013 images), "
    "use detector='whole' to score the whole image."
)


# ---------------------------------------------------------------- preprocessing


def prepare(predictor: Predictor, crops: Sequence[np.ndarray]) -> np.ndarray:
    """Face crops (RGB uint8 (H,W,3) or gray (H,W), any sizes) -> the model's float32 input batch.

    A trained run sees the face in grayscale at its dataset's resolution, then through
    ``core.train.models.preprocess`` (the function the training pipeline uses); a reference
    model sees it as its registration says.
    """
    if len(crops) == 0:
        raise ValueError("crops: expected at least one face crop. Received: an empty list")
    if predictor.kind == "reference":
        return _prepare_reference(list(crops), predictor)
    # Training images are uint8 grayscale at the dataset's resolution (48x48 for FER2013);
    # bringing the face there first keeps its detail level the one the model learnt from.
    gray = np.stack([_resize_uint8(to_gray(c), predictor.source_size) for c in crops])
    return models.preprocess(predictor.arch, gray, predictor.input_size)


def _resize_uint8(img: np.ndarray, size: int) -> np.ndarray:
    if img.shape[:2] == (size, size):
        return img
    shrink = min(img.shape[:2]) >= size
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


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
    return scale(np.stack(batch).astype(np.float32), p.scaling)


# ---------------------------------------------------------------- scoring


def probabilities(loaded: LoadedPredictor, x: np.ndarray) -> np.ndarray:
    """Class probabilities (N, K) for a prepared batch (softmax applied to logit models)."""
    out = np.asarray(loaded.forward(x), dtype=np.float64)
    if loaded.logits:
        out = np.exp(out - out.max(axis=1, keepdims=True))
        out /= out.sum(axis=1, keepdims=True)
    return out


def predict_crops(predictor_id: str, crops: Sequence[np.ndarray], store: RunStore | None = None) -> np.ndarray:
    """Class probabilities (N, K) for face crops, in one batch; K follows the predictor's class_names."""
    loaded = load(predictor_id, store)[0]
    return probabilities(loaded, prepare(loaded.predictor, crops))


def _cams(loaded: LoadedPredictor, x: np.ndarray, class_indices: np.ndarray) -> np.ndarray | None:
    if loaded.cam_layer is None:
        return None
    with loaded.lock:
        if loaded.cam is None:
            nested = loaded.predictor.arch if loaded.predictor.kind == "run" else None
            loaded.cam = traced_grad_cam(loaded.model, loaded.cam_layer, nested, x.shape[1:])
    return normalise(loaded.cam(x, np.asarray(class_indices, dtype=np.int32)))


def predict_faces(rgb: np.ndarray, predictor_ids: Sequence[str], detector: str = "haar", margin: float = 0.2,
                  gradcam: bool = True, yunet_model: str | Path | None = None, min_size: int = 24,
                  store: RunStore | None = None, preloaded: dict[str, LoadedPredictor] | None = None) -> dict:
    """Detect faces in an RGB uint8 photo and score each with every predictor (one batch per model).

    ``preloaded`` (predictor id -> ``LoadedPredictor``) skips the lookup of those ids: a folder
    of photos resolves its models once, not per photo.

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
        if preloaded and pid in preloaded:
            loaded[pid], fresh = preloaded[pid], False
        else:
            loaded[pid], fresh = load(pid, store)
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
        x = prepare(entry.predictor, crops)
        t["preprocess_ms"] = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        probs[pid] = probabilities(entry, x)
        t["predict_ms"] = (time.perf_counter() - t0) * 1000
        if gradcam and entry.cam_layer is not None:
            t0 = time.perf_counter()
            cams[pid] = _cams(entry, x, probs[pid].argmax(axis=1))
            t["gradcam_ms"] = (time.perf_counter() - t0) * 1000

    for i, (face, crop) in enumerate(zip(faces, crops)):
        result["faces"].append(_face_result(i, face, crop, loaded, probs, cams))
    timings["total_ms"] = (time.perf_counter() - t_start) * 1000
    return result


def majority_vote(tops: Sequence[tuple[str, float]]) -> tuple[str, int]:
    """The label most models put on top, and how many did; a tie goes to the label its voters are surer of.
    ``tops``: each model's (top label, its probability). Photos and videos label faces by this."""
    votes = Counter(label for label, _ in tops)
    confidence: Counter = Counter()
    for label, p in tops:
        confidence[label] += p
    majority = max(votes, key=lambda label: (votes[label], confidence[label]))
    return majority, votes[majority]


def _face_result(i: int, face: Face, crop: np.ndarray, loaded: dict, probs: dict, cams: dict) -> dict:
    predictions = {}
    for pid, entry in loaded.items():
        p = probs[pid][i]
        names = entry.predictor.class_names
        top = int(p.argmax())
        predictions[pid] = {"top_label": names[top], "probability": float(p[top]),
                            "probs": {c: float(v) for c, v in zip(names, p)}}
    majority, agreement = majority_vote([(v["top_label"], v["probability"]) for v in predictions.values()])
    out = {"index": i, "box": face.box, "score": face.score, "crop": crop, "predictions": predictions,
           "majority_label": majority, "agreement": agreement, "n_models": len(predictions), "gradcam": {}}
    for pid, maps in cams.items():
        if maps is not None:
            heat, overlay = overlay_heatmap(crop, maps[i])
            out["gradcam"][pid] = {"heatmap": heat, "overlay": overlay, "resolution": tuple(maps.shape[1:])}
    return out


# ---------------------------------------------------------------- folders


def folder_files(folder: str | Path) -> list[Path]:
    """Every file under ``folder`` (subfolders included, hidden files left out), sorted: each is tried
    as an image, so a photo with a wrong extension is still scored and a stray file is reported."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    return sorted(p for p in root.rglob("*") if p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def prediction_rows(name: str, result: dict, labels: dict[str, str] | None = None) -> list[dict]:
    """One row per (face, model) of a ``predict_faces`` result: file, face number (from 1), box,
    model, top label, its probability, then p(class) for every class the model knows."""
    labels = labels or {p["id"]: p["label"] for p in result["predictors"]}
    rows = []
    for face in result["faces"]:
        x, y, w, h = face["box"]
        for pid, pred in face["predictions"].items():
            rows.append({"file": name, "face": face["index"] + 1, "x": x, "y": y, "width": w, "height": h,
                         "model": labels.get(pid, pid), "model id": pid, "top label": pred["top_label"],
                         "probability": pred["probability"], **{f"p({c})": v for c, v in pred["probs"].items()}})
    return rows


def predict_folder(folder: str | Path, predictor_ids: Sequence[str], detector: str = "haar", margin: float = 0.2,
                   min_size: int = 24, yunet_model: str | Path | None = None, store: RunStore | None = None,
                   progress: Callable[[int, int, str], None] | None = None) -> dict:
    """Score every image in a folder (see ``folder_files``) with every predictor; no Grad-CAM.

    Returns {rows (``prediction_rows`` of every image, file names relative to the folder),
    files (how many were tried), scored, no_face [names], unreadable [(name, message)]}.
    A file that is not a usable image is listed in ``unreadable`` and the rest go on.
    ``progress(done, total, name)`` is called after each file.
    """
    root = Path(folder)
    files = folder_files(root)
    store = store or RunStore()
    models = {pid: load(pid, store)[0] for pid in dict.fromkeys(predictor_ids)}
    out: dict[str, Any] = {"rows": [], "files": len(files), "scored": 0, "no_face": [], "unreadable": []}
    for i, path in enumerate(files):
        name = path.relative_to(root).as_posix()
        try:
            rgb = load_image(path, name)
        except ImageError as exc:
            out["unreadable"].append((name, str(exc)))
        else:
            result = predict_faces(rgb, predictor_ids, detector, margin, gradcam=False, yunet_model=yunet_model,
                                   min_size=min_size, store=store, preloaded=models)
            out["scored"] += 1
            if not result["faces"]:
                out["no_face"].append(name)
            out["rows"] += prediction_rows(name, result)
        if progress:
            progress(i + 1, len(files), name)
    return out


# ---------------------------------------------------------------- benchmark


def latency_benchmark(predictor: str | LoadedPredictor, n: int = 20, image: np.ndarray | None = None,
                      detector: str = "haar", margin: float = 0.2, store: RunStore | None = None) -> dict:
    """Per-face milliseconds for detection, preprocessing and prediction, model already loaded.

    ``predictor`` is a predictor id (a stored run or "ref:NAME", loaded through the cache)
    or a model already in memory (``predictors.wrap_model(model, arch, size)``).
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
    loaded = load(predictor, store)[0] if isinstance(predictor, str) else predictor
    faces = detect_faces(image, detector)
    if not faces:
        raise ValueError(f"the benchmark image has no face for detector={detector!r}; {NO_FACE_MESSAGE}")
    # One untimed pass traces the forward graph for this batch.
    probabilities(loaded, prepare(loaded.predictor, [crop_face(image, f, margin) for f in faces]))
    stages: dict[str, list[float]] = {"detection_ms": [], "preprocess_ms": [], "predict_ms": []}
    for _ in range(n):
        t0 = time.perf_counter()
        found = detect_faces(image, detector)
        t1 = time.perf_counter()
        x = prepare(loaded.predictor, [crop_face(image, f, margin) for f in found])
        t2 = time.perf_counter()
        probabilities(loaded, x)
        t3 = time.perf_counter()
        k = 1000.0 / len(found)
        stages["detection_ms"].append((t1 - t0) * k)
        stages["preprocess_ms"].append((t2 - t1) * k)
        stages["predict_ms"].append((t3 - t2) * k)
    stages["total_ms"] = [sum(v) for v in zip(*stages.values())]
    summary = {key: {"median": float(np.median(v)), "mean": float(np.mean(v)), "p90": float(np.percentile(v, 90))}
               for key, v in stages.items()}
    return {"predictor_id": loaded.predictor.id, "label": loaded.predictor.label, "n": n, "faces": len(faces),
            "image_shape": tuple(image.shape[:2]), "detector": detector, **summary}
