"""Timing machinery for ``python -m core bench``: interleaved windows, medians with spread, ratio intervals.

One timing per variant cannot be believed on a machine where other processes come and go:
the variant that happened to run while something else was busy loses. So every variant
runs in short windows, interleaved (round r runs A B C, the next B C A, ...), after a
warm-up; a figure is the median of its windows with the interquartile range, and a ratio
between two variants is the median of the per-round ratios with a distribution-free interval
(rounds are paired: both variants of a round saw about the same load). A ratio whose
interval contains 1 is reported as "not resolved" rather than as a speed-up.

Nothing here imports TensorFlow; the statistics are tested on fabricated windows.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

SCHEMA = 3  # bump when figure names or units change meaning; ``compare`` refuses other schemas
NOT_RESOLVED = "not resolved"
MIN_WINDOWS = 6  # the fewest rounds whose distribution-free 95% interval for a median is finite


@dataclass
class Variant:
    """One thing to time: ``window()`` does a fixed amount of work and returns how many units (images) it did."""

    name: str
    window: Callable[[], float]
    warm_up: Callable[[], None] | None = None
    unit: str = "img/s"


def interleave(variants: Sequence[Variant], windows: int, *, warm_up_windows: int = 1,
               progress: Callable[[str], None] | None = None,
               clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Run every variant's warm-up, then ``windows`` rounds of one window each, rotating the order.

    Returns ``{name: [rate per window, in round order]}``. Warm-up windows are run and dropped
    (tracing, caches, the allocator's first growth).
    """
    if windows < 1:
        raise ValueError(f"windows must be at least 1. Received: windows={windows}")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"variant names must be unique. Received: {names}")
    for v in variants:
        if progress is not None:
            progress(f"  warm-up: {v.name}…")
        if v.warm_up is not None:
            v.warm_up()
        for _ in range(warm_up_windows):
            v.window()
    rates: dict[str, list[float]] = {v.name: [] for v in variants}
    k = len(variants)
    for r in range(windows):
        # Rotating the start cancels position effects (e.g. the variant after the slowest one).
        for i in range(k):
            v = variants[(r + i) % k]
            t0 = clock()
            units = v.window()
            rates[v.name].append(units / max(clock() - t0, 1e-12))
        if progress is not None:
            progress(f"  window {r + 1}/{windows}: " + ", ".join(f"{n} {rates[n][-1]:.1f}" for n in names))
    return rates


def summarize(samples: Iterable[float], unit: str = "img/s", higher_is_better: bool = True) -> dict:
    """A figure: its windows, median and interquartile range (JSON-ready)."""
    a = np.asarray(list(samples), dtype=float)
    if a.size == 0:
        raise ValueError("a figure needs at least one window")
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {"unit": unit, "higher_is_better": higher_is_better, "median": float(med),
            "iqr": [float(q1), float(q3)], "windows": [float(v) for v in a]}


def _verdict(lo: float | None, hi: float | None) -> str:
    if lo is None or hi is None or not np.isfinite(lo) or not np.isfinite(hi):
        return NOT_RESOLVED
    if lo > 1:
        return "higher"
    if hi < 1:
        return "lower"
    return NOT_RESOLVED


def paired_ratio(num: Sequence[float], den: Sequence[float], *, confidence: float = 0.95) -> dict:
    """``num / den`` from windows of the same rounds: the median of per-round ratios and its interval.

    The interval is distribution-free (``scipy.stats.quantile_test``: order statistics of
    the per-round ratios, as in a sign test), so its confidence holds for a handful of
    rounds where a bootstrap's would be too narrow. At 95% it needs 6 rounds or more.
    ``verdict`` is "higher" or "lower" when the whole interval lies above or below 1, else
    "not resolved".
    """
    from scipy import stats

    a, b = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired windows must have the same non-zero count. Received: {a.size} and {b.size}")
    per_round = a / b
    ratio = float(np.median(per_round))
    ci = stats.quantile_test(per_round, q=ratio, p=0.5).confidence_interval(confidence_level=confidence)
    lo, hi = float(ci.low), float(ci.high)
    ok = np.isfinite(lo) and np.isfinite(hi)
    return {"ratio": ratio, "ci": [lo, hi] if ok else None, "confidence": confidence,
            "rounds": int(per_round.size), "verdict": _verdict(lo, hi) if ok else NOT_RESOLVED,
            "per_round": [float(v) for v in per_round]}


def unpaired_ratio(num: Sequence[float], den: Sequence[float], *, confidence: float = 0.95,
                   n_resamples: int = 2000, seed: int = 0) -> dict:
    """``median(num) / median(den)`` for windows from different runs, with a two-sample bootstrap interval.

    Runs share no rounds, so nothing pairs; fewer than ``MIN_WINDOWS`` windows on either side
    give no interval.
    """
    from scipy import stats

    a, b = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("both samples need at least one window")
    ratio = float(np.median(a) / np.median(b))
    lo = hi = None
    if a.size >= MIN_WINDOWS and b.size >= MIN_WINDOWS:
        if np.ptp(a) == 0 and np.ptp(b) == 0:
            lo = hi = ratio
        else:
            ci = stats.bootstrap((a, b), lambda x, y, axis=-1: np.median(x, axis=axis) / np.median(y, axis=axis),
                                 confidence_level=confidence, n_resamples=n_resamples, method="percentile",
                                 vectorized=True, rng=np.random.default_rng(seed)).confidence_interval
            lo, hi = float(ci.low), float(ci.high)
    return {"ratio": ratio, "ci": [lo, hi] if lo is not None else None, "confidence": confidence,
            "verdict": _verdict(lo, hi)}


def format_ratio(r: dict) -> str:
    """``0.98 [0.95–1.02] not resolved``; ``1.31 [1.20–1.40]`` when resolved."""
    if r.get("ci") is None:
        return f"{r['ratio']:.2f} ({NOT_RESOLVED}: fewer than {MIN_WINDOWS} windows)"
    lo, hi = r["ci"]
    text = f"{r['ratio']:.2f} [{lo:.2f}–{hi:.2f}]"
    return text + (f" {NOT_RESOLVED}" if r["verdict"] == NOT_RESOLVED else "")


class MachineLoad:
    """Load average and the CPU used by other processes while the bench ran.

    ``other_cpu_share`` is the machine's busy CPU time (``/proc/stat``) minus this process's
    and its reported workers' CPU time, over wall time x cores; None where ``/proc/stat`` is
    missing (not Linux).
    """

    def __init__(self):
        self.extra_own_cpu_s = 0.0  # CPU seconds of worker processes, added by whoever runs them

    def __enter__(self) -> MachineLoad:
        self.load_before = os.getloadavg()
        self.busy0, self.t0, self.own0 = _busy_cpu_s(), time.monotonic(), _own_cpu_s()
        return self

    def __exit__(self, *exc) -> None:
        self.load_after = os.getloadavg()
        busy1, wall = _busy_cpu_s(), time.monotonic() - self.t0
        own = _own_cpu_s() - self.own0 + self.extra_own_cpu_s
        cores = os.cpu_count() or 1
        self.other_cpu_share = (None if self.busy0 is None or busy1 is None or wall <= 0
                                else max(0.0, (busy1 - self.busy0 - own) / (wall * cores)))

    def summary(self) -> dict:
        """JSON-ready: loads before/after, other processes' CPU share, and warnings."""
        cores = os.cpu_count() or 1
        warnings = []
        if self.load_before[0] > 0.5 * cores:
            warnings.append(f"load average {self.load_before[0]:.1f} before the bench on {cores} cores: "
                            "other processes were running")
        if self.other_cpu_share is not None and self.other_cpu_share > 0.1:
            warnings.append(f"other processes used {100 * self.other_cpu_share:.0f}% of the CPU during the bench: "
                            "absolute figures are low; interleaved ratios are less affected")
        return {"cores": cores, "load_before": [round(v, 2) for v in self.load_before],
                "load_after": [round(v, 2) for v in self.load_after],
                "other_cpu_share": None if self.other_cpu_share is None else round(self.other_cpu_share, 3),
                "warnings": warnings}


class WorkerVariant:
    """A variant timed in a process of its own, for settings fixed when a process starts (thread pools).

    ``factory`` ("module:function") is called with ``args`` in the worker and returns the
    window callable; ``env`` is set before anything is imported (settings TensorFlow reads
    when it loads, such as ``TF_ENABLE_ONEDNN_OPTS``). The worker imports nothing heavy
    before silencing its stderr (TensorFlow prints library notices while importing); a
    failure comes back through the pipe.
    The parent times each window's round trip.
    """

    def __init__(self, name: str, factory: str, args: tuple, env: dict[str, str] | None = None):
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, factory, args, env or {}), daemon=True)
        self.proc.start()
        self.variant = Variant(name, self.window, warm_up=self.wait_ready)

    def wait_ready(self) -> None:
        """Block until the worker has built its variant; raise with the worker's error if it failed."""
        try:
            got = self.conn.recv()
        except EOFError:
            got = f"exit code {self.proc.exitcode}"
        if got != "ready":
            raise RuntimeError(f"{self.variant.name}: the worker process failed to start: {got}")

    def window(self) -> float:
        """One window in the worker; returns its units."""
        self.conn.send("window")
        return self.conn.recv()

    def stop(self) -> float:
        """Stop the worker; returns the CPU seconds it used (0 if it had died)."""
        try:
            self.conn.send("stop")
            cpu = float(self.conn.recv())
        except (EOFError, BrokenPipeError, OSError):
            cpu = 0.0
        self.proc.join(timeout=30)
        return cpu


def _worker_main(conn, factory: str, args: tuple, env: dict[str, str]) -> None:
    import importlib
    import traceback

    os.environ.update(env)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    try:
        module, name = factory.split(":")
        window = getattr(importlib.import_module(module), name)(*args)
    except Exception:
        conn.send(traceback.format_exc())
        return
    conn.send("ready")
    while conn.recv() == "window":
        conn.send(window())
    t = os.times()
    conn.send(t.user + t.system)


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _busy_cpu_s() -> float | None:
    try:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return (sum(fields[:8]) - idle) / ticks


def compare(old: dict, new: dict) -> dict:
    """Figure by figure and ratio by ratio, what changed from ``old`` to ``new`` (two bench JSONs).

    Figures: ``new/old`` of their medians with a two-sample bootstrap over windows, verdict
    "better"/"worse"/"not resolved" (seconds: lower is better). Ratios: both runs' values
    and intervals, flagged when the verdict changed, with the ratio's own change (the same
    bootstrap over the two runs' per-round ratios): a verdict that flips while that change
    is not resolved is a ratio sitting near 1, not a ratio that moved.
    """
    for name, r in (("OLD", old), ("NEW", new)):
        if r.get("schema") != SCHEMA:
            raise ValueError(f"{name}: expected a bench JSON with schema {SCHEMA}. "
                             f"Received: schema={r.get('schema')!r} (re-run `python -m core bench`)")
    figures = []
    of, nf = old.get("figures", {}), new.get("figures", {})
    for key in sorted(set(of) & set(nf)):
        change = unpaired_ratio(nf[key]["windows"], of[key]["windows"])
        better = nf[key].get("higher_is_better", True)
        verdict = change["verdict"]
        if verdict != NOT_RESOLVED:
            verdict = "better" if (verdict == "higher") == better else "worse"
        figures.append({"figure": key, "unit": nf[key]["unit"], "old": of[key]["median"],
                        "new": nf[key]["median"], "change": {**change, "verdict": verdict}})
    ratios = []
    orat, nrat = old.get("ratios", {}), new.get("ratios", {})
    for key in sorted(set(orat) & set(nrat)):
        o, n = orat[key], nrat[key]
        moved = unpaired_ratio(n["per_round"], o["per_round"]) if "per_round" in o and "per_round" in n else None
        ratios.append({"ratio": key, "old": o, "new": n, "verdict_changed": o["verdict"] != n["verdict"],
                       "change": moved})
    return {"figures": figures, "ratios": ratios,
            "only_old": sorted((set(of) - set(nf)) | (set(orat) - set(nrat))),
            "only_new": sorted((set(nf) - set(of)) | (set(nrat) - set(orat)))}

