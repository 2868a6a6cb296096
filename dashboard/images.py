"""Drawing for the pages: photos with numbered face boxes, display-sized thumbnails (OpenCV)."""
from __future__ import annotations

import cv2
import numpy as np

SHOW_MAX_SIDE = 1600  # the photo with its boxes is shown at most this large
THUMB_SIDE = 320  # face crops and Grad-CAM overlays are shown about half this size; sharp on HiDPI screens


def thumbnail(image: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """``image`` shrunk so its longer side is at most ``side`` (never enlarged)."""
    scale = side / max(image.shape[:2])
    if scale >= 1.0:
        return image
    return cv2.resize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))),
                      interpolation=cv2.INTER_AREA)


def draw_faces(image: np.ndarray, boxes: list[tuple[int, int, int, int]],
               max_side: int = SHOW_MAX_SIDE) -> np.ndarray:
    """The photo (shrunk to ``max_side``) with each box outlined and numbered 1, 2, ... in box order."""
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
