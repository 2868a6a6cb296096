"""Cached reads of the run store: the runs table, curves, reports and predictions, and what the
Compare page derives from them (results table, significance, misclassified images).

Finished runs are immutable, so their data is cached for good; the runs table is shared by every
session and keyed on the store's state (``core.store.RunTable``); curves of a run in progress are
cached for ``LIVE_TTL`` seconds.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core.configs import RunConfig, profiles
from core.data import datasets
from core.data.dataset import DatasetError
from core.store import RunNotFound, RunStore, RunTable
from core.train import evaluation

LIVE_TTL = 3  # seconds: curves of a running job refresh at the polling rate
KIND_NOTES = {"ga-individual": " · GA individual, scored on validation", "evaluation": " · re-evaluation"}


@st.cache_resource
def store() -> RunStore:
    return RunStore()


@st.cache_resource
def _run_table() -> RunTable:
    # One per server: every session reads the same table, refreshed at most once a second by
    # whichever session asks first, and only for what can have changed (see RunTable).
    return RunTable(store(), persist=True)


def runs() -> pd.DataFrame:
    """All runs, newest first; shared by every session, rebuilt only when the store's runs changed."""
    return _runs_at(_run_table().refresh())


@st.cache_data(max_entries=2, show_spinner=False)
def _runs_at(key: str) -> pd.DataFrame:
    # Keyed on the table's state (RunTable.refresh), not on time: a page polling every two seconds
    # gets the cached frame until a run starts, logs an epoch or finishes.
    return _run_table().table()


def runs_key() -> str:
    """A key that changes exactly when the runs table does (a run starts, logs an epoch or finishes):
    what is derived from several runs is cached under it, for every session at once."""
    return _run_table().refresh()


def forget_runs() -> None:
    """Ask the store again at the next ``runs()``, however recent the last look (this process changed it)."""
    _run_table().invalidate()



def _finished(run_id: str) -> bool:
    # A set lookup, not a copy of the whole runs table: pages ask this once per run shown.
    table = _run_table()
    table.refresh()
    return table.is_finished(run_id)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def _history_live(run_id: str) -> pd.DataFrame:
    return store().history(run_id)


@st.cache_data(show_spinner=False)
def _history_final(run_id: str) -> pd.DataFrame:
    return store().history(run_id)


def history(run_id: str) -> pd.DataFrame:
    """Per-epoch metrics; cached for good once the run has finished."""
    return _history_final(run_id) if _finished(run_id) else _history_live(run_id)


@st.cache_data(show_spinner=False)
def report(run_id: str) -> dict | None:
    return store().report(run_id)


@st.cache_data(show_spinner=False)
def predictions(run_id: str) -> dict[str, np.ndarray] | None:
    return store().predictions(run_id)


@st.cache_data(show_spinner=False)
def run_config(run_id: str) -> dict:
    return store().config(run_id).to_dict()


def run_labels(table: pd.DataFrame) -> dict[str, str]:
    """Readable unique labels: ``arch/variant · dataset · short id``, plus what kind of run it is."""
    kinds = table["kind"] if "kind" in table else pd.Series("run", index=table.index)
    return {r.run_id: f"{r.label} · {r.dataset} · {r.run_id[:6]}{KIND_NOTES.get(k, '')}"
            for r, k in zip(table.itertuples(), kinds)}


def results_table(run_ids: list[str]) -> pd.DataFrame:
    """The Compare table: one row per run with test metrics, per-class F1, cost and speed."""
    table = runs().set_index("run_id")
    labels = run_labels(table.reset_index())
    rows = []
    for rid in run_ids:
        r = table.loc[rid]
        rep = report(rid) or {}
        ci = rep.get("accuracy_ci") or [math.nan, math.nan]
        row = {
            "run": labels[rid], "status": r.status, "dataset": r.dataset,
            "test accuracy": r.test_accuracy, "CI low": ci[0], "CI high": ci[1],
            "macro-F1": r.test_macro_f1, "best val accuracy": r.best_val_accuracy,
            "profile": run_config(rid)["train"]["profile"],
            "parameters (M)": (r.params_total or math.nan) / 1e6,
        }
        hist = history(rid)
        row["epochs"] = len(hist)
        row["epoch time (s)"] = hist.epoch_time.mean() if len(hist) else math.nan
        row["train images/s"] = hist.images_per_sec.mean() if len(hist) else math.nan
        row["total time (s)"] = r.train_time_s
        if rep.get("tta"):  # beside plain accuracy, never instead of it
            row[f"test accuracy, {rep['tta']['mode']} TTA"] = rep["tta"]["accuracy"]
        for name, f1 in zip(rep.get("class_names", []), rep.get("per_class", {}).get("f1", [])):
            row[f"F1 {name}"] = f1
        row["run_id"] = rid
        rows.append(row)
    return pd.DataFrame(rows)


def protocol_table(run_ids: list[str]) -> pd.DataFrame:
    """The training protocol (profile values) of each run, read from its stored config."""
    labels = run_labels(runs())
    return pd.DataFrame([{"run": labels[r], **profiles.protocol(RunConfig.from_dict(run_config(r)))}
                         for r in run_ids])


@st.cache_data(show_spinner=False)
def _split_of(run_id: str) -> str:
    return store().get(run_id).data.tags.get("dataset.split") or "not recorded"


def measured_on(run_ids: list[str]) -> str:
    """What the test numbers of these runs were measured on, in words: test images per dataset and, where
    a run capped evaluation (``max_eval``, e.g. the quick profile), how many of the split's images that is;
    and the profile, epochs and input size they were trained with."""
    from dashboard.services.data import dataset_sizes  # here: data's cached loaders are only needed for this

    seen: dict[tuple[str, int, int | None], None] = {}
    protocols: dict[tuple[str, int, int], None] = {}
    for rid in run_ids:
        rep = report(rid) or {}
        if not rep.get("confusion_matrix"):
            continue
        cfg = RunConfig.from_dict(run_config(rid))
        seen[(cfg.data.dataset, int(np.sum(rep["confusion_matrix"])), cfg.data.max_eval)] = None
        protocols[(cfg.train.profile, cfg.train.epochs, cfg.model.input_size)] = None
    parts = []
    for dataset, n, cap in seen:
        total = dataset_sizes(dataset).get("test", 0)
        parts.append(f"{n} test images of {dataset}" + (
            f" ({n} of its {total}: evaluation capped at {cap} images per split)" if cap and total > n else ""))
    trained = " or ".join(f"the {p} profile ({e} epochs at {px} px)" for p, e, px in protocols)
    return "; ".join(parts) + (f", trained with {trained}" if trained else "")


def split_warning(run_ids: list[str]) -> str | None:
    """One line when these runs' datasets were split differently (None when they agree)."""
    splits = {_split_of(r) for r in run_ids}
    if len(splits) < 2:
        return None
    return ("These runs used different train/validation/test splits, so their numbers are not measured on "
            "the same images: " + " | ".join(sorted(splits)))


def significance(run_a: str, run_b: str, names: tuple[str, str]) -> tuple[dict, str] | None:
    """McNemar between two runs scored on the same test images, with a plain-words verdict.

    Returns None when the runs were not evaluated on the same test set.
    """
    pa, pb = predictions(run_a), predictions(run_b)
    if pa is None or pb is None or len(pa["y_true"]) != len(pb["y_true"]) \
            or not np.array_equal(pa["y_true"], pb["y_true"]):
        return None
    result = evaluation.mcnemar(pa["y_true"], pa["y_pred"], pb["y_pred"])
    return result, evaluation.describe_mcnemar(*names, result)


def _no_images(**extra: Any) -> dict[str, Any]:
    return {"images": np.zeros((0, 1, 1), np.uint8), "true": [], "pred": [], "confidence": [], **extra}


@st.cache_data(show_spinner=False, max_entries=8)
def misclassified(run_id: str, limit: int = 24) -> dict[str, Any]:
    """Wrongly classified test images of a finished run, most confident mistakes first."""
    cfg = RunConfig.from_dict(run_config(run_id))
    preds = predictions(run_id)
    if preds is None:
        return _no_images()
    ds = datasets.load_for_run(cfg.data)
    x, y = ds.splits["test"]
    if len(y) != len(preds["y_true"]) or not np.array_equal(y, preds["y_true"]):
        # The dataset changed on disk since the run: indices no longer line up.
        return _no_images(stale=True)
    wrong = np.flatnonzero(preds["y_pred"] != y)
    conf = preds["probs"][wrong, preds["y_pred"][wrong]]
    order = wrong[np.argsort(-conf)][:limit]
    names = ds.class_names
    return {"images": x[order], "true": [names[i] for i in y[order]],
            "pred": [names[i] for i in preds["y_pred"][order]],
            "confidence": preds["probs"][order, preds["y_pred"][order]].tolist()}


def misclassified_or_error(run_id: str, limit: int = 24) -> dict[str, Any]:
    """``misclassified``, or ``{"error": message}`` when the run's dataset can no longer be loaded."""
    try:
        return misclassified(run_id, limit)
    except (DatasetError, RunNotFound) as exc:
        return {"error": str(exc)}
