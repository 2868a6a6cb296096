"""Datasets by name: which sources exist, loading one (decoded once, memoised per process), listing them.

A name is a synthetic set, a CSV or a folder (absolute, or under data/); every source ends as the
same :class:`~core.data.dataset.Dataset`, which one pipeline (``core.data.pipeline``) feeds to every model.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import pandas as pd

from core.configs import DataConfig, data_dir
from core.data import cache
from core.data.dataset import Dataset, DatasetError
from core.data.loaders import SYNTHETIC_SIZES, load_fer_csv, load_image_folders, load_synthetic

log = logging.getLogger(__name__)


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
    stored = cache.cache_path(path, val_fraction, seed)
    if stored.is_file():
        try:
            return cache.read(stored)
        except Exception:  # a damaged cache is only a cache: decode again
            log.warning("ignoring unreadable dataset cache %s", stored)
    ds = load_fer_csv(path, val_fraction, seed) if kind == "csv" else load_image_folders(path, val_fraction, seed)
    cache.write(ds, stored)
    return ds


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
