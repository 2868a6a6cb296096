"""Shared test setup: every test session gets its own artifacts, data and Keras cache.

Nothing a test does touches the developer's real run store or downloads anything.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture(autouse=True)
def main_module_restored():
    """Streamlit's AppTest runs a page as ``__main__`` and leaves it there; a later test's spawned process
    (the bench's workers) would then re-run that page on start-up and die. Each test gets the real one back."""
    import sys

    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


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

    from core.configs import presets

    base = presets.base_config(arch, "synthetic-tiny", **{"epochs": 1, "batch_size": 8, **train})
    base = replace(base, model=replace(base.model, input_size=32))
    return presets.preset(config_id, base)


# ---------------------------------------------------------------- dashboard (AppTest) helpers
@pytest.fixture
def st_clean():
    """Streamlit caches are process-global: every page test starts and ends with them empty."""
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def no_worker(fresh_artifacts, monkeypatch, st_clean):
    """Record worker start-ups instead of detaching a real worker from the test process."""
    from core import jobs

    started = []
    monkeypatch.setattr(jobs, "ensure_worker", lambda **kw: started.append(1))
    return started


@pytest.fixture
def downloads(monkeypatch):
    """What each download button would hand the browser, by key."""
    import streamlit as st

    seen = {}
    original = st.download_button

    def spy(label, data, *args, **kwargs):
        seen[kwargs.get("key")] = data
        return original(label, data, *args, **kwargs)

    monkeypatch.setattr(st, "download_button", spy)
    return seen


def texts(at) -> str:
    """Everything a user reads on the page: markdown, captions and alerts."""
    parts = [m.value for m in at.markdown] + [m.value for m in at.caption] + [e.value for e in at.info]
    parts += [e.value for e in at.warning] + [e.value for e in at.success] + [e.value for e in at.error]
    return "\n".join(map(str, parts))


def figure(at, key: str) -> dict:
    """The plotly figure the browser would draw for the chart with this key."""
    import json

    charts = [el for el in at.get("plotly_chart") if el.proto.id.endswith(key)]
    assert len(charts) == 1, [el.proto.id for el in at.get("plotly_chart")]
    return json.loads(charts[0].proto.spec)


def array(value):
    """A plotly JSON array: a plain list, or the typed-array form numpy data is sent in."""
    import base64

    import numpy as np

    if isinstance(value, dict) and "bdata" in value:
        out = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return out.reshape([int(n) for n in value["shape"].split(",")]) if "shape" in value else out
    return np.asarray(value)


def write_imagenet_file(arch: str) -> Path:
    """An ImageNet-format notop weights file (Keras' legacy HDF5 layout) where Keras caches it."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    from core.configs.paths import imagenet_weights_path
    from core.train import models

    path = imagenet_weights_path(arch)
    path.parent.mkdir(parents=True, exist_ok=True)
    backbone = models.get_spec(arch).builder_fn()(include_top=False, weights=None, input_shape=(32, 32, 3))
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, backbone)
    keras.backend.clear_session()
    return path


def stored_run(store, arch: str, input_size: int, summary: dict | None = None) -> str:
    """A finished run whose model is stored exactly the way training stores one (open_run,
    evaluate_and_log, ``summary`` as run-level metrics, finish); the training epochs themselves
    are left out to save a shared 2-core CPU a minute, and tests/train/test_training.py covers them."""
    from dataclasses import replace

    from core.data import datasets
    from core.train import models, runs

    cfg = tiny_config(arch, "scratch-adam")
    cfg = replace(cfg, model=replace(cfg.model, input_size=input_size))
    ds = datasets.load_for_run(cfg.data)
    run_id = runs.open_run(cfg, ds, store=store)
    model = models.build_model(cfg.model, len(ds.class_names), seed=cfg.train.seed)
    runs.evaluate_and_log(model, cfg, ds, run_id, store)
    if summary is not None:
        store.log_summary(run_id, {**summary, "params_total": float(models.count_params(model)["params_total"])})
    store.finish(run_id, "FINISHED")
    return run_id
