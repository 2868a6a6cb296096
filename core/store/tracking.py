"""The run store: MLflow behind a small interface.

The dashboard and the job system read runs only through this module, so swapping the
local SQLite store for a team server (``MLFLOW_TRACKING_URI``) changes nothing else.
"""
from __future__ import annotations

import gc
import hashlib
import io
import json
import os
import platform
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.configs import RunConfig, artifacts_dir

EXPERIMENT = "emotion-lab"
HISTORY_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "epoch_time", "images_per_sec")
RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
RUN_COLUMNS = ["run_id", "label", "variant", "arch", "dataset", "status", "kind", "group", "start_time", "end_time",
               "epochs", "epochs_done", "test_accuracy", "test_macro_f1", "test_loss", "best_val_accuracy",
               "params_total", "train_time_s", "images_per_sec", "error", "data_warnings", "seed", "repeat_key",
               # Costs (core.train.costs): how each is measured: core/analysis/README.md, "Accuracy against cost".
               "train_time_per_epoch_s", "train_flops", "params_trainable", "latency_ms_per_face", "device"]
SEARCH_PAGE = 5000  # runs per MLflow search request (its limit is 50,000; smaller pages start answering sooner)
# Params that may differ between repeats of one configuration: the training seed, and the grid
# a repeat was queued in (more seeds of a grid can be queued later as a grid of their own).
REPEAT_FREE_PARAMS = ("train.seed", "group")


def default_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else a SQLite store under artifacts/."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{artifacts_dir() / 'mlflow.db'}"


class RunNotFound(KeyError):
    """No run with that id in the store."""


class StoreUnreachable(RuntimeError):
    """The run store did not answer (network, authentication, a locked or broken database): the run may exist."""


# MLflow's answers that mean "no such run" (a malformed id is no run either); every other
# failure says nothing about the run and must not read as "not found".
_NOT_FOUND_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


class RunStore:
    """Create, log and read runs. Cheap to construct; the MLflow client is created lazily."""

    def __init__(self, uri: str | None = None):
        self.uri = uri or default_uri()
        self._client = None
        self._experiment_id: str | None = None
        # run id -> artifact root, which never changes: learnt from every search, so reading a report of a
        # run just listed costs no query of its own (2000 runs: 2000 queries fewer for one listing).
        self._roots: dict[str, str] = {}

    # ----------------------------------------------------------- plumbing
    @property
    def client(self):
        if self._client is None:
            import logging

            from mlflow.tracking import MlflowClient

            # MLflow logs alembic migrations at INFO on first use; users need not see them.
            logging.getLogger("alembic").setLevel(logging.WARNING)
            logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
            if self.uri.startswith("sqlite:///"):
                Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            exp = self.client.get_experiment_by_name(EXPERIMENT)
            if exp is None:
                location = None
                if self.uri.startswith("sqlite:///"):
                    location = (artifacts_dir() / "mlruns").as_uri()
                try:
                    self._experiment_id = self.client.create_experiment(EXPERIMENT, artifact_location=location)
                except Exception:  # another process created it first
                    self._experiment_id = self.client.get_experiment_by_name(EXPERIMENT).experiment_id
            else:
                self._experiment_id = exp.experiment_id
        return self._experiment_id

    # ----------------------------------------------------------- writing
    def create_run(self, cfg: RunConfig, dataset: dict[str, Any], extra_tags: dict[str, str] | None = None) -> str:
        """Open a run with its resolved config, dataset identity, versions and device. Returns its id."""
        tags = {
            "variant": cfg.variant, "arch": cfg.model.arch, "dataset": cfg.data.dataset, "group": cfg.group,
            "label": f"{cfg.model.arch}/{cfg.variant}", "seed": str(cfg.train.seed), "profile": cfg.train.profile,
            **{f"dataset.{k}": str(v) for k, v in dataset.items()},
            **(extra_tags or {}),
        }
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=tags["label"])
        run_id = run.info.run_id
        from mlflow.entities import Param

        # One request for all params: one per param made opening a run cost a second on a busy machine.
        self.client.log_batch(run_id, params=[Param(k, "" if v is None else str(v)) for k, v in cfg.flat().items()])
        self.log_json(run_id, "config.json", cfg.to_dict())
        self.log_json(run_id, "environment.json", environment())
        return run_id

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        """Set every tag in one request."""
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_epoch(self, run_id: str, epoch: int, metrics: dict[str, float]) -> None:
        """Per-epoch metrics with step = epoch (1-based)."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, int(epoch)) for k, v in metrics.items() if v is not None and np.isfinite(v)]
        self.client.log_batch(run_id, metrics=batch)

    def logged_epochs(self, run_id: str) -> list[int]:
        """Epochs already in the metric history (used to resume without duplicates)."""
        return sorted({m.step for m in self.client.get_metric_history(run_id, "loss")})

    def log_json(self, run_id: str, name: str, obj: Any) -> None:
        self.client.log_text(run_id, json.dumps(obj, indent=2, default=_json_default), name)

    def log_file(self, run_id: str, path: str | Path, artifact_dir: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_dir)

    def log_arrays(self, run_id: str, name: str, **arrays: np.ndarray) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / name
            np.savez_compressed(p, **arrays)
            self.client.log_artifact(run_id, str(p))

    def log_summary(self, run_id: str, metrics: dict[str, float]) -> None:
        """Run-level numbers (test accuracy, parameter count, ...)."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])

    def finish(self, run_id: str, status: str = "FINISHED", error: str | None = None) -> None:
        """Close the run: FINISHED, FAILED or KILLED (cancelled)."""
        if error:
            self.client.set_tag(run_id, "error", error[-5000:])
        self.client.set_terminated(run_id, status)

    def reopen(self, run_id: str) -> None:
        """Mark a previously interrupted run as running again (resume)."""
        self.client.update_run(run_id, status="RUNNING")

    def delete(self, run_id: str) -> None:
        self.client.delete_run(run_id)

    # ----------------------------------------------------------- reading
    def get(self, run_id: str):
        """The MLflow run with this id (info, params, tags, metrics).

        Raises RunNotFound if the store has no such run, StoreUnreachable if the store did not answer.
        """
        from mlflow.exceptions import MlflowException

        try:
            run = self.client.get_run(run_id)
            self._roots[run_id] = run.info.artifact_uri
            return run
        except MlflowException as exc:
            if exc.error_code in _NOT_FOUND_CODES:
                raise RunNotFound(f"No run {run_id!r} in the store at {self.uri}") from exc
            raise StoreUnreachable(f"The run store at {self.uri} did not answer for run {run_id!r}: "
                                   f"{exc.message}") from exc
        except Exception as exc:  # the database driver's own errors: a damaged or locked file, say
            raise StoreUnreachable(f"The run store at {self.uri} could not be read for run {run_id!r}: "
                                   f"{type(exc).__name__}: {exc}") from exc

    def find_runs(self, tags: dict[str, str] | None = None, status: str | None = None) -> list:
        """MLflow runs of this experiment carrying all ``tags`` (exact values) and ``status``, newest first."""
        clauses = [f"tags.{_quote_key(k)} = {_quote_value(v)}" for k, v in (tags or {}).items()]
        if status is not None:
            if status not in RUN_STATUSES:
                raise ValueError(f"status: expected one of {', '.join(RUN_STATUSES)}. Received: status={status!r}")
            clauses.append(f"attributes.status = '{status}'")
        return self.search(" and ".join(clauses))

    def search(self, where: str = "", max_results: int | None = None) -> list:
        """MLflow runs of this experiment matching the filter ``where``, newest first, every page of them.

        ``max_results`` caps the count (None: all). MLflow answers at most ``SEARCH_PAGE`` runs per
        request, so a big store is read page by page rather than silently cut at the first page.
        """
        runs, token = [], None
        while max_results is None or len(runs) < max_results:
            want = SEARCH_PAGE if max_results is None else min(SEARCH_PAGE, max_results - len(runs))
            with gc_paused():
                page = self.client.search_runs([self.experiment_id], where, max_results=want,
                                               order_by=["attributes.start_time DESC"], page_token=token)
            runs += list(page)
            self._roots.update((r.info.run_id, r.info.artifact_uri) for r in page)
            token = page.token
            if not token:
                break
        return runs

    def list_runs(self, max_results: int | None = None, group: str | None = None) -> pd.DataFrame:
        """One row per run (only ``group``'s, when given), newest first, with the columns in ``RUN_COLUMNS``.

        ``max_results`` keeps the newest ones (None: every run, however many pages that takes).
        """
        where = f"tags.group = {_quote_value(group)}" if group is not None else ""
        return runs_frame([run_row(r) for r in self.search(where, max_results)])

    def history(self, run_id: str) -> pd.DataFrame:
        """Per-epoch metrics: ``epoch`` plus ``HISTORY_METRICS`` columns (last value per epoch)."""
        frames = {}
        for key in HISTORY_METRICS:
            hist = self.client.get_metric_history(run_id, key)
            if hist:
                frames[key] = pd.Series({m.step: m.value for m in sorted(hist, key=lambda m: m.timestamp)})
        if not frames:
            return pd.DataFrame(columns=["epoch", *HISTORY_METRICS])
        df = pd.DataFrame(frames).sort_index()
        df.index.name = "epoch"
        return df.reset_index().reindex(columns=["epoch", *HISTORY_METRICS])

    def _artifact_path(self, run_id: str, name: str) -> Path | None:
        from urllib.parse import unquote, urlparse

        root = self._roots.get(run_id) or self.get(run_id).info.artifact_uri
        # By scheme, not by "://": a tracking server's proxied root is "mlflow-artifacts:/1/<run>/artifacts".
        scheme = urlparse(root).scheme
        if scheme in ("", "file"):
            # Local store: read in place rather than copying (models are ~100 MB).
            local = Path(unquote(urlparse(root).path) if scheme == "file" else root) / name
            return local if local.exists() else None
        from mlflow.artifacts import download_artifacts

        cache = artifacts_dir() / "cache" / "runs" / run_id
        if (cache / name).exists():
            return cache / name
        try:
            return Path(download_artifacts(run_id=run_id, artifact_path=name, dst_path=str(cache),
                                           tracking_uri=self.uri))
        except Exception:
            return None

    def read_json(self, run_id: str, name: str) -> Any | None:
        path = self._artifact_path(run_id, name)
        return json.loads(path.read_text()) if path else None

    def config(self, run_id: str) -> RunConfig:
        """The resolved config the run was trained with."""
        d = self.read_json(run_id, "config.json")
        if d is None:
            raise RunNotFound(f"Run {run_id!r} has no config.json")
        return RunConfig.from_dict(d)

    def report(self, run_id: str) -> dict | None:
        """The test report (see ``core.train.evaluation.evaluate``), or None before evaluation."""
        return self.read_json(run_id, "report.json")

    def predictions(self, run_id: str) -> dict[str, np.ndarray] | None:
        """Per-sample ``y_true``, ``y_pred``, ``probs`` on the test split."""
        path = self._artifact_path(run_id, "predictions.npz")
        if path is None:
            return None
        with np.load(path) as z:
            return {k: z[k] for k in z.files}

    def model_path(self, run_id: str) -> Path | None:
        """Local path of the run's saved model (downloaded once into the cache)."""
        return self._artifact_path(run_id, "model/model.keras")

    def load_model(self, run_id: str):
        """The trained Keras model of a finished run (from this store only)."""
        path = self.model_path(run_id)
        if path is None:
            raise RunNotFound(f"Run {run_id!r} has no saved model (not finished, or failed)")
        return _load_keras(str(path), path.stat().st_mtime)


_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = True


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while the block runs (process-wide; nests across threads).

    An MLflow search builds one SQLAlchemy object per tag, param and metric of every run (about 80
    per run here), and each allocation burst sets off collections that walk the whole heap of a
    dashboard server: for a big store, most of the read's time. Nothing built here is cyclic garbage,
    so collecting is merely postponed to the end of the block.
    """
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


def run_row(r) -> dict[str, Any]:
    """One MLflow run as a row of the runs table (``RUN_COLUMNS``)."""
    t, m, p = r.data.tags, r.data.metrics, r.data.params
    return {
        "run_id": r.info.run_id, "label": t.get("label", r.info.run_name), "variant": t.get("variant", ""),
        "arch": t.get("arch", ""), "dataset": t.get("dataset", ""), "status": r.info.status,
        # "run" (training), "evaluation", "ga-individual" (scored on validation), "ga-best".
        "kind": t.get("kind", "run"), "group": t.get("group", ""),
        "start_time": pd.to_datetime(r.info.start_time, unit="ms", utc=True) if r.info.start_time else pd.NaT,
        "end_time": pd.to_datetime(r.info.end_time, unit="ms", utc=True) if r.info.end_time else pd.NaT,
        "epochs": int(p["train.epochs"]) if "train.epochs" in p else None,
        "epochs_done": int(t.get("epochs_done", 0)),
        "test_accuracy": m.get("test_accuracy"), "test_macro_f1": m.get("test_macro_f1"),
        "test_loss": m.get("test_loss"), "best_val_accuracy": m.get("best_val_accuracy"),
        "params_total": m.get("params_total"), "train_time_s": m.get("train_time_s"),
        "images_per_sec": m.get("mean_images_per_sec"), "error": t.get("error", ""),
        "data_warnings": t.get("dataset.warnings", ""),
        "seed": int(p["train.seed"]) if "train.seed" in p else None,
        "repeat_key": repeat_key(p, t.get("kind", "run")),
        **{k: m.get(k) for k in ("train_time_per_epoch_s", "train_flops", "params_trainable",
                                 "latency_ms_per_face")},
        "device": t.get("device", ""),
    }


def runs_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows of ``run_row`` as the runs table, in the order given."""
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


@lru_cache(maxsize=8)
def _load_keras(path: str, mtime: float):
    import keras

    # safe_mode stays on: our models have no Lambda layers, and files come only from our store.
    return keras.models.load_model(path, compile=False)


def repeat_key(params: dict[str, str], kind: str = "run") -> str:
    """Equal for runs of one kind whose params differ at most in ``REPEAT_FREE_PARAMS``: repeats
    of one configuration with different seeds."""
    same = sorted((k, v) for k, v in params.items() if k not in REPEAT_FREE_PARAMS)
    return hashlib.sha256(json.dumps([kind, same]).encode()).hexdigest()[:12]


def _quote_key(key: str) -> str:
    # Backticks let a filter name tags with dots or dashes ("dataset.fingerprint"); the
    # MLflow parser has no escape for a backtick inside them.
    if not isinstance(key, str) or not key or "`" in key:
        raise ValueError(f"tag name: expected a non-empty string without backticks. Received: {key!r}")
    return f"`{key}`"


def _quote_value(value: str) -> str:
    # MLflow strips the outer quotes and does not unescape inside them, so the value is
    # wrapped in whichever quote character it does not contain.
    value = str(value)
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ValueError(f"tag value: MLflow filters cannot match a value with both quote characters. Received: {value!r}")


def environment() -> dict[str, str]:
    """Package versions and device, saved with every run."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("tensorflow", "keras", "numpy", "mlflow", "scikit-learn", "opencv-python-headless"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def _json_default(o: Any):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (Path, io.IOBase)):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
