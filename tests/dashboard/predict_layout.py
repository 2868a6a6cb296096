"""The Predict page in the browser layout check: a group photo and a short video, composed here
from scikit-image's astronaut (no downloads), scored by a model the test's store holds.

``group_photo`` is a wide landscape photo (1600x700) with the astronaut's head pasted four
times at different sizes: at its own width it is wider than a 1000 px window, which is what used
to push the text beside it out of its column (issue 27: "ace 1: The model says" cut at the
left). ``face_video`` is a few frames of one head moving across a plain background.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

# The astronaut's head with hair and chin, rows and columns of skimage.data.astronaut().
HEAD = (slice(20, 230), slice(130, 320))
# (x, y, height) of each pasted head in the 1600x700 group photo: four faces, left to right.
GROUP = ((60, 220, 300), (440, 120, 420), (900, 260, 260), (1240, 180, 330))


def _head(height: int) -> np.ndarray:
    import cv2
    from skimage import data

    head = data.astronaut()[HEAD]
    width = round(head.shape[1] * height / head.shape[0])
    return cv2.resize(head, (width, height), interpolation=cv2.INTER_AREA)


def _background(height: int, width: int) -> np.ndarray:
    """A soft wall: a gradient, nothing a face detector could take for a face."""
    rows = np.linspace(0, 1, height)[:, None, None]
    cols = np.linspace(0, 1, width)[None, :, None]
    wall = 150 + 60 * rows * np.array([1.0, 0.8, 0.5]) + 30 * cols * np.array([0.2, 0.5, 1.0])
    return np.clip(wall, 0, 255).astype(np.uint8).copy()


def group_photo(path: Path) -> Path:
    """A 1600x700 PNG with four faces, written to ``path``."""
    from PIL import Image

    canvas = _background(700, 1600)
    for x, y, height in GROUP:
        head = _head(height)
        canvas[y:y + head.shape[0], x:x + head.shape[1]] = head
    Image.fromarray(canvas).save(path)
    return path


def face_video(path: Path, frames: int = 8, fps: float = 4.0) -> Path:
    """A ``frames``-frame 640x360 clip (MPEG-4 part 2 in ``path``'s container) of one head moving right."""
    import cv2

    head = _head(220)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 360))
    try:
        for k in range(frames):
            frame = _background(360, 640)
            x = 60 + k * 40
            frame[70:70 + head.shape[0], x:x + head.shape[1]] = head
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path


def check_predict(page, url: str, folder: Path, shots: Path, widths: tuple[int, ...]) -> list[str]:
    """Predict with the group photo, then in video mode with the clip, each judged by
    ``layout_check.problems`` at every width in ``widths`` (the window resized, as a person would)
    and saved as a screenshot in ``shots``. The store must hold one model, which is the page's choice."""
    import re

    from layout_check import problems, settle

    found = []

    def judge(what: str) -> None:
        for width in widths:
            page.set_viewport_size({"width": width, "height": 6000})
            settle(page)
            page.screenshot(path=str(shots / f"layout-predict-{what}-{width}.png"), full_page=True)
            found.extend(f"predict ({what}) at {width} px: {problem}" for problem in problems(page))

    page.goto(f"{url}/predict")
    settle(page)
    page.locator("input[type=file]").first.set_input_files(str(group_photo(folder / "group.png")))
    # Drawn: the count and every face's section; then the numbered gallery with each face's verdict.
    page.get_by_text(re.compile(r"^1 photo, 4 faces found")).wait_for(timeout=240_000)
    page.get_by_role("heading", name="Face 4").wait_for()
    judge("photo")
    if not page.get_by_text(re.compile(r"^4 · ")).count():
        found.append("predict (photo): no numbered face gallery with each face's verdict")

    page.get_by_text("Video", exact=True).click()
    page.get_by_text("Upload a short video").wait_for()  # the photo uploader has gone
    page.locator("input[type=file]").first.set_input_files(str(face_video(folder / "clip.mp4")))
    page.get_by_role("button", name="Analyse video").click()
    page.get_by_text(re.compile(r"clip\.mp4: 1 face tracked")).wait_for(timeout=240_000)
    page.get_by_role("heading", name=re.compile(r"^Face 1: seen from")).wait_for()
    judge("video")
    return found
