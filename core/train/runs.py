"""The run lifecycle: the only module that creates runs in the store.

Owns opening a run (its dataset identity computed here, once), resuming and closing it,
the checkpoint folder of a run in progress, scoring a model into its run (test report,
predictions, model file), evaluating a stored model on another dataset, and the error
text a failed run or job records. Training, jobs, the GA and the Ray fan-out all open
and close runs through these functions.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from core.configs import RunConfig, artifacts_dir
from core.data import datasets
from core.data.dataset import SKIPPED_NAMES_RECORDED, Dataset, DatasetError
from core.data.pipeline import make_pipeline
from core.store import RunStore
from core.train import evaluation, models, tta

log = logging.getLogger(__name__)


def dataset_identity(ds: Dataset) -> dict:
    """What a run records about its data: source, sizes, a content hash, skipped files and warnings."""
    counts = ds.counts().groupby("split")["count"].sum().to_dict()
    identity = {"name": ds.name, "source": ds.source, "fingerprint": ds.fingerprint(), "image_size": ds.image_size,
                "classes": ",".join(ds.class_names), "split": ds.split, **{f"n_{k}": v for k, v in counts.items()},
                "skipped": len(ds.skipped)}
    if ds.skipped:
        identity["skipped_files"] = ", ".join(ds.skipped[:SKIPPED_NAMES_RECORDED])
    warnings = ds.warnings()
    if warnings:
        identity["warnings"] = " | ".join(warnings)
    return identity


def open_run(cfg: RunConfig, ds: Dataset, *, store: RunStore | None = None,
             tags: Mapping[str, Any] | None = None) -> str:
    """Create a run for ``cfg`` trained or scored on ``ds``; returns its id."""
    store = store or RunStore()
    identity = dataset_identity(ds)
    if "warnings" in identity:
        log.warning("%s", identity["warnings"])
    return store.create_run(cfg, identity, {k: str(v) for k, v in (tags or {}).items()})


def resume_run(run_id: str, store: RunStore | None = None) -> None:
    """Mark an interrupted run as running again; it continues from its checkpoint."""
    (store or RunStore()).reopen(run_id)


def checkpoint_dir(run_id: str) -> Path:
    """Where a run's resumable state lives while it trains."""
    return artifacts_dir() / "checkpoints" / run_id


def close_run(run_id: str, status: str, error: str = "", store: RunStore | None = None) -> None:
    """Close a run FINISHED, FAILED or KILLED; a KILLED (cancelled) run is never resumed, so its checkpoint goes."""
    (store or RunStore()).finish(run_id, status, error=error or None)
    if status in ("FINISHED", "KILLED"):
        shutil.rmtree(checkpoint_dir(run_id), ignore_errors=True)


def close_runs(closing: list[tuple[str, str, str]]) -> None:
    """Close runs whose job ended outside the training loop (killed, given up): ``(run_id, status, error)``."""
    if not closing:
        return
    store = RunStore()
    for run_id, status, message in closing:
        try:
            close_run(run_id, status, message, store)
        except Exception as exc:  # the job's state is what matters; the run store may be unreachable
            log.warning("could not mark run %s %s: %s", run_id, status, exc)


def is_finished(run_id: str, store: RunStore | None = None) -> bool:
    """True when the run closed FINISHED (e.g. before its job row could say so)."""
    return (store or RunStore()).get(run_id).info.status == "FINISHED"


def describe_error(exc: BaseException) -> str:
    """The reason a run or job failed, in words a user can act on."""
    name, text = type(exc).__name__, str(exc)
    # tf.errors.ResourceExhaustedError is matched by name: this module never imports TensorFlow.
    if name == "ResourceExhaustedError" or isinstance(exc, MemoryError) or "out of memory" in text.lower():
        first = text.strip().splitlines()[0][:300] if text.strip() else name
        return (f"Out of memory: {first}. Lower the batch size (train.batch_size) or the input size "
                "(model.input_size), or wait until other jobs on this device finish.")
    if isinstance(exc, KeyError) and exc.args:  # KeyError's str() is the repr of its message
        text = str(exc.args[0])
    # WeightsMissingError, ConfigError, DatasetError, RunNotFound already say what to do.
    return f"{name}: {text}"[:2000]


def evaluate_and_log(model, cfg: RunConfig, ds: Dataset, run_id: str, store: RunStore,
                     keep_model: bool = True) -> dict:
    """Test-split report, per-sample predictions and (unless ``keep_model=False``) the model file."""
    x_test, y_test = ds.splits["test"]
    test_ds = make_pipeline(x_test, y_test, arch=cfg.model.arch, input_size=cfg.model.input_size,
                            num_classes=len(ds.class_names), batch_size=cfg.train.batch_size,
                            training=False)
    t0 = time.perf_counter()
    probs = evaluation.predict_probs(model, test_ds)
    eval_time = time.perf_counter() - t0
    report = evaluation.classification_report(y_test, probs, ds.class_names)
    y_pred = probs.argmax(axis=1)
    low, high = evaluation.bootstrap_ci(y_test, y_pred, seed=cfg.train.seed)
    report.update(accuracy_ci=[low, high], eval_images_per_sec=len(y_test) / max(eval_time, 1e-9))
    arrays, tta_summary = {}, {}
    if cfg.train.tta != "none":
        # Reported beside the plain numbers, never instead of them.
        arrays["probs_tta"] = tta.predict(model, test_ds, cfg.train.tta, plain=probs)
        tta_report = evaluation.classification_report(y_test, arrays["probs_tta"], ds.class_names)
        report["tta"] = {"mode": cfg.train.tta, "views": len(tta.views(cfg.train.tta)),
                         **{k: tta_report[k] for k in ("accuracy", "macro_f1", "loss")}}
        tta_summary = {"test_accuracy_tta": tta_report["accuracy"], "test_macro_f1_tta": tta_report["macro_f1"]}
    if keep_model:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.keras"
            model.save(path)
            report["model_size_mb"] = path.stat().st_size / 2**20
            store.log_file(run_id, path, "model")
    else:
        report["model_size_mb"] = 4 * models.count_params(model)["params_total"] / 2**20  # float32 weights
        store.set_tags(run_id, {"has_model": False})
    store.log_json(run_id, "report.json", report)
    store.log_arrays(run_id, "predictions.npz", y_true=y_test, y_pred=y_pred, probs=probs, **arrays)
    store.log_summary(run_id, {"test_accuracy": report["accuracy"], "test_macro_f1": report["macro_f1"],
                               "test_loss": report["loss"], "test_acc_ci_low": low, "test_acc_ci_high": high,
                               "model_size_mb": report["model_size_mb"], **tta_summary})
    return report


def record_evaluation(model, cfg: RunConfig, ds: Dataset, store: RunStore,
                      tags: Mapping[str, Any]) -> tuple[str, dict]:
    """Score ``model`` on ``ds``'s test split as a new evaluation run; ``(run_id, report)``."""
    run_id = open_run(cfg, ds, store=store, tags=tags)
    try:
        report = evaluate_and_log(model, cfg, ds, run_id, store)
    except BaseException as exc:
        close_run(run_id, "FAILED", describe_error(exc), store)
        raise
    close_run(run_id, "FINISHED", store=store)
    return run_id, report


def evaluate_stored(run_id: str, dataset: str, store: RunStore | None = None,
                    tags: Mapping[str, Any] | None = None) -> tuple[str, dict]:
    """Evaluate a stored run's model on another dataset's test split, recorded as a new run.

    Classes are matched by name, so a model trained on FER2013 can be scored on any
    folder dataset whose class folders map onto the same emotions. ``tags`` go on the new run.
    """
    store = store or RunStore()
    cfg = store.config(run_id)
    model = store.load_model(run_id)
    target = datasets.load_for_run(replace(cfg.data, dataset=dataset, max_train=None))
    ds = relabel(target, store.report(run_id)["class_names"], f"run {run_id}")
    new_cfg = replace(cfg, data=replace(cfg.data, dataset=dataset))
    return record_evaluation(model, new_cfg, ds, store,
                             {**(tags or {}), "evaluated_from": run_id, "kind": "evaluation"})


def relabel(target: Dataset, class_names, owner: str) -> Dataset:
    """``target`` with its test labels renumbered into a model's class order (matched by name)."""
    class_names = list(class_names)
    missing = [c for c in target.class_names if c not in class_names]
    if missing:
        raise DatasetError(f"{target.name}: classes {missing} are unknown to {owner} "
                           f"(it knows {class_names})")
    x, y = target.splits["test"]
    y = np.array([class_names.index(target.class_names[i]) for i in y], dtype=np.int64)
    return Dataset(target.name, target.source, tuple(class_names),
                   {"train": target.splits["train"], "val": target.splits["val"], "test": (x, y)},
                   split=target.split)


def summary(run_id: str, store: RunStore | None = None) -> dict:
    """The numbers a job records as its result: test accuracy, macro-F1, epochs done."""
    store = store or RunStore()
    report = store.report(run_id) or {}
    return {"run_id": run_id, "test_accuracy": report.get("accuracy"), "test_macro_f1": report.get("macro_f1"),
            "epochs_done": len(store.history(run_id))}


# The per-epoch values a job's progress and its worker's console quote for a finished epoch.
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def logged_epoch(run_id: str, epoch: int, store: RunStore | None = None) -> dict[str, float] | None:
    """The values ``run_id`` logged for ``epoch`` (1-based, ``EPOCH_METRICS``), or None if it has none.

    What a resumed job reports first: the epoch its run holds, not the live values the
    killed attempt was showing when it died.
    """
    hist = (store or RunStore()).history(run_id)
    row = hist[hist.epoch == epoch]
    if row.empty:
        return None
    values = row.iloc[-1]
    return {k: float(values[k]) for k in EPOCH_METRICS if k in values and values[k] == values[k]}
