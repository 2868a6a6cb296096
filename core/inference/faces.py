"""Safe image loading and face detection for the Predict feature.

Photos arrive from browser uploads, so every byte is untrusted: the loader accepts
four common formats only, bounds file size and pixel count before decoding, and turns
every decoder failure into an ImageError that names the file. Detection returns boxes
(with five landmarks where the detector gives them: MTCNN, YuNet); aligning and classifying
the crops is the job of core.inference.align and core.inference.predict.
"""
from __future__ import annotations

import io
import os
import threading
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000

# Pillow format names -> names users know. Only these parsers ever decode pixel data.
_FORMATS = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "BMP": "BMP"}
_EXPECTED = "expected JPEG, PNG, WebP or BMP"

# Face detectors by id, with what the Predict page and the CLI's help call them. The first is
# the default: MTCNN was chosen by measurement (core/bench/inference.py, `python -m core bench
# --detection`; the table is in core/inference/README.md).
DETECTORS: dict[str, str] = {
    "mtcnn": "MTCNN (finds faces and eyes; MIT)",
    "haar": "Haar cascade (older, misses tilted faces)",
    "yunet": "YuNet (finds faces, more robust)",
    "whole": "Whole image is one face (pre-cropped faces)",
}
DEFAULT_DETECTOR = next(iter(DETECTORS))
HAAR_CASCADE = "haarcascade_frontalface_default.xml"
# The operator's YuNet ONNX file (never the browser's): read here, so that the CLI and the
# dashboard use the same file when no path is passed.
YUNET_ENV = "EMOTION_LAB_YUNET_MODEL"
# MTCNN's cost also grows with pixel count (~0.6 s at 1 MP, ~1.3 s at 2.5 MP on 2 shared
# cores), so it too searches a copy downscaled to about this many pixels; a 40 px face of a
# 2 MP photo is still 28 px there, above MTCNN's 12 px floor.
MTCNN_PIXELS = 1_000_000
# ONet's confidence floor for a face: the package default. On the first 23 benchmark faces 0.9 found
# the same faces with no false one; on the 80 faces of the grown benchmark 0.9 missed two more faces
# (a hand over the eyes, a tilted head in shadow) for one false face fewer (core/inference/README.md).
MTCNN_THRESHOLD = 0.8
MTCNN_MIN_FACE = 20
# Haar cost grows with pixel count (a 40 MP photo takes ~18 s at full resolution on 2
# cores, and upsampled photos produce extra false positives), so bigger photos are searched
# on a copy downscaled to about this many pixels, with the minimum face size scaled alike.
DETECT_PIXELS = 1_000_000
# Nested or near-duplicate boxes of one face overlap by more than this fraction of
# the smaller box; distinct neighbouring faces rarely do.
_OVERLAP = 0.5
YUNET_SCORE_THRESHOLD = 0.7


class ImageError(ValueError):
    """An image could not be used; the message names the file and what was expected."""


def load_image(data: bytes | str | Path, name: str | None = None) -> np.ndarray:
    """Decode an uploaded/local image safely -> RGB uint8 (H, W, 3).

    `data` is the file's bytes or a path to it; `name` is used in error messages
    (default: the path's file name, or "image" for bytes). EXIF orientation is
    applied, transparency is composited on white, 16-bit images are scaled to 8 bits.
    Raises ImageError for anything that is not a safe JPEG, PNG, WebP or BMP image.
    """
    raw, name = _read(data, name)
    if not raw:
        raise ImageError(f"{name}: the file is empty; {_EXPECTED} image")
    try:
        # Pillow warns (89 MP) and then raises (179 MP) from the header alone; treat
        # the warning as the error it is for untrusted input.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = _open(raw, name)
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise ImageError(
                    f"{name}: image is {width}x{height} ({width * height:,} pixels); "
                    f"the limit is {MAX_PIXELS:,} pixels"
                )
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_rgb(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(
            f"{name}: image is too large to decode safely ({exc}); "
            f"the limit is {MAX_PIXELS:,} pixels"
        ) from exc
    except Exception as exc:
        # Malformed input can make a decoder raise almost anything (OSError,
        # SyntaxError, struct.error, ValueError...): the caller only needs to know
        # this file is unusable, and the chained exception keeps the detail.
        raise ImageError(
            f"{name}: the file is corrupt or truncated ({exc}); {_EXPECTED} image"
        ) from exc


def _read(data: bytes | str | Path, name: str | None) -> tuple[bytes, str]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        name = name or "image"
    elif isinstance(data, (str, Path)):
        path = Path(data)
        name = name or path.name
        try:
            size = path.stat().st_size
            if size > MAX_BYTES:
                raise ImageError(f"{name}: file is {_mb(size)}; the limit is {_mb(MAX_BYTES)}")
            with path.open("rb") as fh:
                # Bounded read: the file may have grown since stat().
                raw = fh.read(MAX_BYTES + 1)
        except OSError as exc:
            raise ImageError(f"{name}: cannot read {path} ({exc.strerror or exc})") from exc
    else:
        raise TypeError(
            f"load_image expects bytes or a path. Received: data of type {type(data).__name__}"
        )
    if len(raw) > MAX_BYTES:
        raise ImageError(f"{name}: file is {_mb(len(raw))}; the limit is {_mb(MAX_BYTES)}")
    return raw, name


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{n:,} bytes"


def _open(raw: bytes, name: str) -> Image.Image:
    try:
        return Image.open(io.BytesIO(raw), formats=list(_FORMATS))
    except UnidentifiedImageError:
        pass
    # Only to name the format in the message: header parsing, no pixels decoded.
    try:
        fmt = Image.open(io.BytesIO(raw)).format
    except Exception:  # any failure here just means "not an image we know"
        fmt = None
    if fmt:
        raise ImageError(f"{name}: unsupported format {fmt}; {_EXPECTED}")
    raise ImageError(f"{name}: not a recognized image file; {_EXPECTED}")


def _to_rgb(img: Image.Image) -> np.ndarray:
    if img.mode.startswith("I"):
        # Pillow's convert("L") clips 16-bit values at 255, turning most of the image
        # white; map the full 16-bit range onto 8 bits instead.
        wide = np.clip(np.asarray(img, dtype=np.float64), 0, 65535)
        gray = np.rint(wide * (255.0 / 65535.0)).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


@dataclass(frozen=True)
class Face:
    """One detected face in image pixel coordinates.

    `score` is the detector's confidence, higher is surer; its scale depends on the
    detector (Haar: cascade level weight, unbounded; MTCNN, YuNet: 0-1; whole: 1.0).
    `landmarks` are five (x, y) points in image pixels, in LANDMARKS order (MTCNN and
    YuNet give them; Haar and whole do not: empty).
    """

    x: int
    y: int
    w: int
    h: int
    score: float
    landmarks: tuple[tuple[float, float], ...] = ()

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(x, y, w, h), the layout OpenCV drawing functions expect."""
        return (self.x, self.y, self.w, self.h)


# The order of Face.landmarks; "left" is the image's left (the person's right eye).
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def yunet_model_path() -> str | None:
    """The YuNet ONNX file named by the EMOTION_LAB_YUNET_MODEL environment variable, or None when it is unset.

    The path is returned whether or not the file exists, so that using it names the missing file.
    """
    path = os.environ.get(YUNET_ENV, "").strip()
    return str(Path(path).expanduser()) if path else None


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> gray uint8 (H, W); a gray (H, W) input is returned as is."""
    _check_image(rgb)
    return rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def detect_faces(
    rgb: np.ndarray,
    detector: str = DEFAULT_DETECTOR,
    min_size: int = 24,
    yunet_model: str | Path | None = None,
    work_pixels: int | None = DETECT_PIXELS,
) -> list[Face]:
    """Find every face in an RGB uint8 image; sorted left to right.

    detector: 'mtcnn' (default; the `mtcnn` package's networks, with five landmarks per
    face), 'haar' (OpenCV Haar cascade), 'yunet' (cv2.FaceDetectorYN with the ONNX file in
    `yunet_model`, default: the EMOTION_LAB_YUNET_MODEL environment variable), 'whole' (the
    whole image is one face, for pre-cropped inputs such as FER2013 images).
    `min_size` is the smallest face side in pixels worth reporting. Haar searches images
    larger than `work_pixels` (MTCNN: larger than MTCNN_PIXELS) on a downscaled copy and maps
    the boxes back (None: always at full resolution, e.g. to compare against).
    """
    _check_image(rgb)
    if detector not in DETECTORS:
        raise ValueError(
            f"Unknown detector {detector!r}; expected one of {', '.join(DETECTORS)}"
        )
    if not isinstance(min_size, (int, np.integer)) or min_size < 1:
        raise ValueError(f"min_size: expected a positive integer. Received: min_size={min_size!r}")
    height, width = rgb.shape[:2]
    if detector == "whole":
        return [Face(0, 0, width, height, 1.0)]
    if work_pixels is not None and (not isinstance(work_pixels, (int, np.integer)) or work_pixels < 1):
        raise ValueError(f"work_pixels: expected a positive integer or None. Received: work_pixels={work_pixels!r}")
    if detector == "yunet":
        faces = _detect_yunet(rgb, int(min_size), yunet_model if yunet_model is not None else yunet_model_path())
    elif detector == "mtcnn":
        faces = _detect_mtcnn(rgb, int(min_size), None if work_pixels is None else min(work_pixels, MTCNN_PIXELS))
    else:
        faces = _detect_haar(rgb, int(min_size), work_pixels)
    faces = _drop_overlaps([_clip(f, width, height) for f in faces])
    return sorted(faces, key=lambda f: (f.x, f.y))


def crop_face(rgb: np.ndarray, face: Face, margin: float = 0.2) -> np.ndarray:
    """Square crop around the face with a margin, clipped to the image, RGB uint8.

    The square's side is the face's longer side plus `margin` of it on each side,
    centred on the face; at the image border it is cut off rather than shifted, so
    the face stays centred in what remains.
    """
    _check_image(rgb)
    if margin < 0:
        raise ValueError(f"margin: expected a value >= 0. Received: margin={margin!r}")
    height, width = rgb.shape[:2]
    side = max(face.w, face.h) * (1.0 + 2.0 * margin)
    cx, cy = face.x + face.w / 2.0, face.y + face.h / 2.0
    x0, y0 = max(0, round(cx - side / 2)), max(0, round(cy - side / 2))
    x1, y1 = min(width, round(cx + side / 2)), min(height, round(cy + side / 2))
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"face {face.box} lies outside the {width}x{height} image")
    return rgb[y0:y1, x0:x1].copy()


def _check_image(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8:
        raise ValueError(
            "expected a uint8 image array (H, W, 3). Received: "
            f"{type(rgb).__name__} with dtype={getattr(rgb, 'dtype', None)}"
        )
    if not (rgb.ndim == 2 or (rgb.ndim == 3 and rgb.shape[2] == 3)) or 0 in rgb.shape:
        raise ValueError(f"expected an image of shape (H, W, 3) or (H, W). Received: shape={rgb.shape}")


# OpenCV does not promise that one detector object is safe to use from several
# threads at once, and Streamlit serves sessions from threads.
_detect_lock = threading.Lock()


@lru_cache(maxsize=1)
def _haar_cascade() -> cv2.CascadeClassifier:
    path = cv2.data.haarcascades + HAAR_CASCADE
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(
            f"could not load the Haar cascade {path}; "
            "install opencv-python-headless>=4.10,<5 (OpenCV 5 dropped CascadeClassifier)"
        )
    return cascade


def _detect_haar(rgb: np.ndarray, min_size: int, work_pixels: int | None) -> list[Face]:
    gray = to_gray(rgb)
    scale = _work_scale(gray.shape, work_pixels)
    if scale < 1.0:
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    # Equalizing makes the cascade far less sensitive to exposure and skin tone.
    gray = cv2.equalizeHist(gray)
    small = max(1, round(min_size * scale))
    with _detect_lock:
        boxes, _levels, weights = _haar_cascade().detectMultiScale3(
            gray,
            scaleFactor=1.1,
            minNeighbors=5,
            minSize=(small, small),
            outputRejectLevels=True,
        )
    return [
        Face(
            round(x / scale), round(y / scale), round(w / scale), round(h / scale),
            float(score),
        )
        for (x, y, w, h), score in zip(np.asarray(boxes).reshape(-1, 4), np.ravel(weights))
    ]


@lru_cache(maxsize=1)
def _mtcnn():
    try:
        from mtcnn import MTCNN
    except ImportError as exc:
        raise RuntimeError(
            "detector='mtcnn' needs the mtcnn package (pip install mtcnn==1.0.0, in requirements.txt); "
            "detector='haar' works without it"
        ) from exc
    return MTCNN()


def _compile_mtcnn(detector) -> None:
    """mtcnn 1.0.0 calls its three Keras networks eagerly, layer by layer, once per pyramid scale: Python
    overhead that held the GIL for most of a detection, and so slowed every other page of the dashboard.
    Compiled with relaxed shapes (one graph for every scale and photo size), the benchmark photos are
    searched 1.7x faster with the same boxes. Done after the first detection, so that a command scoring
    one photo does not pay for the tracing. ``_model`` is the package's own attribute (mtcnn pinned)."""
    import tensorflow as tf

    for stage in detector.stages:
        if hasattr(stage, "_model"):
            stage._model = tf.function(stage._model, reduce_retracing=True)
    detector.lab_compiled = True


def _work_scale(shape: tuple[int, ...], work_pixels: int | None) -> float:
    return 1.0 if work_pixels is None else min(1.0, (work_pixels / (shape[0] * shape[1])) ** 0.5)


def _detect_mtcnn(rgb: np.ndarray, min_size: int, work_pixels: int | None) -> list[Face]:
    image = rgb if rgb.ndim == 3 else cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB)
    scale = _work_scale(image.shape, work_pixels)
    if scale < 1.0:
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    # The pyramid starts at min_face_size, at most the package default (20): mtcnn 1.0.0 found none of
    # the five faces of a benchmark photo (multi_face.jpg) with 24 or 30 and all of them with 12-20.
    # Faces under min_size are dropped below instead.
    smallest = max(12, min(MTCNN_MIN_FACE, round(min_size * scale)))
    with _detect_lock:
        detector = _mtcnn()
        found = detector.detect_faces(image, min_face_size=smallest, threshold_onet=MTCNN_THRESHOLD)
        if not getattr(detector, "lab_compiled", False):
            _compile_mtcnn(detector)
    faces = []
    for f in found:
        x, y, w, h = (float(v) / scale for v in f["box"])
        if min(w, h) < min_size:
            continue
        points = tuple((float(f["keypoints"][k][0]) / scale, float(f["keypoints"][k][1]) / scale) for k in LANDMARKS)
        faces.append(Face(round(x), round(y), round(w), round(h), float(f["confidence"]), points))
    return faces


@lru_cache(maxsize=4)
def _yunet(path: str, mtime: float) -> cv2.FaceDetectorYN:
    # mtime is part of the key so that replacing the file is picked up.
    try:
        return cv2.FaceDetectorYN.create(path, "", (320, 320), YUNET_SCORE_THRESHOLD, 0.3, 5000)
    except cv2.error as exc:
        raise ValueError(f"yunet_model: {path} is not a valid YuNet ONNX model ({exc.err})") from exc


def _detect_yunet(rgb: np.ndarray, min_size: int, model: str | Path | None) -> list[Face]:
    if model is None:
        raise ValueError(
            f"detector='yunet' needs yunet_model=<path to a YuNet .onnx file> or {YUNET_ENV}=<path>, e.g. "
            "face_detection_yunet_2023mar.onnx from the OpenCV Zoo "
            "(github.com/opencv/opencv_zoo, models/face_detection_yunet)"
        )
    path = Path(model).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(
            f"yunet_model: {path} does not exist; download "
            "face_detection_yunet_2023mar.onnx from the OpenCV Zoo "
            "(github.com/opencv/opencv_zoo, models/face_detection_yunet) and pass its path"
        )
    height, width = rgb.shape[:2]
    bgr = cv2.cvtColor(rgb, cv2.COLOR_GRAY2BGR if rgb.ndim == 2 else cv2.COLOR_RGB2BGR)
    with _detect_lock:
        net = _yunet(str(path), path.stat().st_mtime)
        net.setInputSize((width, height))
        _, found = net.detect(bgr)
    # Each row: x, y, w, h, five landmark points (x, y): the person's right eye, left eye, nose
    # tip, right and left mouth corners (image left first in each pair, as LANDMARKS), score.
    rows = [] if found is None else found
    return [
        Face(round(r[0]), round(r[1]), round(r[2]), round(r[3]), float(r[-1]),
             tuple((float(r[4 + 2 * k]), float(r[5 + 2 * k])) for k in range(5)))
        for r in rows
        if min(r[2], r[3]) >= min_size
    ]


def _clip(face: Face, width: int, height: int) -> Face:
    x0, y0 = min(max(face.x, 0), width - 1), min(max(face.y, 0), height - 1)
    x1, y1 = min(face.x + face.w, width), min(face.y + face.h, height)
    return Face(x0, y0, max(1, x1 - x0), max(1, y1 - y0), face.score, face.landmarks)


def _drop_overlaps(faces: list[Face]) -> list[Face]:
    """Keep the best-scoring box of each cluster of heavily overlapping boxes."""
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: (f.score, f.w * f.h), reverse=True):
        if all(_overlap(face, other) <= _OVERLAP for other in kept):
            kept.append(face)
    return kept


def _overlap(a: Face, b: Face) -> float:
    """Intersection over the smaller box's area (catches a box nested in another)."""
    iw = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    ih = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    if iw <= 0 or ih <= 0:
        return 0.0
    return iw * ih / min(a.w * a.h, b.w * b.h)
