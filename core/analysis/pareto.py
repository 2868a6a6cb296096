"""Accuracy against cost: the non-dominated set, configurations summarised across seeds, and the
cheapest configuration that is as good as the best within its interval.

Numbers and tables only (the Compare page and the HTML report draw them). A point dominates
another when it is at least as good in every objective and strictly better in one; equal
points do not dominate each other, so ties stay on the front together.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

# Run-level cost columns of ``RunStore.list_runs`` a chart can put on its x axis, with their labels.
COSTS: dict[str, str] = {
    "train_time_s": "training time (s)",
    "train_flops": "training FLOPs",
    "latency_ms_per_face": "inference latency (ms per face)",
    "params_total": "parameters",
}
# The noun "X reaches the best accuracy's interval at N% of its ..." uses for each cost.
COST_NOUNS: dict[str, str] = {"train_time_s": "training time", "train_flops": "training FLOPs",
                              "latency_ms_per_face": "inference latency", "params_total": "parameters"}


def non_dominated(maximise: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of ``maximise`` (n points x k objectives, larger is better) that no
    other row dominates. Rows with a NaN are never on the front and dominate nothing."""
    points = np.asarray(maximise, dtype=float)
    if points.ndim != 2:
        raise ValueError(f"maximise: expected a 2-D array (points x objectives). Received shape {points.shape}")
    valid = ~np.isnan(points).any(axis=1)
    p = points[valid]
    # dominated_by[i, j]: row j is >= row i everywhere and > somewhere.
    ge = (p[None, :, :] >= p[:, None, :]).all(axis=2)
    gt = (p[None, :, :] > p[:, None, :]).any(axis=2)
    mask = np.zeros(len(points), dtype=bool)
    mask[np.flatnonzero(valid)] = ~(ge & gt).any(axis=1)
    return mask


def accuracy_cost_front(accuracy, cost) -> np.ndarray:
    """Mask of the points no other point beats on accuracy (higher) and cost (lower) at once."""
    return non_dominated(np.column_stack([np.asarray(accuracy, float), -np.asarray(cost, float)]))


def summarise_configurations(runs: pd.DataFrame, intervals: dict[str, tuple[float, float]],
                             confidence: float = 0.95) -> pd.DataFrame:
    """One row per configuration of finished runs: test accuracy with its interval, and costs.

    A configuration is a dataset and a ``repeat_key`` (runs that differ at most in seed), named
    by its label, plus a short key where two configurations on one dataset share a label.
    ``runs`` has ``run_id, label, dataset, repeat_key, test_accuracy`` and the ``COSTS`` columns;
    ``intervals`` maps a run id to its bootstrap interval over test images. A configuration
    run with several seeds gets the mean and a Student-t interval across seeds; a single
    run keeps its bootstrap interval. Costs are means over the configuration's runs.
    Columns: configuration, dataset, n_runs, test_accuracy, ci_low, ci_high, interval, costs, run_ids.
    """
    from core.analysis.stats import mean_ci  # only here: searches read the front without loading SciPy

    rows = []
    groups = list(runs.groupby(["dataset", "repeat_key"], sort=False))
    labels = [(dataset, group.label.iloc[0]) for (dataset, _), group in groups]
    for ((dataset, key), group), name in zip(groups, labels):
        acc = group.test_accuracy.astype(float).to_numpy()
        n = len(acc)
        if n >= 2:
            ci = mean_ci(acc, confidence)
            low, high = ci["low"], ci["high"]
            how = f"t-interval across {n} seeds"
        else:
            low, high = intervals.get(group.run_id.iloc[0], (math.nan, math.nan))
            how = "bootstrap over test images"
        label = name[1] if labels.count(name) == 1 else f"{name[1]} · {key[:4]}"
        rows.append({"configuration": label, "dataset": dataset, "n_runs": n, "test_accuracy": float(acc.mean()),
                     "ci_low": float(low), "ci_high": float(high), "interval": how,
                     **{c: float(pd.to_numeric(group[c], errors="coerce").mean()) if c in group else math.nan
                        for c in COSTS},
                     "run_ids": list(group.run_id)})
    return pd.DataFrame(rows, columns=["configuration", "dataset", "n_runs", "test_accuracy", "ci_low", "ci_high",
                                       "interval", *COSTS, "run_ids"])


def cheapest_within_best(summary: pd.DataFrame, cost: str) -> dict | None:
    """The cheapest configuration whose accuracy lies within the best configuration's interval.

    Returns ``{configuration, best, fraction, sentence}`` (``fraction``: its cost over the
    best's), or None when no configuration has both an accuracy and this cost.
    """
    usable = summary.dropna(subset=["test_accuracy", cost])
    if usable.empty:
        return None
    best = usable.loc[usable.test_accuracy.idxmax()]
    floor = best.ci_low if np.isfinite(best.ci_low) else best.test_accuracy
    within = usable[usable.test_accuracy >= floor]
    cheapest = within.loc[within[cost].idxmin()]
    fraction = float(cheapest[cost] / best[cost]) if best[cost] > 0 else math.nan
    noun = COST_NOUNS.get(cost, cost)
    interval = (f"{best.test_accuracy:.1%}, 95% CI [{best.ci_low:.1%}, {best.ci_high:.1%}]"
                if np.isfinite(best.ci_low) else f"{best.test_accuracy:.1%}")
    if cheapest.configuration == best.configuration:
        sentence = (f"{best.configuration} has the best test accuracy ({interval}) and nothing within its interval "
                    f"costs less {noun}.")
    else:
        sentence = (f"{cheapest.configuration} reaches the best accuracy's interval at {fraction:.0%} of its {noun} "
                    f"({cheapest.test_accuracy:.1%} against {best.configuration}'s {interval}).")
    return {"configuration": cheapest.configuration, "best": best.configuration, "fraction": fraction,
            "sentence": sentence}
