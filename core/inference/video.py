"""Videos: frames sampled at a chosen rate, faces detected and tracked, every model's emotion over time.

OpenCV reads the video (opencv-python-headless bundles FFmpeg) and writes the annotated copy.
Faces are tracked from one sampled frame to the next by box overlap (IoU, matched with the
Hungarian algorithm); a face missed for a few samples keeps its number when it is found again.
Per tracked face and per model the result holds the probabilities over time and a summary
(dominant emotion, its share of the face's frames, when the top emotion changed); per tracked
face, the verdict of ``core.inference.verdict`` over the models' dominant emotions.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.inference.faces import DEFAULT_DETECTOR, DETECTORS, Face, detect_faces
from core.inference.predict import crops_for, prepare, probabilities
from core.inference.predictors import LoadedPredictor, load_available
from core.inference.verdict import decide
from core.store import RunStore

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".avi")
MAX_VIDEO_BYTES = 200 * 1024 * 1024
MAX_DURATION_S = 300.0
DEFAULT_SAMPLE_FPS = 4.0
MAX_SAMPLE_FPS = 10.0
MAX_SAMPLES = 1200  # frames analysed per video at most: 5 minutes at 4 per second
TRACK_IOU = 0.2  # a face's boxes in consecutive samples overlap at least this much (IoU)...
# ...once both are grown to this many times their size about their centres: MTCNN's tight boxes (eyebrows
# to chin) of a face moving its own half-width between samples would otherwise barely overlap.
TRACK_GROW = 2.0
MAX_GAP = 3  # samples a face may be missed and keep its number
ANNOTATED_MAX_SIDE = 960
# Tried in order: H.264 in MP4 plays everywhere but is missing from the pip OpenCV builds;
# VP8 in WebM plays in every browser; MPEG-4 part 2 plays in desktop players, not browsers.
CODECS = (("avc1", ".mp4", "H.264 MP4", True), ("VP80", ".webm", "VP8 WebM", True),
          ("mp4v", ".mp4", "MPEG-4 (mp4v) MP4", False), ("MJPG", ".avi", "Motion-JPEG AVI", False))


class VideoError(ValueError):
    """A video could not be used; the message names the file and what was expected."""


def probe(path: str | Path, name: str | None = None) -> dict:
    """Frame rate, frame count, duration and size of a video; VideoError if it cannot be used.

    Refuses files over MAX_VIDEO_BYTES, videos longer than MAX_DURATION_S and anything OpenCV
    cannot decode, naming the file and the limit.
    """
    file = Path(path)
    name = name or file.name
    if file.suffix.lower() not in VIDEO_SUFFIXES:
        raise VideoError(f"{name}: expected a video file ({', '.join(VIDEO_SUFFIXES)}). Received: {file.suffix or 'no extension'}")
    if not file.is_file():
        raise VideoError(f"{name}: {file} does not exist")
    size = file.stat().st_size
    if size > MAX_VIDEO_BYTES:
        raise VideoError(f"{name}: file is {size / 2**20:.0f} MB; the limit is {MAX_VIDEO_BYTES // 2**20} MB")
    cap = cv2.VideoCapture(str(file))
    try:
        if not cap.isOpened():
            raise VideoError(f"{name}: cannot be decoded as a video; expected MP4, MOV, WebM or AVI")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        ok, _ = cap.read()
    finally:
        cap.release()
    if not ok or fps <= 0 or frames <= 0 or width <= 0 or height <= 0:
        raise VideoError(f"{name}: no readable frames (frame rate {fps:g}, {frames} frames); the file is corrupt, "
                         "empty or uses a codec this OpenCV build cannot decode")
    duration = frames / fps
    if duration > MAX_DURATION_S:
        raise VideoError(f"{name}: video is {duration:.0f} s long; the limit is {MAX_DURATION_S:.0f} s")
    return {"fps": fps, "frames": frames, "duration_s": duration, "width": width, "height": height}


def sample_indices(frames: int, fps: float, sample_fps: float) -> list[int]:
    """The frame numbers analysed: about ``sample_fps`` per second (all frames when the video has
    fewer), at most MAX_SAMPLES."""
    if not 0 < sample_fps <= MAX_SAMPLE_FPS:
        raise ValueError(f"sample_fps: expected a rate in (0, {MAX_SAMPLE_FPS:g}] frames per second. "
                         f"Received: sample_fps={sample_fps!r}")
    step = max(1.0, fps / sample_fps)
    picked = sorted({min(frames - 1, round(k * step)) for k in range(int(np.ceil(frames / step)))})
    return picked[:MAX_SAMPLES]


@dataclass
class _Track:
    number: int
    box: tuple[int, int, int, int]
    last: int  # the sample it was last seen in


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _grown(box: Sequence[float], factor: float = TRACK_GROW) -> tuple[float, float, float, float]:
    x, y, w, h = box
    return (x - (factor - 1) * w / 2, y - (factor - 1) * h / 2, factor * w, factor * h)


class FaceTracker:
    """Numbers faces across samples: each detection joins the live track it overlaps most (IoU of the
    boxes grown TRACK_GROW times at least ``min_iou``, one detection per track), else starts a new one; a track missed for more
    than ``max_gap`` samples ends."""

    def __init__(self, min_iou: float = TRACK_IOU, max_gap: int = MAX_GAP):
        self.min_iou, self.max_gap = min_iou, max_gap
        self.tracks: list[_Track] = []

    def update(self, sample: int, boxes: Sequence[tuple[int, int, int, int]]) -> list[int]:
        """Track numbers (from 1) for this sample's boxes, in the boxes' order."""
        from scipy.optimize import linear_sum_assignment

        live = [t for t in self.tracks if sample - t.last <= self.max_gap + 1]
        numbers: list[int | None] = [None] * len(boxes)
        if live and boxes:
            overlap = np.array([[iou(_grown(t.box), _grown(b)) for b in boxes] for t in live])
            for r, c in zip(*linear_sum_assignment(-overlap)):
                if overlap[r, c] >= self.min_iou:
                    numbers[c] = live[r].number
                    live[r].box, live[r].last = tuple(boxes[c]), sample
        for i, box in enumerate(boxes):
            if numbers[i] is None:
                track = _Track(len(self.tracks) + 1, tuple(box), sample)
                self.tracks.append(track)
                numbers[i] = track.number
        return [int(n) for n in numbers]


def summarise(times: Sequence[float], probs: np.ndarray, class_names: Sequence[str]) -> dict:
    """One tracked face under one model: dominant emotion (the most frequent top label), its share
    of the face's samples, mean probabilities, and every change of the top label as (time, from, to)."""
    top = [class_names[i] for i in np.asarray(probs).argmax(axis=1)]
    counts = Counter(top)
    dominant = max(counts, key=lambda c: (counts[c], float(np.mean(probs[:, list(class_names).index(c)]))))
    changes = [(float(t), a, b) for t, a, b in zip(times[1:], top, top[1:]) if a != b]
    return {"dominant": dominant, "dominant_share": counts[dominant] / len(top), "top": top, "changes": changes,
            "mean": {c: float(v) for c, v in zip(class_names, np.mean(probs, axis=0))}}


def video_writer(stem: Path, fps: float, size: tuple[int, int]) -> tuple[cv2.VideoWriter, Path, str, bool]:
    """The first codec of CODECS this OpenCV build can write: (writer, file, codec name, plays in browsers)."""
    tried = []
    for fourcc, suffix, label, browser in CODECS:
        file = stem.with_suffix(suffix)
        writer = cv2.VideoWriter(str(file), cv2.VideoWriter_fourcc(*fourcc), fps, size)
        if writer.isOpened():
            return writer, file, label, browser
        writer.release()
        file.unlink(missing_ok=True)
        tried.append(label)
    raise VideoError(f"this OpenCV build can write none of these video codecs: {', '.join(tried)}")


def _annotate(bgr: np.ndarray, boxes: list, numbers: list[int], labels: list[str], scale: float) -> np.ndarray:
    out = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else bgr.copy()
    thick = max(2, round(max(out.shape[:2]) / 400))
    for (x, y, w, h), n, label in zip(boxes, numbers, labels):
        x, y, w, h = (round(v * scale) for v in (x, y, w, h))
        cv2.rectangle(out, (x, y), (x + w, y + h), (0, 200, 255), thick)
        text = f"{n}: {label}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.3 * thick, thick)
        top = max(th + base, y)
        cv2.rectangle(out, (x, top - th - base), (x + tw, top), (0, 200, 255), cv2.FILLED)
        cv2.putText(out, text, (x, top - base), cv2.FONT_HERSHEY_SIMPLEX, 0.3 * thick, (0, 0, 0), thick)
    return out


def analyse_video(path: str | Path, predictor_ids: Sequence[str | LoadedPredictor], sample_fps: float = DEFAULT_SAMPLE_FPS,
                  detector: str = DEFAULT_DETECTOR, margin: float | None = None, min_size: int = 24,
                  yunet_model: str | Path | None = None, annotated: str | Path | None = None,
                  store: RunStore | None = None, name: str | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  cancelled: Callable[[], bool] | None = None, align: bool = True) -> dict:
    """Sample a video's frames, detect and track faces, and score every face with every predictor
    (ids, or models already in memory as ``predictors.wrap_model`` gives them).

    ``margin`` None gives each model its training faces' margin; crops are eye-levelled where the
    detector gives landmarks. ``annotated``: a file name stem; the annotated video (boxes, face
    numbers, the frame's verdict label, ``verdict.decide``) is written there with the first codec in CODECS that works (its suffix is
    the codec's). ``progress(done, total)`` is called after each sampled frame; when
    ``cancelled()`` turns true the analysis stops and returns what it has, with cancelled=True.

    Returns {name, detector, info (probe() plus sample_fps, samples, analysed), predictors (dicts),
    times [s of each analysed sample], tracks [{number, times, boxes, models {id: {probs (T, K),
    class_names, dominant, dominant_share, top, changes, mean}}, verdict (``verdict.Verdict`` over
    the models' dominant emotions)}], rows (per-frame predictions:
    time, frame, face, box, model, top label, probability, p(class)...), annotated (None or
    {path, codec, browser}), cancelled, seconds, skipped {predictor_id: why it could not be loaded}}.
    """
    t_start = time.perf_counter()
    if not predictor_ids:
        raise ValueError("predictor_ids: choose at least one trained run or reference model")
    if detector not in DETECTORS:
        raise ValueError(f"Unknown detector {detector!r}; expected one of {', '.join(DETECTORS)}")
    name = name or Path(path).name
    info = probe(path, name)
    picked = sample_indices(info["frames"], info["fps"], sample_fps)
    found, skipped = load_available([p for p in predictor_ids if not isinstance(p, LoadedPredictor)], store)
    loaded = {}
    for p in predictor_ids:
        entry = p if isinstance(p, LoadedPredictor) else found[p][0] if p in found else None
        if entry is not None:
            loaded.setdefault(entry.predictor.id, entry)
    ids = list(loaded)
    margins = {pid: entry.predictor.margin if margin is None else float(margin) for pid, entry in loaded.items()}
    described = {pid: entry.predictor.to_dict() for pid, entry in loaded.items()}
    tracker = FaceTracker()
    per_track: dict[int, dict[str, Any]] = {}
    rows: list[dict] = []
    times: list[float] = []
    writer = out_file = None
    codec, browser = "", False
    scale = min(1.0, ANNOTATED_MAX_SIDE / max(info["width"], info["height"]))
    stopped = False
    cap = cv2.VideoCapture(str(path))
    try:
        frame_no, wanted = -1, iter(picked)
        target = next(wanted, None)
        while target is not None:
            if cancelled and cancelled():
                stopped = True
                break
            while frame_no < target:  # grab() skips frames without converting them
                if not cap.grab():
                    target = None
                    break
                frame_no += 1
            if target is None:
                break
            ok, bgr = cap.retrieve()
            if not ok:
                break
            sample, t = len(times), frame_no / info["fps"]
            times.append(t)
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            found = detect_faces(rgb, detector, min_size=min_size, yunet_model=yunet_model)
            boxes = [f.box for f in found]
            numbers = tracker.update(sample, boxes)
            tops = _score_frame(rgb, found, numbers, loaded, margins, align, per_track, rows, t, frame_no)
            if annotated is not None:
                frame = _annotate(bgr, boxes, numbers, tops, scale)
                if writer is None:
                    out_fps = min(sample_fps, info["fps"])
                    writer, out_file, codec, browser = video_writer(Path(annotated), out_fps,
                                                                    (frame.shape[1], frame.shape[0]))
                writer.write(frame)
            if progress:
                progress(len(times), len(picked))
            target = next(wanted, None)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    tracks = []
    for number in sorted(per_track):
        t = per_track[number]
        models = {}
        for pid, probs in t["probs"].items():
            arr = np.asarray(probs)
            names = list(loaded[pid].predictor.class_names)
            models[pid] = {"probs": arr, "class_names": names, **summarise(t["times"], arr, names)}
        verdict = decide({pid: (m["dominant"], m["dominant_share"]) for pid, m in models.items()}, described)
        tracks.append({"number": number, "times": t["times"], "boxes": t["boxes"], "models": models,
                       "verdict": verdict})
    return {"name": name, "detector": detector, "info": {**info, "sample_fps": float(sample_fps), "samples": len(picked),
                                   "analysed": len(times)},
            "predictors": [loaded[p].predictor.to_dict() for p in ids], "times": times, "tracks": tracks,
            "rows": [{"detector": detector, **row} for row in rows], "cancelled": stopped, "seconds": time.perf_counter() - t_start,
            "annotated": None if out_file is None else {"path": str(out_file), "codec": codec, "browser": browser},
            "skipped": skipped}


def _score_frame(rgb: np.ndarray, found: list[Face], numbers: list[int], loaded: dict, margins: dict[str, float],
                 align: bool, per_track: dict, rows: list, t: float, frame_no: int) -> list[str]:
    """Score one sample's faces with every model, append to the tracks and rows; the verdict label per face
    ("?" when no model votes)."""
    if not found:
        return []
    crops = crops_for(rgb, found, list(margins.values()), align)
    tops: list[dict[str, tuple[str, float]]] = [{} for _ in found]
    for pid, entry in loaded.items():
        probs = probabilities(entry, prepare(entry.predictor, crops[margins[pid]]))
        names = entry.predictor.class_names
        for i, (face, n) in enumerate(zip(found, numbers)):
            track = per_track.setdefault(n, {"times": [], "boxes": [], "probs": {}})
            if not track["times"] or track["times"][-1] != t:
                track["times"].append(t)
                track["boxes"].append(face.box)
            track["probs"].setdefault(pid, []).append(probs[i])
            top = int(probs[i].argmax())
            tops[i][pid] = (names[top], float(probs[i][top]))
            rows.append({"time (s)": round(t, 3), "frame": frame_no, "face": n, "x": face.x, "y": face.y,
                         "width": face.w, "height": face.h, "model": entry.predictor.label, "model id": pid,
                         "top label": names[top], "probability": float(probs[i][top]),
                         **{f"p({c})": float(v) for c, v in zip(names, probs[i])}})
    described = {pid: entry.predictor.to_dict() for pid, entry in loaded.items()}
    return [decide(t, described).label or "?" for t in tops]
