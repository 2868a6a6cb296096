"""Inference speed: prediction per face, Haar detection on large photos, video analysis per frame.

Models are built in memory with random weights: weights do not change the cost.
"""
from __future__ import annotations

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
    """Per-face milliseconds on the sample photo: Haar detection, preprocessing and one model call,
    measured by the Predict path itself (``core.inference.latency_benchmark``). A drawn face is
    scored whole: detection is then not measured."""
    from core import inference
    from core.configs import ModelConfig

    photo = sample_photo(512)
    model = models.build_model(ModelConfig(arch=arch, weights="none", input_size=size), NUM_CLASSES)
    got = inference.latency_benchmark(inference.wrap_model(model, arch, size), n=n, image=photo.image,
                                      detector="haar" if photo.real else "whole")
    return {"arch": arch, "size": size, **{k: got[k]["median"] for k in ("detection_ms", "preprocess_ms", "predict_ms")}}


def bench_detection(megapixels: tuple[float, ...] = DETECTION_MEGAPIXELS, repeats: int = 3) -> dict:
    """Haar detection time on the sample photo resized to the given sizes, searched at full resolution
    ("before", one pass: it takes seconds at 40 MP) and on the ~1 MP working copy (``core.inference.faces``
    default, median of ``repeats``)."""
    import cv2

    from core.inference import faces

    base = sample_photo(512)
    faces.detect_faces(base.image)  # loads the cascade, which is not what is measured
    rows = []
    for mp in megapixels:
        side = max(16, round((mp * 1e6) ** 0.5))
        image = cv2.resize(base.image, (side, side),
                           interpolation=cv2.INTER_AREA if side < base.image.shape[0] else cv2.INTER_CUBIC)
        t0 = time.perf_counter()
        full = faces.detect_faces(image, work_pixels=None)
        before = time.perf_counter() - t0
        after = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fast = faces.detect_faces(image)
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
