"""Repeats of one configuration with different seeds, as the Compare page groups them: per-seed and
aggregated results, curves with bands, averaged confusion matrices, paired tests across seeds,
and queuing more seeds of a grid. The statistics are ``core.stats``'."""
from __future__ import annotations

import uuid
from dataclasses import replace

import numpy as np
import pandas as pd
import streamlit as st

from core.analysis import comparison, stats
from core.configs import RunConfig, presets
from core.train import evaluation
from dashboard.services.jobs import submit
from dashboard.services.runstore import history, predictions, report, run_config, runs, runs_key

# What the grouped view derives from many runs (bands, tests) is computed once per state of the store and
# shared by every session: eight people opening the same comparison pay for it once, not eight times.
# ``state`` (the runs table's key) is an argument only so that the cache misses when a run changes.
_shared = st.cache_data(max_entries=64, show_spinner=False)

SEED_SUMMARIES = comparison.SUMMARIES
SEED_METRICS = comparison.METRICS
with_summary = comparison.with_summary
aggregate_table = comparison.aggregate
paired_test = comparison.paired_test


def repeat_groups(run_ids: list[str]) -> dict[str, list[str]]:
    """Selected runs grouped by configuration (runs differing at most in seed and grid), in selection order."""
    return comparison.repeat_groups(runs().set_index("run_id").loc[run_ids].reset_index())


def has_repeats(run_ids: list[str]) -> bool:
    """True when two selected runs are the same configuration with different seeds."""
    table = runs().set_index("run_id").loc[run_ids]
    return bool((table.groupby("repeat_key").seed.nunique() > 1).any())


def per_seed_table(groups: dict[str, list[str]]) -> pd.DataFrame:
    """One row per finished run with a test report (``core.analysis.comparison.PER_SEED_COLUMNS``)."""
    return _per_seed_table(groups, runs_key())


@_shared
def _per_seed_table(groups: dict[str, list[str]], state: str) -> pd.DataFrame:
    table = runs().set_index("run_id")
    finished = set(table.index[table.status == "FINISHED"])
    return comparison.per_seed_table(groups, table.seed.to_dict(), lambda r: report(r) if r in finished else None,
                                     history)


def seed_bands(groups: dict[str, list[str]], metric: str, x: str = "epoch", smoothing: float = 0.0) -> dict[str, dict]:
    """Per configuration: training and validation ``metric`` as a mean with a 95% band across seeds
    (``core.analysis.stats.curve_band``), smoothed and raw, plus each seed's smoothed curve."""
    return _seed_bands(groups, metric, x, smoothing, runs_key())


@_shared
def _seed_bands(groups: dict[str, list[str]], metric: str, x: str, smoothing: float, state: str) -> dict[str, dict]:
    out = {}
    for name, rids in groups.items():
        hists = [history(r) for r in rids]
        hists = [h for h in hists if len(h)]
        if not hists:
            continue
        entry = {}
        for split, column in (("train", metric), ("val", f"val_{metric}")):
            entry[split] = stats.curve_band(hists, column, x, smoothing)
            entry[f"{split}_raw"] = stats.curve_band(hists, column, x)
            entry[f"{split}_seeds"] = [stats.curve_band([h], column, x, smoothing) for h in hists]
        out[name] = entry
    return out


def mean_confusion(run_ids: list[str]) -> tuple[np.ndarray, list[str]]:
    """The confusion matrix averaged over seeds (counts; the split is the same for every seed, so
    row-normalising the mean equals the mean of the row-normalised matrices) and the class names."""
    reps = [report(r) for r in run_ids]
    reps = [r for r in reps if r]
    return np.mean([np.asarray(r["confusion_matrix"], float) for r in reps], axis=0), reps[0]["class_names"]


def per_class_f1(run_ids: list[str]) -> dict:
    """Per-class F1 across seeds: class names, mean and 95% t-interval per class."""
    reps = [r for r in (report(rid) for rid in run_ids) if r]
    ci = stats.mean_ci(np.array([r["per_class"]["f1"] for r in reps]))
    return {"class_names": reps[0]["class_names"], "mean": ci["mean"], "low": ci["low"], "high": ci["high"],
            "n": len(reps)}




@_shared
def pairs_table(per_seed: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Every pair of configurations with the paired t-test p-value Holm-corrected over all pairs."""
    return stats.all_pairs(comparison.seed_values(per_seed, metric))


@_shared
def pair_verdicts(per_seed: pd.DataFrame, metric: str) -> list[str]:
    """For every pair of configurations, the paired tests' verdict in words (``comparison.verdicts``)."""
    return comparison.verdicts(per_seed, metric)


def seed_mcnemar(per_seed: pd.DataFrame, name_a: str, name_b: str) -> pd.DataFrame:
    """McNemar per shared seed: the two runs of that seed, image by image on the shared test split."""
    runs_a = per_seed[per_seed.configuration == name_a].set_index("seed").run_id.to_dict()
    runs_b = per_seed[per_seed.configuration == name_b].set_index("seed").run_id.to_dict()
    rows = []
    for seed in sorted(set(runs_a) & set(runs_b)):
        pa, pb = predictions(runs_a[seed]), predictions(runs_b[seed])
        if pa is None or pb is None or not np.array_equal(pa["y_true"], pb["y_true"]):
            continue
        r = evaluation.mcnemar(pa["y_true"], pa["y_pred"], pb["y_pred"])
        rows.append({"seed": int(seed), "A right, B wrong": r["b"], "A wrong, B right": r["c"],
                     "p (McNemar)": r["p_value"], "method": r["method"]})
    return pd.DataFrame(rows, columns=["seed", "A right, B wrong", "A wrong, B right", "p (McNemar)", "method"])


def more_seeds_plan(run_ids: list[str], n: int) -> tuple[list[RunConfig], str]:
    """Configs repeating the selected runs' configurations with ``n`` new seeds each (seeds after the
    largest used), same settings otherwise, in the runs' grid (a new one if they span several)."""
    configs = {}
    for rid in run_ids:
        cfg = RunConfig.from_dict(run_config(rid))
        configs.setdefault(replace(cfg, group="", train=replace(cfg.train, seed=0)), cfg)
    used = max(c.train.seed for c in configs.values())
    seeds = presets.seed_list([n], start=used + 1)
    groups = {c.group for c in configs.values()}
    group = groups.pop() if len(groups) == 1 and "" not in groups else f"seeds-{uuid.uuid4().hex[:6]}"
    plan = [replace(c, group=group, train=replace(c.train, seed=s)) for s in seeds for c in configs.values()]
    return plan, group


def queue_more_seeds(run_ids: list[str], n: int, key: str) -> tuple[list[int], str]:
    """Queue ``more_seeds_plan``; ``key`` makes a double click queue them once. Returns job ids and group."""
    plan, group = more_seeds_plan(run_ids, n)
    return submit(plan, group=group, key=key), group
