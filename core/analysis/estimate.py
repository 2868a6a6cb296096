"""Wall-time estimates for runs and searches on this machine, shared by the CLI and the dashboard.

Pure functions of the configs, the training throughput measured by earlier runs (a runs
table or rates per architecture) and the datasets' split sizes: callers decide where those
come from and how long to cache them.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from itertools import product
from typing import Any

import pandas as pd

from core.configs import RunConfig

# Used until this machine has finished a run: steady-state rates measured on a 2-core CPU
# at 48 px, batch 32.
DEFAULT_TRAIN_IMAGES_PER_SEC: dict[str, float] = {"resnet50": 36.0, "vgg16": 30.0}
STARTUP_SECONDS = 40.0  # model build + graph tracing + evaluation, per run
RATE_INPUT_SIZE = 48  # the input size the measured and default rates stand for
# Validation each epoch and the final test pass run about 3x faster than training.
EVAL_SPEEDUP = 3.0


def measured_rates(runs: pd.DataFrame | None = None) -> dict[str, float]:
    """Training images/s per architecture: the median over the runs table's runs that recorded one
    (columns ``arch``, ``images_per_sec``), else ``DEFAULT_TRAIN_IMAGES_PER_SEC``."""
    rates = dict(DEFAULT_TRAIN_IMAGES_PER_SEC)
    if runs is not None and len(runs):
        measured = runs[runs.images_per_sec.notna()].groupby("arch").images_per_sec.median()
        rates.update({arch: float(rate) for arch, rate in measured.items()})
    return rates


def split_totals(counts: pd.DataFrame) -> dict[str, int]:
    """Images per split from a per-class count table (``Dataset.counts()``: split, class_name, count)."""
    return {split: int(n) for split, n in counts.groupby("split")["count"].sum().items()}


def split_sizes(cfg: RunConfig, totals: Mapping[str, int] | None) -> tuple[int, int]:
    """(training images, validation images) one epoch of ``cfg`` sees, given its dataset's split
    totals; (0, 0) when they are unknown (a dataset that cannot be loaded costs nothing to estimate)."""
    if not totals:
        return 0, 0
    n_train, n_eval = int(totals.get("train", 0)), int(totals.get("val", 0))
    if cfg.data.max_train:
        n_train = min(n_train, cfg.data.max_train)
    if cfg.data.max_eval:
        n_eval = min(n_eval, cfg.data.max_eval)
    return n_train, n_eval


def run_seconds(cfg: RunConfig, rate: float, n_train: int, n_eval: int) -> float:
    """One run's wall time at ``rate`` training images/s (measured at 48 px) on these split sizes."""
    # Throughput falls with pixel count.
    rate *= (RATE_INPUT_SIZE / cfg.model.input_size) ** 2
    epochs = cfg.train.epochs * (n_train + n_eval / EVAL_SPEEDUP) / rate
    return STARTUP_SECONDS + epochs + n_eval / (EVAL_SPEEDUP * rate)


def estimate_seconds(configs: Iterable[RunConfig], sizes: Mapping[str, Mapping[str, int]],
                     rates: Mapping[str, float] | None = None) -> float:
    """Wall time of these runs one after another. ``sizes`` maps a dataset name to its split totals
    (``split_totals``); ``rates`` maps an architecture to training images/s (default: the defaults)."""
    rates = {**DEFAULT_TRAIN_IMAGES_PER_SEC, **(rates or {})}
    return sum(run_seconds(c, rates[c.model.arch], *split_sizes(c, sizes.get(c.data.dataset))) for c in configs)


def format_duration(seconds: float) -> str:
    """``1 h 05 min`` / ``3 min 20 s`` / ``45 s``."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def evolve_estimate(base: RunConfig, mode: str, population: int, generations: int, slots_per_generation: int,
                    budget: Mapping[str, Any], fixed: Mapping[str, Any], genes: Mapping[str, Sequence],
                    sizes: Mapping[str, Mapping[str, int]], rates: Mapping[str, float] | None = None,
                    retrain_best: bool = True) -> dict[str, Any]:
    """Upper bound of a search's wall time: every slot trained (cached repeats cost nothing), at the
    mean cost over the free architecture and input-size choices (the genes that set a run's speed).

    ``base`` is the full budget the best genome is retrained with; ``budget`` the fitness budget
    (epochs, max_train, max_eval, long_epochs); ``slots_per_generation`` the trainings a generation
    may cost (``core.evolution.slots_per_generation``: the population, plus the longer runs of
    multi-fidelity); ``genes`` each gene's choices. Returns seconds in total and its parts:
    trainings, per_training, long_trainings, final_seconds, features_seconds.
    """
    archs = [fixed["arch"]] if "arch" in fixed else list(genes["arch"])
    input_sizes = [fixed["input_size"]] if "input_size" in fixed else list(genes["input_size"])
    full = [replace(base, model=replace(base.model, arch=a, input_size=s)) for a, s in product(archs, input_sizes)]

    def mean_cost(configs: list[RunConfig], epochs: int | None = None, capped: bool = True) -> float:
        if capped:
            configs = [replace(c, data=replace(c.data, max_train=budget.get("max_train") or None,
                                               max_eval=budget.get("max_eval") or None)) for c in configs]
        if epochs is not None:
            configs = [replace(c, train=replace(c.train, epochs=epochs)) for c in configs]
        return estimate_seconds(configs, sizes, rates) / len(configs)

    if mode == "head":
        # One pass of the backbone over the images (at most a training epoch's cost); the GA and
        # the optimizers then work on cached features in seconds.
        features = mean_cost(full, epochs=1)
        return {"seconds": features, "trainings": 0, "per_training": 0.0, "long_trainings": 0,
                "final_seconds": 0.0, "features_seconds": features}
    per = mean_cost(full, epochs=int(budget["epochs"]))
    trainings = population * (generations + 1)
    longs = (slots_per_generation - population) * (generations + 1)
    long_cost = mean_cost(full, epochs=int(budget["long_epochs"])) if longs else 0.0
    final = mean_cost(full, capped=False) if retrain_best else 0.0
    return {"seconds": trainings * per + longs * long_cost + final, "trainings": trainings, "per_training": per,
            "long_trainings": longs, "final_seconds": final, "features_seconds": 0.0}
