"""A comparison's results across seeds, from the run store: runs grouped by configuration, one row
per seed, each configuration's mean with its interval, and the paired tests between configurations.

Shared by ``python -m core summary`` and the dashboard's Compare page; the statistics are
``core.stats``'.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from core.analysis import stats
from core.store import RunStore

SUMMARIES = ("final epoch", "best validation epoch")
# Per-seed metrics the paired tests compare, with the scale and unit their verdicts use.
METRICS = {"test accuracy": (100.0, " points"), "macro-F1": (1.0, ""), "validation accuracy": (100.0, " points")}
PER_SEED_COLUMNS = ["configuration", "seed", "run_id", "test accuracy", "macro-F1", "final val accuracy",
                    "best val accuracy", "best val epoch"]


def repeat_groups(table: pd.DataFrame) -> dict[str, list[str]]:
    """Runs of a runs table (``RunStore.list_runs`` rows) grouped by configuration, in table order:
    runs that differ at most in seed and grid (``repeat_key``). Named ``arch/variant · dataset``, plus
    a short key where two groups would share that name."""
    by_key: dict[str, list[str]] = {}
    first: dict[str, pd.Series] = {}
    for _, row in table.iterrows():
        by_key.setdefault(row.repeat_key, []).append(row.run_id)
        first.setdefault(row.repeat_key, row)
    names = {k: f"{r.label} · {r.dataset}" for k, r in first.items()}
    clash = {n for n in names.values() if list(names.values()).count(n) > 1}
    return {(f"{names[k]} · {k[:4]}" if names[k] in clash else names[k]): rids for k, rids in by_key.items()}


def per_seed_row(configuration: str, seed: int, run_id: str, report: dict, history: pd.DataFrame) -> dict:
    """One finished run as a row of ``PER_SEED_COLUMNS``: its test metrics and its validation accuracy at
    the final epoch and at its best validation epoch."""
    val = history["val_accuracy"].dropna() if "val_accuracy" in history else pd.Series(dtype=float)
    best = history.loc[val.idxmax()] if len(val) else None
    return {"configuration": configuration, "seed": int(seed), "run_id": run_id,
            "test accuracy": report["accuracy"], "macro-F1": report["macro_f1"],
            "final val accuracy": float(val.iloc[-1]) if len(val) else np.nan,
            "best val accuracy": float(best["val_accuracy"]) if best is not None else np.nan,
            "best val epoch": int(best["epoch"]) if best is not None else None}


def per_seed_table(groups: dict[str, list[str]], seeds: dict[str, int], report: Callable[[str], dict | None],
                   history: Callable[[str], pd.DataFrame]) -> pd.DataFrame:
    """``per_seed_row`` for every run of ``groups`` that has a test report (``report(run_id)``)."""
    rows = [per_seed_row(name, seeds[rid], rid, rep, history(rid))
            for name, rids in groups.items() for rid in rids if (rep := report(rid))]
    return pd.DataFrame(rows, columns=PER_SEED_COLUMNS)


def with_summary(per_seed: pd.DataFrame, summary: str) -> pd.DataFrame:
    """``per_seed`` with a ``validation accuracy`` column taken at the ``summary`` epoch (``SUMMARIES``)."""
    if summary not in SUMMARIES:
        raise ValueError(f"summary: expected one of {SUMMARIES}. Received: summary={summary!r}")
    column = "final val accuracy" if summary == "final epoch" else "best val accuracy"
    return per_seed.assign(**{"validation accuracy": per_seed[column]})


def aggregate(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Per configuration: its seeds, and each of ``METRICS``' mean with its 95% t-interval across seeds.

    Every metric here is a fraction, so its interval is clipped to [0, 1]: a t-interval over a few
    seeds can reach past the range (113% accuracy) where the metric itself cannot.
    """
    rows = []
    for name, g in per_seed.groupby("configuration", sort=False):
        row = {"configuration": name, "seeds": len(g), "seed list": ", ".join(map(str, sorted(g.seed)))}
        for metric in METRICS:
            if metric in g:
                ci = stats.mean_ci(g[metric].to_numpy())
                low, high = np.clip([ci["low"], ci["high"]], 0.0, 1.0)
                row.update({metric: ci["mean"], f"{metric} CI low": low, f"{metric} CI high": high})
        rows.append(row)
    return pd.DataFrame(rows)


def seed_values(per_seed: pd.DataFrame, metric: str) -> dict[str, dict[int, float]]:
    """``configuration -> {seed: metric}``: what the paired tests compare."""
    return {name: dict(zip(g.seed, g[metric])) for name, g in per_seed.groupby("configuration", sort=False)}


def paired_test(per_seed: pd.DataFrame, name_a: str, name_b: str, metric: str) -> tuple[dict, str]:
    """``core.analysis.stats.paired`` of two configurations on ``metric`` over their shared seeds, and its verdict."""
    values = seed_values(per_seed, metric)
    result = stats.paired(values[name_a], values[name_b])
    scale, unit = METRICS[metric]
    return result, stats.verdict(name_a, name_b, result, metric=metric, scale=scale, unit=unit)


def verdicts(per_seed: pd.DataFrame, metric: str) -> list[str]:
    """The verdict of every pair of configurations, in ``stats.all_pairs`` order."""
    names = list(dict.fromkeys(per_seed.configuration))
    return [paired_test(per_seed, a, b, metric)[1] for i, a in enumerate(names) for b in names[i + 1:]]


def group_summary(group: str, store: RunStore | None = None, summary: str = "final epoch",
                  metric: str = "test accuracy", kinds: Sequence[str] = ("run",)) -> dict:
    """A grid's results across seeds: ``per_seed``, ``aggregate``, ``pairs`` (Holm-corrected paired
    t-tests on ``metric``) and ``verdicts``. Raises KeyError when the store has no finished run in ``group``."""
    store = store or RunStore()
    table = store.list_runs(max_results=50_000, group=group)  # MLflow's largest page
    table = table[(table.status == "FINISHED") & table.kind.isin(kinds)]
    if table.empty:
        raise KeyError(f"No finished runs in group {group!r}; `python -m core runs` lists runs with their group")
    table = table.iloc[::-1]  # oldest first: the order the grid queued them
    groups = repeat_groups(table)
    per_seed = with_summary(per_seed_table(groups, dict(zip(table.run_id, table.seed)), store.report, store.history),
                            summary)
    return {"per_seed": per_seed, "aggregate": aggregate(per_seed),
            "pairs": stats.all_pairs(seed_values(per_seed, metric)), "verdicts": verdicts(per_seed, metric)}
