"""The decoded-dataset cache: a CSV or folder decoded once into an .npz under artifacts/cache/.

Keyed by the source's path, modification times and sizes, so an edited dataset is decoded again.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from core.configs import artifacts_dir, atomic_write
from core.data.dataset import SPLITS, Dataset

# Bumped when the decoded cache's layout changes (v2: skipped file names, not a count).
DECODED_VERSION = 2


def cache_path(path: Path, val_fraction: float, seed: int) -> Path:
    """Where the decoded form of the source at ``path`` (split with ``val_fraction`` and ``seed``) is kept."""
    stats = [path] if path.is_file() else [path, *sorted(p for p in path.glob("*/*") if p.is_dir())]
    key = "|".join(f"{p.resolve()}:{p.stat().st_mtime_ns}:{p.stat().st_size}" for p in stats)
    digest = hashlib.sha256(f"{key}|{val_fraction}|{seed}|v{DECODED_VERSION}".encode()).hexdigest()[:16]
    return artifacts_dir() / "cache" / "datasets" / f"{path.stem}-{digest}.npz"


def write(ds: Dataset, cache: Path) -> None:
    """Store ``ds`` at ``cache`` whole or not at all."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{k}_{s}": v for s, xy in ds.splits.items() for k, v in zip("xy", xy)}
    meta = np.array([ds.name, ds.source, "|".join(ds.class_names), "\n".join(ds.skipped), "\n".join(ds.notes)])
    atomic_write(cache, lambda tmp: np.savez(tmp, meta=meta, split=np.array(ds.split), **arrays), suffix=".npz")


def read(cache: Path) -> Dataset:
    """The dataset stored at ``cache`` (raises on a damaged file: callers decode again)."""
    with np.load(cache) as z:
        name, source, classes, skipped, notes = z["meta"].tolist()
        splits = {s: (z[f"x_{s}"], z[f"y_{s}"]) for s in SPLITS}
        split = str(z["split"]) if "split" in z.files else ""
    return Dataset(name, source, tuple(classes.split("|")), splits, [f for f in skipped.split("\n") if f],
                   [n for n in notes.split("\n") if n], split)
