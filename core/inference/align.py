"""Aligned face crops: the eyes made level from the detector's landmarks, then a square crop.

FER2013 and the models trained on it saw upright faces; a head tilted by 20 degrees is a
different picture to them. When the detector gives landmarks (MTCNN, YuNet) the crop is
rotated about the face's centre so that the line through the eyes is horizontal; without
landmarks (Haar, whole) it is the plain square crop of ``faces.crop_face``.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from core.inference.faces import Face, crop_face


def eye_angle(face: Face) -> float | None:
    """Degrees the eye line is turned from horizontal (positive: the image-right eye is lower), or
    None when the face has no landmarks."""
    if len(face.landmarks) < 2:
        return None
    (lx, ly), (rx, ry) = sorted(face.landmarks[:2])  # image-left eye first, whatever the detector's order
    return math.degrees(math.atan2(ry - ly, rx - lx))


def aligned_crop(rgb: np.ndarray, face: Face, margin: float = 0.2, align: bool = True) -> np.ndarray:
    """Square RGB uint8 crop of ``face`` with ``margin`` of its longer side on each side, rotated so
    that the eyes are level when ``align`` and the face has landmarks.

    The square is the one ``crop_face`` takes, turned about the face's centre; parts of it outside
    the photo repeat the photo's edge pixels rather than being cut off, so the face stays centred
    and the crop stays square.
    """
    angle = eye_angle(face) if align else None
    if angle is None:
        return crop_face(rgb, face, margin)
    if margin < 0:
        raise ValueError(f"margin: expected a value >= 0. Received: margin={margin!r}")
    side = max(face.w, face.h) * (1.0 + 2.0 * margin)
    out = max(1, round(side))
    cx, cy = face.x + face.w / 2.0, face.y + face.h / 2.0
    # Rotating the photo by +angle (OpenCV: counter-clockwise on screen) about the face's centre
    # levels an eye line that falls to the right; the shift then puts that centre mid-crop.
    matrix = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    matrix[:, 2] += (out / 2.0 - cx, out / 2.0 - cy)
    return cv2.warpAffine(rgb, matrix, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
