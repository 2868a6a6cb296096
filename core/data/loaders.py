"""Readers of each dataset source: the embedded synthetic set, a FER2013 CSV, image folders.

Each returns a checked :class:`~core.data.dataset.Dataset`; errors name the file, line or folder.
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from core.configs import artifacts_dir, atomic_write
from core.configs.choices import FER_LABELS
from core.configs.output import stderr_to_devnull
from core.data.dataset import SPLITS, Dataset, DatasetError, check_splits, split_validation

log = logging.getLogger(__name__)

FER_USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
# The published protocol: every choice (epochs, early stopping, search) on PublicTest, PrivateTest reported once.
OFFICIAL_FER_SPLIT = "official FER2013 Usage: Training / PublicTest (validation) / PrivateTest (test)"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".pgm", ".tif", ".tiff"}

# Folder names other datasets (CK+, RAF-DB, AffectNet exports) use for the same emotions.
_ALIASES = {
    "anger": "angry", "angry": "angry", "mad": "angry",
    "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy", "smile": "happy",
    "sad": "sad", "sadness": "sad", "unhappy": "sad",
    "surprise": "surprise", "surprised": "surprise",
    "neutral": "neutral", "calm": "neutral",
}

# name -> (train, val, test) images per class, and the seed offsets keep splits disjoint.
SYNTHETIC_SIZES: dict[str, tuple[int, int, int]] = {
    "synthetic": (400, 60, 100),
    "synthetic-small": (60, 20, 30),
    "synthetic-tiny": (6, 3, 3),
}
SYNTHETIC_VERSION = 1


def load_synthetic(name: str = "synthetic", seed: int = 0) -> Dataset:
    """The embedded offline dataset; generated on first use and cached under artifacts/cache/datasets/.

    The cache never goes into data/: that folder holds the user's own datasets, and listing
    them (``python -m core datasets``) must leave it as it was.
    """
    from core.data import synthetic

    if name not in SYNTHETIC_SIZES:
        raise DatasetError(f"Unknown synthetic dataset {name!r}; expected one of {sorted(SYNTHETIC_SIZES)}")
    sizes = SYNTHETIC_SIZES[name]
    cache = synthetic_cache_path(name, seed)
    if cache.is_file():
        with np.load(cache) as z:
            splits = {s: (z[f"x_{s}"], z[f"y_{s}"]) for s in SPLITS}
    else:
        # Distinct seeds per split: no test face is a copy of a training face.
        splits = {s: synthetic.generate(n, seed=seed * 10 + i) for i, (s, n) in enumerate(zip(SPLITS, sizes))}
        cache.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"{k}_{s}": v for s, xy in splits.items() for k, v in zip("xy", xy)}
        atomic_write(cache, lambda tmp: np.savez_compressed(tmp, **arrays), suffix=".npz")
    return check_splits(Dataset(name, f"synthetic:{name}", tuple(FER_LABELS), splits,
                        split=f"synthetic: generated train/val/test (seed {seed})"))


def synthetic_cache_path(name: str, seed: int = 0) -> Path:
    """Where the generated synthetic set ``name`` is kept: beside the decoded caches (``core.data.cache``)."""
    return artifacts_dir() / "cache" / "datasets" / f"{name}-v{SYNTHETIC_VERSION}-seed{seed}.npz"


def load_fer_csv(path: str | Path, val_fraction: float = 0.1, seed: int = 42) -> Dataset:
    """FER2013 ``emotion,pixels,Usage`` CSV. Without ``Usage``, val/test are carved from the rows."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found; expected a FER2013-style CSV (emotion,pixels,Usage)")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise DatasetError(f"{path}: not a readable CSV file: {exc}") from exc
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in ("emotion", "pixels") if c not in df.columns]
    if missing:
        raise DatasetError(f"{path.name}: missing column(s) {missing}; expected columns emotion,pixels,Usage "
                           f"(found {list(df.columns)})")
    if df.empty:
        raise DatasetError(f"{path.name}: no data rows")
    labels = pd.to_numeric(df["emotion"], errors="coerce")
    bad = labels.isna() | ~labels.isin(range(len(FER_LABELS)))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DatasetError(f"{path.name} line {i + 2} (data row {i + 1}): emotion={df['emotion'].iloc[i]!r}; expected an integer 0-6 "
                           f"({', '.join(f'{k} {c}' for k, c in enumerate(FER_LABELS))})")
    images = _parse_pixels(df["pixels"].tolist(), path.name)
    y = labels.to_numpy(dtype=np.int64)
    if "Usage" in df.columns:
        usage = df["Usage"].astype(str).str.strip()
        unknown = ~usage.isin(list(FER_USAGE))
        if unknown.any():
            i = int(np.flatnonzero(unknown.to_numpy())[0])
            raise DatasetError(f"{path.name} line {i + 2} (data row {i + 1}): Usage={usage.iloc[i]!r}; expected one of {list(FER_USAGE)}")
        split_of = usage.map(FER_USAGE).to_numpy()
        splits = {s: (images[split_of == s], y[split_of == s]) for s in SPLITS}
        split = OFFICIAL_FER_SPLIT
    else:
        rest, test = split_validation(images, y, 0.1, seed, path.name, class_names=FER_LABELS, part="test")
        train, val = split_validation(*rest, val_fraction, seed, path.name, class_names=FER_LABELS)
        splits = {"train": train, "val": val, "test": test}
        split = f"no Usage column: test 10%, validation {val_fraction:.0%} of the rest, stratified, seed {seed}"
    return check_splits(Dataset(path.stem, str(path), FER_LABELS, splits, split=split))


def _parse_pixels(strings: list[str], fname: str) -> np.ndarray:
    first = np.array(strings[0].split(), dtype=np.int64) if strings else np.zeros(0)
    side = int(round(np.sqrt(len(first))))
    expected = side * side if side * side == len(first) and side >= 8 else 48 * 48
    side = int(np.sqrt(expected))
    out = np.empty((len(strings), side, side), dtype=np.uint8)
    for i, s in enumerate(strings):
        try:
            values = np.array(s.split(), dtype=np.int64)
        except ValueError:
            raise DatasetError(f"{fname} line {i + 2} (data row {i + 1}): pixels contains a non-integer value; "
                               f"expected {expected} space-separated integers 0-255") from None
        if values.size != expected:
            raise DatasetError(f"{fname} line {i + 2} (data row {i + 1}): pixels has {values.size} values; "
                               f"expected {expected} ({side}x{side})")
        if values.min() < 0 or values.max() > 255:
            raise DatasetError(f"{fname} line {i + 2} (data row {i + 1}): pixel value {int(values.max() if values.max() > 255 else values.min())} "
                               f"is outside 0-255")
        out[i] = values.reshape(side, side)
    return out


def canonical_class(folder: str) -> str:
    """Map a class folder name onto the FER2013 vocabulary where it matches; else keep it."""
    key = re.sub(r"[^a-z]", "", folder.lower())
    return _ALIASES.get(key, folder)


def _class_folders(root: Path) -> dict[str, Path]:
    folders = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        name = canonical_class(d.name)
        if name in folders:
            raise DatasetError(f"{root}: folders {folders[name].name!r} and {d.name!r} both map to class {name!r}")
        folders[name] = d
    return folders


@contextmanager
def _codec_messages_hidden() -> Iterator[None]:
    """While OpenCV's own log is switched off (``OPENCV_LOG_LEVEL=OFF``, as the CLI has it without
    --verbose), also hide what its image codecs print past it ("Premature end of JPEG file" from
    libjpeg): file descriptor 2 points at /dev/null for one decode. The file is still reported:
    unreadable ones are skipped and named by the loader."""
    if os.environ.get("OPENCV_LOG_LEVEL", "").upper() not in ("OFF", "SILENT", "0"):
        yield
        return
    with stderr_to_devnull():
        yield


def _read_folder_split(root: Path, classes: tuple[str, ...], size: int | None) -> tuple[np.ndarray, np.ndarray, list]:
    import cv2

    images, labels, skipped = [], [], []
    folders = _class_folders(root)
    for name, folder in folders.items():
        if name not in classes:
            raise DatasetError(f"{folder}: class folder {folder.name!r} matches no training class; "
                               f"expected one of {list(classes)}")
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            with _codec_messages_hidden():
                img = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
            if img is None or img.size == 0:
                skipped.append(str(f.relative_to(root.parent)))
                log.warning("skipping unreadable image %s", f)
                continue
            size = size or img.shape[0]
            if img.shape != (size, size):
                img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
            images.append(img)
            labels.append(classes.index(name))
    x = np.stack(images) if images else np.zeros((0, size or 48, size or 48), np.uint8)
    return x, np.asarray(labels, dtype=np.int64), skipped


def load_image_folders(root: str | Path, val_fraction: float = 0.1, seed: int = 42) -> Dataset:
    """``root/train/<class>/*.png`` and ``root/test/<class>/*.png`` (``val/`` optional)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: folder not found; expected train/ and test/ folders of class folders")
    train_dir, test_dir = root / "train", root / "test"
    for d in (train_dir, test_dir):
        if not d.is_dir():
            raise DatasetError(f"{root}: missing {d.name}/ folder; expected {root}/train/<class>/ and {root}/test/<class>/")
    found = list(_class_folders(train_dir))
    if not found:
        raise DatasetError(f"{train_dir}: no class folders; expected one folder per emotion (e.g. angry/, happy/)")
    # Canonical emotions keep the FER2013 order so label 3 means "happy" in every dataset.
    classes = tuple([c for c in FER_LABELS if c in found] + sorted(c for c in found if c not in FER_LABELS))
    x_train, y_train, skipped = _read_folder_split(train_dir, classes, None)
    if len(y_train) == 0:
        raise DatasetError(f"{train_dir}: no readable images in {list(found)} ({len(skipped)} unreadable skipped)")
    size = x_train.shape[1]
    x_test, y_test, s2 = _read_folder_split(test_dir, classes, size)
    skipped += s2
    val_dir = next((root / n for n in ("val", "validation") if (root / n).is_dir()), None)
    if val_dir is not None:
        x_val, y_val, s3 = _read_folder_split(val_dir, classes, size)
        skipped += s3
        train = (x_train, y_train)
        val = (x_val, y_val)
        split = f"folders train/ {val_dir.name}/ test/"
    else:
        train, val = split_validation(x_train, y_train, val_fraction, seed, str(train_dir), class_names=classes)
        split = f"folders train/ test/; validation {val_fraction:.0%} of train/, stratified, seed {seed}"
    ds = Dataset(root.name, str(root), classes, {"train": train, "val": val, "test": (x_test, y_test)}, skipped,
                 split=split)
    return check_splits(ds)
