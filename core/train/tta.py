"""Test-time augmentation: a model's softmax averaged over fixed views of each test image.

Views act on model inputs (already resized and preprocessed). Flipping, cropping and
bilinear resizing commute with the backbones' per-channel preprocessing, so a view of the
preprocessed image equals the preprocessed view of the image.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

# Ten-crop (Krizhevsky et al. 2012; Khaireddin & Chen 2021 crop 40 of 48 px): four corners and the
# centre, each covering this fraction of the side, resized back to the input size, plus their flips.
CROP_FRACTION = 0.875


def _identity(x):
    return x


def _flip(x):
    import tensorflow as tf

    return tf.image.flip_left_right(x)


def _crop(box: tuple[float, float, float, float], flip: bool) -> Callable:
    def view(x):
        import tensorflow as tf

        n = tf.shape(x)[0]
        size = (x.shape[1], x.shape[2])
        out = tf.image.crop_and_resize(x, tf.tile(tf.constant([box], tf.float32), [n, 1]), tf.range(n), size)
        return tf.image.flip_left_right(out) if flip else out

    return view


def _ten_crop() -> list[Callable]:
    f = CROP_FRACTION
    m = (1 - f) / 2
    boxes = [(0, 0, f, f), (0, 1 - f, f, 1), (1 - f, 0, 1, f), (1 - f, 1 - f, 1, 1), (m, m, m + f, m + f)]
    return [_crop(b, flip) for flip in (False, True) for b in boxes]


def views(mode: str) -> list[Callable]:
    """The views ``mode`` averages: "none" (one view, the plain prediction), "flip" (image and its
    mirror) or "ten-crop"."""
    table = {"none": lambda: [_identity], "flip": lambda: [_identity, _flip], "ten-crop": _ten_crop}
    if mode not in table:
        raise ValueError(f"Unknown test-time augmentation {mode!r}; expected one of {sorted(table)}")
    return table[mode]()


def extra_passes(mode: str) -> int:
    """Passes over the test split ``mode`` costs beyond the plain prediction (which ``predict`` reuses)."""
    return sum(v is not _identity for v in views(mode))


def predict(model, dataset, mode: str, plain: np.ndarray | None = None) -> np.ndarray:
    """Mean softmax over ``mode``'s views for a batched tf.data dataset of (model input, label).

    ``plain``: the plain prediction of ``dataset`` when the caller has it already (the test
    report's), used for the unaltered view instead of predicting the whole split again.
    """
    import tensorflow as tf

    probs = [plain if v is _identity and plain is not None else
             np.asarray(model.predict(dataset.map(lambda a, b, v=v: (v(a), b), num_parallel_calls=tf.data.AUTOTUNE),
                                      verbose=0), dtype=np.float32)
             for v in views(mode)]
    return np.mean(probs, axis=0)
