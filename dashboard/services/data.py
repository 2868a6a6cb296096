"""Cached reads of what this machine holds besides runs: datasets and ImageNet weights."""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.analysis import estimate
from core.configs import ARCHITECTURES
from core.configs.paths import imagenet_weights_cached, imagenet_weights_path
from core.data import datasets
from core.data.dataset import DatasetError, sample_grid


@st.cache_data(ttl=30, show_spinner=False)
def dataset_names() -> list[str]:
    return [d["name"] for d in datasets.available_datasets()]


@st.cache_data(ttl=300, show_spinner="Loading dataset…")
def dataset_overview(name: str) -> dict[str, Any]:
    """Counts per split/class, a sample grid, skipped files and warnings, or the loader's error message."""
    try:
        ds = datasets.load_dataset(name)
    except DatasetError as exc:
        return {"error": str(exc)}
    return {"counts": ds.counts(), "samples": sample_grid(ds, per_class=6),
            "skipped": ds.skipped, "warnings": ds.warnings(), "notes": ds.notes, "image_size": ds.image_size}


def dataset_sizes(name: str) -> dict[str, int]:
    """Images per split of a dataset; empty when it cannot be loaded."""
    overview = dataset_overview(name)
    return {} if "error" in overview else estimate.split_totals(overview["counts"])


def weights_status() -> pd.DataFrame:
    """ImageNet weights per architecture: cached or not, and where."""
    return pd.DataFrame([{"architecture": a, "cached": imagenet_weights_cached(a),
                        "path": str(imagenet_weights_path(a))} for a in ARCHITECTURES])
