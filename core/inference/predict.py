"""Scoring faces: photo -> detected faces -> every selected predictor, with Grad-CAM.

Owns converting face crops into each predictor's input exactly as its training data was
converted (eye-levelled crops with the margin of the model's training faces), scoring crops in
one batch per model, the per-face result of a photo (the verdict of ``core.inference.verdict``,
Grad-CAM overlays, timings), and the per-face latency benchmark.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.inference.align import aligned_crop
from core.inference.faces import DEFAULT_DETECTOR, DETECTORS, Face, ImageError, detect_faces, load_image, to_gray
from core.inference.gradcam import normalise, overlay_heatmap, traced_grad_cam
from core.inference.predictors import LoadedPredictor, Predictor, load, load_available
from core.inference.references import scale
from core.inference.verdict import Verdict, decide, headline
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


def crops_for(rgb: np.ndarray, faces: Sequence[Face], margins: Sequence[float], align: bool = True
              ) -> dict[float, list[np.ndarray]]:
    """Each face's crop at each distinct margin (eye-levelled when ``align`` and the face has landmarks)."""
    return {m: [aligned_crop(rgb, f, m, align) for f in faces] for m in dict.fromkeys(margins)}


def predict_faces(rgb: np.ndarray, predictor_ids: Sequence[str], detector: str = DEFAULT_DETECTOR,
                  margin: float | None = None, gradcam: bool = True, yunet_model: str | Path | None = None,
                  min_size: int = 24, store: RunStore | None = None,
                  preloaded: dict[str, LoadedPredictor] | None = None, align: bool = True) -> dict:
    """Detect faces in an RGB uint8 photo and score each with every predictor (one batch per model).

    ``margin``: the border around each face box, as a fraction of its longer side; None (default)
    gives each model the margin of its training faces (``Predictor.margin``). ``align``: rotate
    each crop so the eyes are level when the detector gives landmarks (MTCNN, YuNet).
    ``preloaded`` (predictor id -> ``LoadedPredictor``) skips the lookup of those ids: a folder
    of photos resolves its models once, not per photo.

    Returns a dict:
      faces: list, left to right, each {index, box (x, y, w, h), score, landmarks, crop (RGB uint8,
             as the first model saw it), predictions {predictor_id: {top_label, probability,
             probs {class: p}}}, verdict (``verdict.Verdict``: who votes, who leads, what they say),
             headline (the verdict in words, with the predictors' labels), n_models,
             gradcam {predictor_id: {heatmap float32 (H,W) in [0,1], overlay RGB uint8 (H,W,3),
             resolution (h, w) of the map}} (only when gradcam=True and the model has one)}
      predictors: the predictor dicts used, in the order given
      timings: {detection_ms, models {predictor_id: {load_ms (0 when cached), preprocess_ms, predict_ms[,
               gradcam_ms]}}, total_ms}
      message: None, or why there is nothing to show (no face found)
      detector, aligned (whether crops were eye-levelled), margins {predictor_id: margin}, image_shape (H, W)
      skipped: {predictor_id: why it could not be loaded} (``predictors.load_available``); the others score
    Grayscale (H, W) photos are accepted too. When no chosen model can be loaded, the first one's error is
    raised (RunNotFound, ReferenceModelError, ...).
    """
    t_start = time.perf_counter()
    ids = list(dict.fromkeys(predictor_ids))
    if not ids:
        raise ValueError("predictor_ids: choose at least one trained run or reference model")
    if detector not in DETECTORS:
        raise ValueError(f"Unknown detector {detector!r}; expected one of {', '.join(DETECTORS)}")
    preloaded = preloaded or {}
    found, skipped = load_available([pid for pid in ids if pid not in preloaded], store)
    found.update({pid: (preloaded[pid], False) for pid in ids if pid in preloaded})
    ids = [pid for pid in ids if pid in found]
    loaded = {pid: found[pid][0] for pid in ids}
    timings: dict[str, Any] = {"models": {pid: {"load_ms": found[pid][0].load_ms if found[pid][1] else 0.0}
                                          for pid in ids}}

    t0 = time.perf_counter()
    faces = detect_faces(rgb, detector, min_size=min_size, yunet_model=yunet_model)
    timings["detection_ms"] = (time.perf_counter() - t0) * 1000
    margins = {pid: entry.predictor.margin if margin is None else float(margin) for pid, entry in loaded.items()}
    result = {"faces": [], "predictors": [loaded[p].predictor.to_dict() for p in ids], "timings": timings,
              "message": None, "detector": detector, "aligned": align, "margins": margins,
              "image_shape": tuple(rgb.shape[:2]), "skipped": skipped}
    if not faces:
        result["message"] = NO_FACE_MESSAGE
        timings["total_ms"] = (time.perf_counter() - t_start) * 1000
        return result

    crops = crops_for(rgb, faces, list(margins.values()), align)
    probs, cams = {}, {}
    for pid, entry in loaded.items():
        t = timings["models"][pid]
        t0 = time.perf_counter()
        x = prepare(entry.predictor, crops[margins[pid]])
        t["preprocess_ms"] = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        probs[pid] = probabilities(entry, x)
        t["predict_ms"] = (time.perf_counter() - t0) * 1000
        if gradcam and entry.cam_layer is not None:
            t0 = time.perf_counter()
            cams[pid] = _cams(entry, x, probs[pid].argmax(axis=1))
            t["gradcam_ms"] = (time.perf_counter() - t0) * 1000

    shown = crops[margins[ids[0]]]
    for i, (face, crop) in enumerate(zip(faces, shown)):
        result["faces"].append(_face_result(i, face, crop, loaded, probs, cams))
    timings["total_ms"] = (time.perf_counter() - t_start) * 1000
    return result


def face_verdict(face: dict, predictors: Sequence[dict]) -> Verdict:
    """The verdict (``verdict.decide``) on one face of a ``predict_faces`` result."""
    tops = {pid: (p["top_label"], p["probability"]) for pid, p in face["predictions"].items()}
    return decide(tops, {p["id"]: p for p in predictors})


def face_headline(face: dict, labels: dict[str, str]) -> str:
    """One face's verdict in words (``verdict.headline``), naming models by ``labels``."""
    tops = {pid: (p["top_label"], p["probability"]) for pid, p in face["predictions"].items()}
    return headline(face["verdict"], labels, tops)


def _face_result(i: int, face: Face, crop: np.ndarray, loaded: dict, probs: dict, cams: dict) -> dict:
    predictions = {}
    for pid, entry in loaded.items():
        p = probs[pid][i]
        names = entry.predictor.class_names
        top = int(p.argmax())
        predictions[pid] = {"top_label": names[top], "probability": float(p[top]),
                            "probs": {c: float(v) for c, v in zip(names, p)}}
    out = {"index": i, "box": face.box, "score": face.score, "landmarks": face.landmarks, "crop": crop,
           "predictions": predictions, "n_models": len(predictions), "gradcam": {}}
    out["verdict"] = face_verdict(out, [entry.predictor.to_dict() for entry in loaded.values()])
    out["headline"] = face_headline(out, {pid: entry.predictor.label for pid, entry in loaded.items()})
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
    """One row per (face, model) of a ``predict_faces`` result: file, detector, face number (from 1),
    box, the face's verdict, model, whether it votes (or why not), top label, its probability, then
    p(class) for every class the model knows."""
    labels = labels or {p["id"]: p["label"] for p in result["predictors"]}
    rows = []
    for face in result["faces"]:
        x, y, w, h = face["box"]
        verdict = face["verdict"]
        for pid, pred in face["predictions"].items():
            rows.append({"file": name, "detector": result["detector"], "face": face["index"] + 1, "x": x, "y": y,
                         "width": w, "height": h, "verdict": verdict.label or "",
                         "model": labels.get(pid, pid), "model id": pid,
                         "votes": "yes" if pid in verdict.voters else f"no: {verdict.abstain.get(pid, '')}",
                         "top label": pred["top_label"], "probability": pred["probability"],
                         **{f"p({c})": v for c, v in pred["probs"].items()}})
    return rows


def predict_folder(folder: str | Path, predictor_ids: Sequence[str], detector: str = DEFAULT_DETECTOR,
                   margin: float | None = None,
                   min_size: int = 24, yunet_model: str | Path | None = None, store: RunStore | None = None,
                   progress: Callable[[int, int, str], None] | None = None, align: bool = True) -> dict:
    """Score every image in a folder (see ``folder_files``) with every predictor; no Grad-CAM.

    Returns {rows (``prediction_rows`` of every image, file names relative to the folder),
    files (how many were tried), scored, no_face [names], unreadable [(name, message)],
    skipped {predictor_id: why it could not be loaded}}.
    A file that is not a usable image is listed in ``unreadable`` and the rest go on.
    ``progress(done, total, name)`` is called after each file.
    """
    root = Path(folder)
    files = folder_files(root)
    store = store or RunStore()
    found, skipped = load_available(predictor_ids, store)
    models = {pid: entry for pid, (entry, _) in found.items()}
    out: dict[str, Any] = {"rows": [], "files": len(files), "scored": 0, "no_face": [], "unreadable": [],
                           "skipped": skipped}
    for i, path in enumerate(files):
        name = path.relative_to(root).as_posix()
        try:
            rgb = load_image(path, name)
        except ImageError as exc:
            out["unreadable"].append((name, str(exc)))
        else:
            result = predict_faces(rgb, list(models), detector, margin, gradcam=False, yunet_model=yunet_model,
                                   min_size=min_size, store=store, preloaded=models, align=align)
            out["scored"] += 1
            if not result["faces"]:
                out["no_face"].append(name)
            out["rows"] += prediction_rows(name, result)
        if progress:
            progress(i + 1, len(files), name)
    return out


# ---------------------------------------------------------------- benchmark


def latency_benchmark(predictor: str | LoadedPredictor, n: int = 20, image: np.ndarray | None = None,
                      detector: str = DEFAULT_DETECTOR, margin: float | None = None,
                      store: RunStore | None = None) -> dict:
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
    margin = loaded.predictor.margin if margin is None else margin
    faces = detect_faces(image, detector)
    if not faces:
        raise ValueError(f"the benchmark image has no face for detector={detector!r}; {NO_FACE_MESSAGE}")
    # One untimed pass traces the forward graph for this batch.
    probabilities(loaded, prepare(loaded.predictor, [aligned_crop(image, f, margin) for f in faces]))
    stages: dict[str, list[float]] = {"detection_ms": [], "preprocess_ms": [], "predict_ms": []}
    for _ in range(n):
        t0 = time.perf_counter()
        found = detect_faces(image, detector)
        t1 = time.perf_counter()
        x = prepare(loaded.predictor, [aligned_crop(image, f, margin) for f in found])
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
