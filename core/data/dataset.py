"""What every dataset source ends as: uint8 grayscale arrays per split, int labels, class names.

The checks here refuse data a classifier cannot honestly learn, wherever it came from.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

SPLITS: tuple[str, ...] = ("train", "val", "test")
# Below this many training images a class's metrics rest on a handful of faces.
FEW_TRAINING_IMAGES = 10
# Largest/smallest training class beyond this ratio: accuracy mostly measures the big classes.
IMBALANCE_RATIO = 10.0
# How many skipped file names a run records (the count is always complete).
SKIPPED_NAMES_RECORDED = 5


class DatasetError(ValueError):
    """A dataset could not be read; the message names the file, row or value."""


@dataclass
class Dataset:
    """Images per split as uint8 (N, H, W) arrays with int64 labels."""

    name: str
    source: str
    class_names: tuple[str, ...]
    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    skipped: list[str] = field(default_factory=list)  # unreadable files, relative to the source
    notes: list[str] = field(default_factory=list)
    # How train/val/test were formed, in words (runs record it; Compare warns when runs differ).
    split: str = ""

    @property
    def image_size(self) -> int:
        return int(self.splits["train"][0].shape[1])

    def counts(self) -> pd.DataFrame:
        """Images per split and class: columns ``split, class_name, count``."""
        rows = []
        for split, (_, y) in self.splits.items():
            counts = np.bincount(y, minlength=len(self.class_names))
            rows += [{"split": split, "class_name": c, "count": int(n)} for c, n in zip(self.class_names, counts)]
        return pd.DataFrame(rows, columns=["split", "class_name", "count"])

    def fingerprint(self) -> str:
        """Content hash of all images and labels: two runs on equal hashes saw equal data."""
        h = hashlib.sha256()
        for split in SPLITS:
            x, y = self.splits[split]
            h.update(split.encode())
            h.update(np.ascontiguousarray(x).tobytes())
            h.update(np.ascontiguousarray(y).tobytes())
        h.update("|".join(self.class_names).encode())
        return h.hexdigest()[:16]

    def warnings(self) -> list[str]:
        """What makes this dataset's results weak without making them meaningless (recorded on runs)."""
        counts = np.bincount(self.splits["train"][1], minlength=len(self.class_names))
        out = []
        few = [f"{c} ({n})" for c, n in zip(self.class_names, counts) if n < FEW_TRAINING_IMAGES]
        if few:
            out.append(f"{self.name}: fewer than {FEW_TRAINING_IMAGES} training images for {', '.join(few)}; "
                       "their per-class metrics rest on very few faces")
        if counts.min() > 0 and counts.max() / counts.min() > IMBALANCE_RATIO:
            big, small = int(counts.argmax()), int(counts.argmin())
            out.append(f"{self.name}: classes are very unbalanced ({self.class_names[big]} {counts[big]} vs "
                       f"{self.class_names[small]} {counts[small]} training images); consider class weights")
        if self.skipped:
            out.append(f"{self.name}: {len(self.skipped)} unreadable file(s) skipped, e.g. "
                       f"{', '.join(self.skipped[:SKIPPED_NAMES_RECORDED])}")
        return out

    def subset(self, max_train: int | None, max_eval: int | None, seed: int) -> Dataset:
        """A stratified, seeded subset (quick runs and smoke tests)."""
        if not max_train and not max_eval:
            return self
        splits = {}
        for split, (x, y) in self.splits.items():
            cap = max_train if split == "train" else max_eval
            splits[split] = (x, y) if not cap or cap >= len(y) else stratified_take(x, y, cap, seed)
        return Dataset(self.name, self.source, self.class_names, splits, self.skipped,
                       self.notes + [f"subset: train<={max_train}, eval<={max_eval}"], self.split)


def stratified_take(x: np.ndarray, y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images, as many per class as fit, drawn with ``seed`` (index order kept)."""
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    per_class = max(1, n // len(classes))
    idx = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class] for c in classes])
    idx = np.sort(idx)
    return x[idx], y[idx]


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float, seed: int, where: str, *,
                     class_names: Sequence[str] | None = None, part: str = "validation"):
    """``(train, val)`` pairs: ``fraction`` of the images for validation, stratified where every class allows it.

    A class's only image always stays on the training side: a class with no training image
    can never be predicted, so carving it off would only trade a validation image for a
    class the model cannot learn. When nothing is left to carve, the DatasetError says so
    (naming the classes with a single image) rather than blaming a class later. ``part``
    names what is carved (``"test"`` when a CSV without ``Usage`` gets its test split here).
    """
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    single = np.isin(y, np.flatnonzero(counts == 1))
    xr, yr = x[~single], y[~single]
    rest_counts = np.bincount(yr) if len(yr) else np.zeros(0, int)
    n_classes = int(np.sum(rest_counts > 0))
    n_val = max(1, int(round(fraction * len(y))))
    # Stratify whenever every class can appear on both sides; tiny sets fall back to random.
    stratify = None
    if n_classes and rest_counts[rest_counts > 0].min() >= 2 and len(yr) - n_classes >= n_classes:
        stratify, n_val = yr, max(n_val, n_classes)
    if n_val > len(yr) - max(n_classes, 1):  # every class carved from keeps at least one training image
        names = class_names or [str(c) for c in range(len(counts))]
        ones = [names[c] for c in np.flatnonzero(counts == 1)]
        why = (f"{len(ones)} of its {int(np.sum(counts > 0))} classes have a single image ({', '.join(ones)}), "
               "which must stay in training" if ones else f"it has only {len(y)} images")
        raise DatasetError(f"{where}: cannot carve a {part} split of {fraction:.0%} from {len(y)} images: {why}, "
                           f"leaving {len(yr)} to carve from. Add images (at least two per class) or give the "
                           f"{part} split images of its own")
    xt, xv, yt, yv = train_test_split(xr, yr, test_size=n_val, random_state=seed, stratify=stratify)
    # A random (unstratified) carve can still take every image of a small class: give one back.
    for c in np.setdiff1d(np.flatnonzero(rest_counts > 0), yt):
        i = int(np.flatnonzero(yv == c)[0])
        xt, yt = np.concatenate([xt, xv[i:i + 1]]), np.concatenate([yt, yv[i:i + 1]])
        xv, yv = np.delete(xv, i, axis=0), np.delete(yv, i)
    if single.any():
        xt, yt = np.concatenate([xt, x[single]]), np.concatenate([yt, y[single]])
    return (xt, yt), (xv, yv)


def check_splits(ds: Dataset) -> Dataset:
    """``ds`` when every split has images and :func:`check_classes` passes; else a DatasetError naming the source."""
    for split in SPLITS:
        if split not in ds.splits or len(ds.splits[split][1]) == 0:
            extra = f" ({len(ds.skipped)} unreadable images skipped)" if ds.skipped else ""
            raise DatasetError(f"{ds.source}: split {split!r} is empty{extra}; every split needs at least one image")
    check_classes(ds)
    return ds


def check_classes(ds: Dataset) -> None:
    """Refuse data a classifier cannot honestly learn: one class, or a class never seen in training.

    A one-class model scores 100% and then names that class for every face; a class absent
    from training can never be predicted, yet its test images count against the model.
    """
    present = [c for c, n in zip(ds.class_names, np.bincount(ds.splits["train"][1], minlength=len(ds.class_names)))
               if n > 0]
    if len(ds.class_names) < 2 or len(present) < 2:
        raise DatasetError(f"{ds.source}: {len(present)} class(es) with training images ({', '.join(present) or 'none'}); "
                           "a classifier needs at least two classes")
    counts = ds.counts().pivot(index="class_name", columns="split", values="count")
    missing = [c for c in ds.class_names if counts.loc[c, "train"] == 0]
    if missing:
        detail = "; ".join(f"{c}: " + ", ".join(f"{s} {int(counts.loc[c, s])}" for s in SPLITS if s in counts)
                           for c in missing)
        raise DatasetError(f"{ds.source}: class(es) {', '.join(missing)} have no training images ({detail}); "
                           "every class needs at least one training image (add images or remove the class folder)")


def class_weights(y: np.ndarray, num_classes: int) -> dict[int, float]:
    """Balanced weights (n / (k * count)); absent classes get weight 0 rather than inf."""
    counts = np.bincount(y, minlength=num_classes).astype(float)
    weights = np.where(counts > 0, len(y) / (num_classes * np.maximum(counts, 1)), 0.0)
    return {i: float(w) for i, w in enumerate(weights)}


def sample_grid(ds: Dataset, per_class: int = 6, split: str = "train", seed: int = 0) -> dict[str, np.ndarray]:
    """A few images per class for previews: ``{class_name: (k, H, W) uint8}``."""
    x, y = ds.splits[split]
    rng = np.random.default_rng(seed)
    return {c: x[rng.permutation(np.flatnonzero(y == i))[:per_class]] for i, c in enumerate(ds.class_names)}
