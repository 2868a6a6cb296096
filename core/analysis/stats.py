"""Across-seed statistics: is a configuration better, or did it draw a luckier seed?

A run's test accuracy mixes its configuration's effect with seed noise (initial weights,
data order, augmentation, dropout). Repeating each configuration with the same seeds on
the same split gives, per configuration, a mean with a t-interval and, per pair of
configurations, differences paired by seed: same seed, same split and data order, so the
pairing removes what the two share. Numbers only; the dashboard draws them.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 0.05
POWER = 0.8
MAX_SEEDS_ESTIMATE = 200  # beyond this the estimate says "more than": the difference is negligible


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> dict:
    """Mean with a two-sided t-interval across seeds (``scipy.stats.t``), along axis 0.

    ``values`` of shape (n,) gives floats, (n, k) arrays of k (per-class F1, per-epoch).
    With fewer than two finite values the interval is NaN: one seed has no spread to measure.
    """
    x = np.asarray(values, dtype=np.float64)
    n = np.sum(np.isfinite(x), axis=0)
    with warnings.catch_warnings():  # an epoch no seed reached is NaN, said once by the NaN itself
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(x, axis=0)
        sd = np.nanstd(x, axis=0, ddof=1)
        half = stats.t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1)) * sd / np.sqrt(n)
    half = np.where(n >= 2, half, np.nan)
    out = {"mean": mean, "low": mean - half, "high": mean + half, "sd": np.where(n >= 2, sd, np.nan), "n": n}
    if x.ndim == 1:
        return {k: int(v) if k == "n" else float(v) for k, v in out.items()}
    return out


def min_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p-value the exact Wilcoxon signed-rank test can give with n pairs:
    every difference on one side, probability 2 / 2**n (so n < 6 can never reach p < 0.05)."""
    return min(1.0, 2.0 / 2 ** n) if n > 0 else 1.0


def seeds_needed(d_z: float, alpha: float = ALPHA, power: float = POWER,
                 max_n: int = MAX_SEEDS_ESTIMATE) -> int | None:
    """Seeds a two-sided paired t-test needs to detect a standardised difference ``d_z`` with
    ``power`` (noncentral t, ``scipy.stats.nct``). An estimate: ``d_z`` is itself measured on few
    seeds. None when there is no difference to detect or more than ``max_n`` would be needed."""
    if not np.isfinite(d_z) or d_z == 0:
        return None
    for n in range(2, max_n + 1):
        df = n - 1
        crit = stats.t.ppf(1 - alpha / 2, df)
        nc = abs(d_z) * math.sqrt(n)
        if stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc) >= power:
            return n
    return None


def paired(a: Mapping[int, float], b: Mapping[int, float], confidence: float = CONFIDENCE) -> dict:
    """Compare two configurations on the seeds both ran: ``a`` and ``b`` map seed -> metric.

    Returns the per-seed differences (a - b), their mean with a t-interval, the paired t-test
    (``scipy.stats.ttest_rel``), the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``; None with
    a reason when it cannot be computed), Cohen's d_z (mean difference / its standard deviation),
    wins per side and, from d_z, the seeds a paired t-test would need (``seeds_needed``).
    """
    seeds = sorted(set(a) & set(b))
    xa = np.array([a[s] for s in seeds], dtype=np.float64)
    xb = np.array([b[s] for s in seeds], dtype=np.float64)
    diffs = xa - xb
    n = len(seeds)
    ci = mean_ci(diffs, confidence)
    out = {"seeds": seeds, "n": n, "diffs": diffs.tolist(), "mean_diff": ci["mean"], "low": ci["low"],
           "high": ci["high"], "wins_a": int(np.sum(diffs > 0)), "wins_b": int(np.sum(diffs < 0)),
           "ties": int(np.sum(diffs == 0)), "t_statistic": math.nan, "t_p": math.nan,
           "wilcoxon_statistic": math.nan, "wilcoxon_p": math.nan, "wilcoxon_note": "", "t_note": "", "d_z": math.nan,
           "min_wilcoxon_p": min_wilcoxon_p(int(np.sum(diffs != 0))), "seeds_needed": None}
    if n < 2:
        out["wilcoxon_note"] = out["t_note"] = "needs at least two seeds"
        return out
    sd = float(np.std(diffs, ddof=1))
    if sd > 0:
        t = stats.ttest_rel(xa, xb)
        out.update(t_statistic=float(t.statistic), t_p=float(t.pvalue), d_z=float(np.mean(diffs) / sd))
    elif np.all(diffs == 0):
        out.update(t_p=1.0, d_z=0.0)
    else:  # every seed moved by exactly the same amount: t and d_z divide by a zero spread
        out["t_note"] = "every seed gave the same difference, so there is no spread to divide by"
    nonzero = int(np.sum(diffs != 0))
    if nonzero == 0:
        out["wilcoxon_note"] = "every seed gave both the same value"
    else:
        w = stats.wilcoxon(xa, xb)
        out.update(wilcoxon_statistic=float(w.statistic), wilcoxon_p=float(w.pvalue))
        if out["min_wilcoxon_p"] >= ALPHA:
            out["wilcoxon_note"] = (f"with {nonzero} non-tied seeds it cannot reach p < {ALPHA} even if one "
                                    f"side wins every seed (smallest possible p = {out['min_wilcoxon_p']:.3g}); "
                                    "6 or more are needed")
    out["seeds_needed"] = seeds_needed(out["d_z"]) if np.isfinite(out["d_z"]) else None
    return out


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of p-values for testing all pairs at once (family-wise error).

    Written out because scipy has only Benjamini-Hochberg/Yekutieli (``false_discovery_control``,
    which controls the false discovery rate instead) and statsmodels is not a dependency: sort,
    multiply the i-th smallest by (m - i), keep the sequence non-decreasing, cap at 1.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    running = 0.0
    for rank, i in enumerate(finite[np.argsort(p[finite], kind="stable")]):
        running = max(running, (m - rank) * p[i])
        adjusted[i] = min(1.0, running)
    return adjusted


def all_pairs(values: Mapping[str, Mapping[int, float]], alpha: float = ALPHA) -> pd.DataFrame:
    """Every pair of configurations (``name -> {seed: metric}``): paired difference with its CI,
    paired t-test p-value and its Holm-adjusted value over all pairs, wins, the decision, and a
    ``note`` saying why a p-value could not be computed (empty when it was)."""
    rows = []
    for name_a, name_b in combinations(values, 2):
        r = paired(values[name_a], values[name_b])
        rows.append({"A": name_a, "B": name_b, "seeds": r["n"], "mean difference (A - B)": r["mean_diff"],
                     "CI low": r["low"], "CI high": r["high"], "A wins": r["wins_a"], "B wins": r["wins_b"],
                     "p (paired t)": r["t_p"], "note": r["t_note"]})
    table = pd.DataFrame(rows, columns=["A", "B", "seeds", "mean difference (A - B)", "CI low", "CI high",
                                        "A wins", "B wins", "p (paired t)", "note"])
    table["p (Holm)"] = holm(table["p (paired t)"].to_numpy()) if len(table) else []
    table["different"] = table["p (Holm)"] < alpha
    table["note"] = table.pop("note")  # last: it explains the p-values before it
    return table


def verdict(name_a: str, name_b: str, result: dict, metric: str = "test accuracy", scale: float = 100.0,
            unit: str = " points", alpha: float = ALPHA) -> str:
    """The paired comparison in one or two plain sentences, e.g. "A beat B in 5 of 5 seeds by
    3.1 points [1.2, 5.0] of test accuracy ...". ``scale`` and ``unit`` turn fractions into points."""
    n = result["n"]
    if n == 0:
        return f"{name_a} and {name_b} share no seed, so they cannot be compared seed by seed."
    if n < 2:
        return (f"{name_a} and {name_b} share one seed only: a single seed cannot separate two configurations, "
                "because the difference could be that seed's luck. Run more seeds.")
    diff, low, high = (result[k] * scale for k in ("mean_diff", "low", "high"))
    if result["mean_diff"] == 0 and result["ties"] == n:
        return f"{name_a} and {name_b} gave the same {metric} with every one of {n} seeds."
    if diff > 0:
        better, worse, wins, interval = name_a, name_b, result["wins_a"], (low, high)
    else:  # said from the winner's side: B - A = -(A - B)
        better, worse, wins, interval = name_b, name_a, result["wins_b"], (-high, -low)
    interval = f"[{interval[0]:.1f}, {interval[1]:.1f}]"
    head = (f"{better} beat {worse} in {wins} of {n} seeds by {abs(diff):.1f}{unit} {interval} of {metric} "
            f"(mean of the per-seed differences, 95% CI).")
    if len(set(result["diffs"])) == 1:
        return (f"{better} beat {worse} by exactly {abs(diff):.1f}{unit} of {metric} with every one of {n} seeds: "
                "no spread across seeds, so the difference is consistent (a t-test has no variance to work with).")
    p = result["t_p"]
    if np.isfinite(p) and p < alpha:
        return head + f" The difference is real at this seed count (paired t-test p = {p:.3g} < {alpha})."
    needed = result.get("seeds_needed")
    estimate = (f" With the spread seen here, about {needed} seeds would be needed to detect a difference this size "
                f"80% of the time (an estimate from {n} seeds)." if needed and needed > n else
                " The observed difference is too small against the spread for any affordable number of seeds to "
                "settle it." if needed is None else "")
    return head + (f" That is inconclusive: the interval includes zero (paired t-test p = {p:.3g} >= "
                   f"{alpha}), so another set of seeds could reverse the order.") + estimate


def curve_band(curves: Sequence[pd.DataFrame], metric: str, x: str = "epoch", smoothing: float = 0.0,
               confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Mean curve with a t-interval band across seeds, one row per epoch.

    ``curves`` are per-seed histories (columns ``epoch``, ``epoch_time``, ``metric``). ``x``:
    "epoch", or "time" for elapsed training seconds (each epoch at the seeds' mean elapsed
    time). ``smoothing`` in [0, 1) is an exponential moving average applied to each seed's curve
    first (TensorBoard's debiased EMA, ``pandas.Series.ewm``); the band is of the smoothed curves.
    Epochs that only some seeds reached count those seeds (``n``).
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing: expected a number in [0, 1). Received: smoothing={smoothing!r}")
    if x not in ("epoch", "time"):
        raise ValueError(f"x: expected 'epoch' or 'time'. Received: x={x!r}")
    columns = ["x", "mean", "low", "high", "n"]
    # Plain arrays rather than a pivot of a long frame: Compare asks for a few hundred bands per
    # selection, and pandas' reshaping cost more than the statistics.
    series = []
    for h in curves:
        if metric not in h or not len(h):
            continue
        order = np.argsort(h["epoch"].to_numpy(), kind="stable")
        y = h[metric].to_numpy(dtype=np.float64)[order]
        if smoothing:
            y = pd.Series(y).ewm(alpha=1 - smoothing, adjust=True).mean().to_numpy()
        series.append((h["epoch"].to_numpy()[order], y, h["epoch_time"].to_numpy(dtype=np.float64)[order].cumsum()))
    if not series:
        return pd.DataFrame(columns=columns)
    epochs = np.unique(np.concatenate([e for e, _, _ in series]))
    ys = np.full((len(series), len(epochs)), np.nan)
    ts = np.full_like(ys, np.nan)
    for i, (e, y, t) in enumerate(series):
        at = np.searchsorted(epochs, e)
        ys[i, at], ts[i, at] = y, t
    ci = mean_ci(ys, confidence)
    if x == "epoch":
        xs = epochs
    else:
        with warnings.catch_warnings():  # no NaN expected; a seed without times must not warn per epoch
            warnings.simplefilter("ignore", RuntimeWarning)
            xs = np.nanmean(ts, axis=0)
    return pd.DataFrame({"x": xs, "mean": ci["mean"], "low": ci["low"], "high": ci["high"], "n": ci["n"]},
                        columns=columns)
