"""The embedded synthetic dataset: shape, determinism, validation, and difficulty."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from core.configs.choices import FER_LABELS
from core.data.synthetic import generate

# Pairs that real FER2013 models confuse, and pairs they rarely do.
NEIGHBOURS = [("angry", "disgust"), ("fear", "surprise"), ("sad", "neutral")]
DISTANT = [("angry", "surprise"), ("disgust", "surprise"), ("angry", "fear")]


def test_class_names_follow_fer2013_label_order():
    assert FER_LABELS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def test_shapes_dtypes_and_balanced_shuffled_labels():
    x, y = generate(5, seed=1)
    assert x.shape == (35, 48, 48) and x.dtype == np.uint8
    assert y.shape == (35,) and y.dtype == np.int64
    assert np.bincount(y, minlength=7).tolist() == [5] * 7
    assert not np.array_equal(y, np.sort(y)), "labels should come shuffled"


def test_size_argument_sets_image_size():
    x, _ = generate(1, size=64)
    assert x.shape == (7, 64, 64)


def test_same_seed_same_bits_other_seed_other_images():
    x1, y1 = generate(4, seed=7)
    x2, y2 = generate(4, seed=7)
    x3, _ = generate(4, seed=8)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert not np.array_equal(x1, x3)


@pytest.mark.parametrize(
    "kwargs, shown",
    [
        ({"n_per_class": 0}, "n_per_class=0"),
        ({"n_per_class": -3}, "n_per_class=-3"),
        ({"n_per_class": 2.5}, "n_per_class=2.5"),
        ({"n_per_class": True}, "n_per_class=True"),
        ({"n_per_class": 1, "size": 31}, "size=31"),
        ({"n_per_class": 1, "seed": -1}, "seed=-1"),
    ],
)
def test_bad_arguments_are_named_in_the_error(kwargs, shown):
    with pytest.raises(ValueError, match=f"Received: {shown}$"):
        generate(**kwargs)


def test_images_have_content_and_vary_within_a_class():
    x, y = generate(6, seed=2)
    stds = x.reshape(len(x), -1).std(axis=1)
    assert stds.min() > 5, "every image should show a face, not a flat field"
    happy = x[y == FER_LABELS.index("happy")].astype(np.float32)
    diffs = [np.abs(happy[i] - happy[j]).mean() for i in range(len(happy)) for j in range(i)]
    assert min(diffs) > 5, "samples of one class should differ (identity, pose, lighting)"


def _pixels(x: np.ndarray) -> np.ndarray:
    return np.stack([cv2.resize(im, (16, 16), interpolation=cv2.INTER_AREA).ravel() for im in x]) / 255.0


@pytest.fixture(scope="module")
def linear_probe():
    """A linear classifier on downsampled pixels, scored on another seed's faces."""
    x_train, y_train = generate(150, seed=11)
    x_test, y_test = generate(50, seed=12)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, solver="newton-cg"))
    clf.fit(_pixels(x_train), y_train)
    pred = clf.predict(_pixels(x_test))
    return float((pred == y_test).mean()), confusion_matrix(y_test, pred, labels=range(7))


def test_learnable_but_not_trivial(linear_probe):
    accuracy, _ = linear_probe
    assert 0.30 < accuracy < 0.95, f"linear probe accuracy {accuracy:.2f} (chance is 0.14)"


def test_mistakes_fall_between_similar_expressions(linear_probe):
    _, cm = linear_probe

    def confusions(pairs):
        idx = [(FER_LABELS.index(a), FER_LABELS.index(b)) for a, b in pairs]
        return sum(cm[i, j] + cm[j, i] for i, j in idx)

    assert confusions(NEIGHBOURS) > 3 * confusions(DISTANT), cm
