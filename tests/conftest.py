"""Shared test setup: every test session gets its own artifacts, data and Keras cache.

Nothing a test does touches the developer's real run store or downloads anything.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture(scope="session", autouse=True)
def isolated_lab(tmp_path_factory):
    """Point the run store, datasets and Keras cache at session-private folders."""
    base = tmp_path_factory.mktemp("lab")
    env = {
        "EMOTION_LAB_ARTIFACTS": str(base / "artifacts"),
        "EMOTION_LAB_DATA": str(base / "data"),
        "KERAS_HOME": str(base / "keras"),
    }
    old = {k: os.environ.get(k) for k in [*env, "MLFLOW_TRACKING_URI"]}
    os.environ.update(env)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    yield base
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def fresh_artifacts(tmp_path, monkeypatch):
    """A run store of the test's own, for tests that count runs or jobs."""
    monkeypatch.setenv("EMOTION_LAB_ARTIFACTS", str(tmp_path / "artifacts"))
    return tmp_path / "artifacts"


def tiny_config(arch: str = "resnet50", config_id: str = "scratch-adam", **train):
    """The smoke version of a run: 32x32 tiny synthetic data, 1 epoch."""
    from dataclasses import replace

    from core import presets

    base = presets.base_config(arch, "synthetic-tiny", **{"epochs": 1, "batch_size": 8, **train})
    base = replace(base, model=replace(base.model, input_size=32))
    return presets.preset(config_id, base)
