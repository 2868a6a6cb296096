"""Dataset loaders (FER2013 CSV, image folders, embedded synthetic) and the tf.data pipeline.

Every source ends as the same thing: uint8 grayscale arrays in memory per split, int
labels, and class names. From there one pipeline feeds every model.
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from core.configs import DataConfig, data_dir
from core.configs.choices import FER_LABELS, MODELS

log = logging.getLogger(__name__)

FER_CLASSES: tuple[str, ...] = FER_LABELS
SPLITS: tuple[str, ...] = ("train", "val", "test")
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

# Below this many training images a class's metrics rest on a handful of faces.
FEW_TRAINING_IMAGES = 10
# Largest/smallest training class beyond this ratio: accuracy mostly measures the big classes.
IMBALANCE_RATIO = 10.0
# Bumped when the decoded cache's layout changes (v2: skipped file names, not a count).
DECODED_VERSION = 2
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
            splits[split] = (x, y) if not cap or cap >= len(y) else _stratified_take(x, y, cap, seed)
        return Dataset(self.name, self.source, self.class_names, splits, self.skipped,
                       self.notes + [f"subset: train<={max_train}, eval<={max_eval}"], self.split)


def _stratified_take(x: np.ndarray, y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    per_class = max(1, n // len(classes))
    idx = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class] for c in classes])
    idx = np.sort(idx)
    return x[idx], y[idx]


def _split_validation(x: np.ndarray, y: np.ndarray, fraction: float, seed: int, where: str):
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    n_classes = int(np.sum(counts > 0))
    n_val = max(1, int(round(fraction * len(y))))
    # Stratify whenever every class can appear on both sides; tiny sets fall back to random.
    stratify = None
    if counts[counts > 0].min() >= 2 and len(y) - n_classes >= n_classes:
        stratify, n_val = y, max(n_val, n_classes)
    if n_val >= len(y):
        raise DatasetError(f"{where}: cannot carve a validation split of {fraction:.0%} from {len(y)} images")
    xt, xv, yt, yv = train_test_split(x, y, test_size=n_val, random_state=seed, stratify=stratify)
    return (xt, yt), (xv, yv)


def _check_splits(ds: Dataset) -> Dataset:
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


# ---------------------------------------------------------------- synthetic


def load_synthetic(name: str = "synthetic", seed: int = 0) -> Dataset:
    """The embedded offline dataset; generated on first use and cached under data/."""
    from core.data import synthetic

    if name not in SYNTHETIC_SIZES:
        raise DatasetError(f"Unknown synthetic dataset {name!r}; expected one of {sorted(SYNTHETIC_SIZES)}")
    sizes = SYNTHETIC_SIZES[name]
    cache = data_dir() / f"{name}-v{SYNTHETIC_VERSION}-seed{seed}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            splits = {s: (z[f"x_{s}"], z[f"y_{s}"]) for s in SPLITS}
    else:
        # Distinct seeds per split: no test face is a copy of a training face.
        splits = {s: synthetic.generate(n, seed=seed * 10 + i) for i, (s, n) in enumerate(zip(SPLITS, sizes))}
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp.npz")
        np.savez_compressed(tmp, **{f"{k}_{s}": v for s, xy in splits.items() for k, v in zip("xy", xy)})
        tmp.replace(cache)
    return _check_splits(Dataset(name, f"synthetic:{name}", tuple(synthetic.CLASS_NAMES), splits,
                                 split=f"synthetic: generated train/val/test (seed {seed})"))


# ---------------------------------------------------------------- FER2013 csv


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
    bad = labels.isna() | ~labels.isin(range(len(FER_CLASSES)))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DatasetError(f"{path.name} line {i + 2} (data row {i + 1}): emotion={df['emotion'].iloc[i]!r}; expected an integer 0-6 "
                           f"({', '.join(f'{k} {c}' for k, c in enumerate(FER_CLASSES))})")
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
        rest, test = _split_validation(images, y, 0.1, seed, path.name)
        train, val = _split_validation(*rest, val_fraction, seed, path.name)
        splits = {"train": train, "val": val, "test": test}
        split = f"no Usage column: test 10%, validation {val_fraction:.0%} of the rest, stratified, seed {seed}"
    return _check_splits(Dataset(path.stem, str(path), FER_CLASSES, splits, split=split))


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


# ---------------------------------------------------------------- image folders


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
    classes = tuple([c for c in FER_CLASSES if c in found] + sorted(c for c in found if c not in FER_CLASSES))
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
        train, val = _split_validation(x_train, y_train, val_fraction, seed, str(train_dir))
        split = f"folders train/ test/; validation {val_fraction:.0%} of train/, stratified, seed {seed}"
    ds = Dataset(root.name, str(root), classes, {"train": train, "val": val, "test": (x_test, y_test)}, skipped,
                 split=split)
    return _check_splits(ds)


# ---------------------------------------------------------------- discovery


def resolve_source(name: str) -> tuple[str, Path | None]:
    """``(kind, path)`` for a dataset name: a synthetic name, a CSV or a folder (absolute or under data/)."""
    if name in SYNTHETIC_SIZES:
        return "synthetic", None
    for candidate in (Path(name), data_dir() / name, data_dir() / f"{name}.csv"):
        if candidate.is_file() and candidate.suffix.lower() == ".csv":
            return "csv", candidate
        if candidate.is_dir():
            return "folders", candidate
    raise DatasetError(f"Unknown dataset {name!r}: not a synthetic set ({', '.join(SYNTHETIC_SIZES)}) and no CSV "
                       f"file or image folder of that name (looked in . and {data_dir()})")


def load_dataset(name: str, val_fraction: float = 0.1, seed: int = 42) -> Dataset:
    """Load any supported source by name or path.

    Decoded CSVs and folders are cached as .npz under artifacts/cache/, keyed by the
    source's path and modification times, so each job process decodes a dataset once.
    """
    kind, path = resolve_source(name)
    if kind == "synthetic":
        return load_synthetic(name)
    cache = _decoded_cache_path(path, val_fraction, seed)
    if cache.is_file():
        try:
            return _read_decoded(cache)
        except Exception:  # a damaged cache is only a cache: decode again
            log.warning("ignoring unreadable dataset cache %s", cache)
    ds = load_fer_csv(path, val_fraction, seed) if kind == "csv" else load_image_folders(path, val_fraction, seed)
    _write_decoded(ds, cache)
    return ds


def _decoded_cache_path(path: Path, val_fraction: float, seed: int) -> Path:
    from core.configs import artifacts_dir

    stats = [path] if path.is_file() else [path, *sorted(p for p in path.glob("*/*") if p.is_dir())]
    key = "|".join(f"{p.resolve()}:{p.stat().st_mtime_ns}:{p.stat().st_size}" for p in stats)
    digest = hashlib.sha256(f"{key}|{val_fraction}|{seed}|v{DECODED_VERSION}".encode()).hexdigest()[:16]
    return artifacts_dir() / "cache" / "datasets" / f"{path.stem}-{digest}.npz"


def _write_decoded(ds: Dataset, cache: Path) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + ".tmp.npz")
    arrays = {f"{k}_{s}": v for s, xy in ds.splits.items() for k, v in zip("xy", xy)}
    meta = np.array([ds.name, ds.source, "|".join(ds.class_names), "\n".join(ds.skipped), "\n".join(ds.notes)])
    np.savez(tmp, meta=meta, split=np.array(ds.split), **arrays)
    tmp.replace(cache)


def _read_decoded(cache: Path) -> Dataset:
    with np.load(cache) as z:
        name, source, classes, skipped, notes = z["meta"].tolist()
        splits = {s: (z[f"x_{s}"], z[f"y_{s}"]) for s in SPLITS}
        split = str(z["split"]) if "split" in z.files else ""
    return Dataset(name, source, tuple(classes.split("|")), splits, [f for f in skipped.split("\n") if f],
                   [n for n in notes.split("\n") if n], split)


@lru_cache(maxsize=4)
def _cached(name: str, val_fraction: float, seed: int, stamp: float) -> Dataset:
    return load_dataset(name, val_fraction, seed)


def forget_loaded() -> None:
    """Drop this process's memo of loaded datasets (the next load reads the decoded cache again)."""
    _cached.cache_clear()


def load_for_run(cfg: DataConfig) -> Dataset:
    """Load (memoised per process: a worker decodes a dataset once for consecutive jobs) and subset.

    Split and subset follow ``cfg.split_seed``, never the training seed: runs that differ only
    by seed see the same images, so their differences are the seed's alone.
    """
    kind, path = resolve_source(cfg.dataset)
    stamp = path.stat().st_mtime if path is not None else 0.0
    ds = _cached(cfg.dataset, cfg.val_fraction, cfg.split_seed, stamp)
    return ds.subset(cfg.max_train, cfg.max_eval, cfg.split_seed)


def available_datasets() -> list[dict]:
    """Datasets usable by name: synthetic sets plus CSVs and image folders under data/."""
    out = [{"name": n, "kind": "synthetic", "path": ""} for n in SYNTHETIC_SIZES]
    root = data_dir()
    if root.is_dir():
        for p in sorted(root.iterdir()):
            if p.is_file() and p.suffix.lower() == ".csv":
                out.append({"name": p.stem, "kind": "csv", "path": str(p)})
            elif p.is_dir() and (p / "train").is_dir():
                out.append({"name": p.name, "kind": "folders", "path": str(p)})
    return out


# ---------------------------------------------------------------- tf.data


def class_weights(y: np.ndarray, num_classes: int) -> dict[int, float]:
    """Balanced weights (n / (k * count)); absent classes get weight 0 rather than inf."""
    counts = np.bincount(y, minlength=num_classes).astype(float)
    weights = np.where(counts > 0, len(y) / (num_classes * np.maximum(counts, 1)), 0.0)
    return {i: float(w) for i, w in enumerate(weights)}


def augmenter(strength: float, seed: int):
    """Flip, small rotation/shift/zoom as Keras preprocessing layers (training only)."""
    import keras

    s = float(strength)
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomRotation(0.04 * s, fill_mode="nearest", seed=seed + 1),
        keras.layers.RandomTranslation(0.08 * s, 0.08 * s, fill_mode="nearest", seed=seed + 2),
        keras.layers.RandomZoom(0.1 * s, fill_mode="nearest", seed=seed + 3),
    ], name="augment")


def paper_augmenter(strength: float, seed: int):
    """The FER2013 literature's set (Khaireddin & Chen 2021) as batched Keras preprocessing layers:
    random resized crop (zoom in with independent height/width, i.e. scale and aspect jitter),
    shift, flip, rotation and random erasing. Applied at the native size, before upscaling."""
    import keras

    s = float(strength)
    return keras.Sequential([
        # Negative zoom factors zoom in: a crop of 64-100% of each side, resized back.
        keras.layers.RandomZoom((-0.2 * s, 0.0), (-0.2 * s, 0.0), fill_mode="nearest", seed=seed),
        keras.layers.RandomTranslation(0.1 * s, 0.1 * s, fill_mode="nearest", seed=seed + 1),
        keras.layers.RandomFlip("horizontal", seed=seed + 2),
        keras.layers.RandomRotation(10 / 360 * s, fill_mode="nearest", seed=seed + 3),
        keras.layers.RandomErasing(factor=min(0.5 * s, 1.0), scale=(0.02, 0.2), value_range=(0, 255),
                                   seed=seed + 4),
    ], name="augment_paper")


AUGMENTERS = {"basic": augmenter, "paper": paper_augmenter}

def to_model_input(x, arch: str, size: int):
    """Tensor version of ``core.train.models.preprocess``: float or uint8 (N,H,W,1|3) -> model input."""
    import tensorflow as tf

    x = tf.cast(x, tf.float32)
    if x.shape[1] != size or x.shape[2] != size:
        x = tf.image.resize(x, (size, size), method="bilinear", antialias=True)
    if x.shape[-1] == 1:
        # ImageNet backbones need 3 channels; tiling keeps the gray value in each.
        x = tf.repeat(x, 3, axis=-1)
    return MODELS[arch].preprocess_fn()(x)


def make_pipeline(x: np.ndarray, y: np.ndarray, *, arch: str, input_size: int, num_classes: int,
                  batch_size: int, training: bool, augment: bool = True, augment_strength: float = 1.0,
                  seed: int = 0, augment_set: str = "basic", autotune: bool = False):
    """uint8 arrays -> batched, preprocessed tf.data.Dataset of (image, one-hot label).

    Images stay at their stored size in memory and are resized batch by batch as they are fed,
    so a 224 px run holds no more decoded data than a 48 px one. ``autotune=True`` leaves
    tf.data's autotuning on (the bench's comparison; see ``fixed_parallelism``).
    """
    import tensorflow as tf

    images = tf.data.Dataset.from_tensor_slices((x[..., None], tf.one_hot(y, num_classes)))
    if not training:
        # Evaluation batches are identical every pass: cache them at the stored size (an upscaled
        # float cache would grow with the square of the input size) and resize on the way out.
        ds = (images.batch(batch_size).cache()
              .map(lambda a, b: (to_model_input(a, arch, input_size), b), num_parallel_calls=tf.data.AUTOTUNE)
              .prefetch(tf.data.AUTOTUNE))
        return ds if autotune else fixed_parallelism(ds)
    ds = images.shuffle(len(y), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    if augment and augment_strength > 0:
        aug = AUGMENTERS[augment_set](augment_strength, seed)
        ds = ds.map(lambda a, b: (aug(tf.cast(a, tf.float32), training=True), b), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(lambda a, b: (to_model_input(a, arch, input_size), b), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds if autotune else fixed_parallelism(ds)


def fixed_parallelism(ds):
    """``ds`` with tf.data's autotuning off: parallel maps use min(16, cores) workers, prefetch keeps its buffer.

    Keras makes a new iterator every epoch (and every evaluation); with autotuning on,
    discarding one stalls for about a second in many epochs while its tuning thread winds
    down, which on a short epoch is a large share of it (``python -m core bench --levers``
    measures the effect). The fixed settings are what autotuning converges to on a machine
    whose cores are busy training anyway.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def sample_grid(ds: Dataset, per_class: int = 6, split: str = "train", seed: int = 0) -> dict[str, np.ndarray]:
    """A few images per class for previews: ``{class_name: (k, H, W) uint8}``."""
    x, y = ds.splits[split]
    rng = np.random.default_rng(seed)
    return {c: x[rng.permutation(np.flatnonzero(y == i))[:per_class]] for i, c in enumerate(ds.class_names)}


def describe(names: Iterable[str] | None = None) -> pd.DataFrame:
    """Counts per split and class for each available dataset (the ``datasets`` CLI)."""
    frames = []
    for entry in available_datasets():
        if names and entry["name"] not in names:
            continue
        try:
            counts = load_dataset(entry["name"]).counts()
        except DatasetError as exc:
            log.warning("%s", exc)
            continue
        table = counts.pivot(index="class_name", columns="split", values="count").reset_index()
        table.insert(0, "dataset", entry["name"])
        frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
