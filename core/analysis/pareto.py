"""Accuracy against cost: the non-dominated set, configurations summarised across seeds, and the
cheapest configuration that is as good as the best within its interval.

Numbers and tables only (the Compare page and the HTML report draw them). A point dominates
another when it is at least as good in every objective and strictly better in one; equal
points do not dominate each other, so ties stay on the front together.

Across seeds a difference counts only when it is resolved (``resolved_front``): the two
95% intervals are apart, or the cost is deterministic (FLOPs and parameters are the same for
every seed of a configuration). Wall-clock time and latency vary from run to run, so two
configurations 1% apart in training time with overlapping intervals are tied, not a trade-off.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from core.analysis.units import format_cost

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
# Costs that a configuration's seeds share exactly (they follow from the architecture, input size and
# schedule): any difference between two configurations is real. The others are measured and noisy.
DETERMINISTIC_COSTS = frozenset({"train_flops", "params_total"})


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


def _interval(values: np.ndarray, cost: str, confidence: float) -> tuple[float, float]:
    """A cost's interval across a configuration's runs: exact for a deterministic cost, a t-interval
    for a measured one with two or more runs, NaN (unknown spread) for a measured one run once."""
    from core.analysis.stats import mean_ci

    values = values[np.isfinite(values)]
    if not len(values):
        return math.nan, math.nan
    if cost in DETERMINISTIC_COSTS:
        return float(values.min()), float(values.max())
    if len(values) < 2:
        return math.nan, math.nan
    ci = mean_ci(values, confidence)
    return ci["low"], ci["high"]


def summarise_configurations(runs: pd.DataFrame, intervals: dict[str, tuple[float, float]],
                             confidence: float = 0.95) -> pd.DataFrame:
    """One row per configuration of finished runs: test accuracy with its interval, and costs with theirs.

    A configuration is a dataset and a ``repeat_key`` (runs that differ at most in seed), named
    by its label, plus a short key where two configurations on one dataset share a label.
    ``runs`` has ``run_id, label, dataset, repeat_key, test_accuracy`` and the ``COSTS`` columns;
    ``intervals`` maps a run id to its bootstrap interval over test images. A configuration
    run with several seeds gets the mean and a Student-t interval across seeds; a single
    run keeps its bootstrap interval. Costs are means over the configuration's runs, with
    ``{cost}_low``/``{cost}_high``: a t-interval across seeds for measured costs (NaN with one
    run), the exact value for ``DETERMINISTIC_COSTS``.
    Columns: configuration, dataset, n_runs, test_accuracy, ci_low, ci_high, interval, costs and
    their intervals, run_ids.
    """
    from core.analysis.stats import mean_ci  # only here: searches read the front without loading SciPy

    rows = []
    groups = list(runs.groupby(["dataset", "repeat_key"], sort=False))
    labels = [(dataset, group.label.iloc[0]) for (dataset, _), group in groups]
    cost_columns = [name for c in COSTS for name in (c, f"{c}_low", f"{c}_high")]
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
        costs = {}
        for c in COSTS:
            values = pd.to_numeric(group[c], errors="coerce").to_numpy(float) if c in group else np.array([])
            finite = values[np.isfinite(values)]
            c_low, c_high = _interval(values, c, confidence)
            costs.update({c: float(finite.mean()) if len(finite) else math.nan, f"{c}_low": c_low,
                          f"{c}_high": c_high})
        rows.append({"configuration": label, "dataset": dataset, "n_runs": n, "test_accuracy": float(acc.mean()),
                     "ci_low": float(low), "ci_high": float(high), "interval": how, **costs,
                     "run_ids": list(group.run_id)})
    return pd.DataFrame(rows, columns=["configuration", "dataset", "n_runs", "test_accuracy", "ci_low", "ci_high",
                                       "interval", *cost_columns, "run_ids"])


def _accuracy_order(a: pd.Series, b: pd.Series) -> int:
    """+1 when ``a`` is resolvably more accurate than ``b`` (intervals apart), -1 when less, 0 when unresolved."""
    if not (np.isfinite(a.ci_low) and np.isfinite(b.ci_low)):
        return 0
    return 1 if a.ci_low > b.ci_high else -1 if b.ci_low > a.ci_high else 0


def _cost_order(a: pd.Series, b: pd.Series, cost: str) -> int:
    """+1 when ``a`` is resolvably cheaper than ``b``, -1 when dearer, 0 when unresolved: a deterministic
    cost is compared as it is, a measured one only by intervals across seeds (none with a single run)."""
    if cost in DETERMINISTIC_COSTS:
        return int(np.sign(b[cost] - a[cost]))
    lows, highs = (a[f"{cost}_low"], b[f"{cost}_low"]), (a[f"{cost}_high"], b[f"{cost}_high"])
    if not np.isfinite([*lows, *highs]).all():
        return 0
    return 1 if highs[0] < lows[1] else -1 if highs[1] < lows[0] else 0


def resolved_front(summary: pd.DataFrame, cost: str) -> pd.DataFrame:
    """Dominance counted only on resolved differences: per configuration ``front`` (no other is resolvably
    better on one axis and not resolvably worse on the other), ``tied_with`` (the other front members it
    cannot be told apart from on either axis) and ``dominated_by`` (who dominates it, empty on the front).

    On the front, two members are then either a real trade-off (one resolvably cheaper, the other
    resolvably more accurate) or a tie (neither axis resolved). Rows without the cost are never on it.
    """
    rows = [row for _, row in summary.iterrows()]
    usable = [np.isfinite(r.test_accuracy) and np.isfinite(r[cost]) for r in rows]
    dominated_by: list[list[str]] = [[] for _ in rows]
    for i, a in enumerate(rows):
        for j, b in enumerate(rows):
            if i == j or not (usable[i] and usable[j]):
                continue
            acc, cheap = _accuracy_order(a, b), _cost_order(a, b, cost)
            if min(acc, cheap) >= 0 and max(acc, cheap) > 0:
                dominated_by[j].append(a.configuration)
    front = [usable[i] and not dominated_by[i] for i in range(len(rows))]
    tied = [[b.configuration for j, b in enumerate(rows) if j != i and front[j]
             and _accuracy_order(a, b) == 0 and _cost_order(a, b, cost) == 0] if front[i] else []
            for i, a in enumerate(rows)]
    return pd.DataFrame({"front": front, "tied_with": tied, "dominated_by": dominated_by}, index=summary.index)


def cheapest_within_best(summary: pd.DataFrame, cost: str) -> dict | None:
    """The cheapest configuration whose accuracy lies within the best configuration's interval.

    Returns ``{configuration, best, fraction, resolved, sentence}`` (``fraction``: its cost over the
    best's; ``resolved``: whether that saving is resolved, see ``resolved_front``), or None when no
    configuration has both an accuracy and this cost. The sentence says when the saving is a tie.
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
    resolved = cheapest.configuration == best.configuration or _cost_order(cheapest, best, cost) > 0
    if cheapest.configuration == best.configuration:
        sentence = (f"{best.configuration} has the best test accuracy ({interval}) and nothing within its interval "
                    f"costs less {noun}.")
    elif resolved:
        sentence = (f"{cheapest.configuration} reaches the best accuracy's interval at {fraction:.0%} of its {noun} "
                    f"({cheapest.test_accuracy:.1%} against {best.configuration}'s {interval}; "
                    f"{format_cost(cost, cheapest[cost])} against {format_cost(cost, best[cost])}).")
    else:
        why = (f"their {noun} intervals across seeds overlap" if cheapest.n_runs >= 2 and best.n_runs >= 2
               else f"a configuration run with one seed has no interval on its {noun}")
        sentence = (f"{cheapest.configuration} and {best.configuration} are tied: {cheapest.configuration}'s "
                    f"accuracy ({cheapest.test_accuracy:.1%}) lies within {best.configuration}'s interval "
                    f"({interval}), and its {noun} ({format_cost(cost, cheapest[cost])} against "
                    f"{format_cost(cost, best[cost])}, {fraction:.0%}) is not resolved: {why}. Run more seeds "
                    "to tell them apart.")
    return {"configuration": cheapest.configuration, "best": best.configuration, "fraction": fraction,
            "resolved": bool(resolved), "sentence": sentence}


def ties_sentence(summary: pd.DataFrame, front: pd.DataFrame, cost: str) -> str:
    """One sentence naming the front's ties (drawn as ties: neither axis resolved), or "" without ties."""
    pairs = sorted({tuple(sorted((a, b))) for a, others in zip(summary.configuration, front.tied_with)
                    for b in others})
    if not pairs:
        return ""
    noun = COST_NOUNS.get(cost, cost)
    named = "; ".join(f"{a} and {b}" for a, b in pairs)
    return (f"Tied on the front (open markers): {named}. Their accuracy intervals overlap and their {noun} "
            "is not resolved (overlapping intervals across seeds, or one run without an interval), so neither "
            "is cheaper or more accurate beyond the spread of the runs.")
