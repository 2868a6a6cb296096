"""A store of N realistic runs, written through the lab's own API, for measuring pages and commands at scale.

No training: each run is opened by ``core.train.runs.open_run`` on the real synthetic
dataset (so its dataset identity, split and test labels are true) and then filled the
way the training loop and ``evaluate_and_log`` fill one: per-epoch curves, the test
report (``core.train.evaluation.classification_report`` with its bootstrap interval),
per-sample predictions, the summary and cost metrics, and its final status. Runs come as
seeded grids (both architectures x the five configurations, several seeds per grid), so
Compare's seed grouping, paired tests and confusion matrices have real work to do.

    .venv/bin/python -m core.bench.scale 500          # into EMOTION_LAB_ARTIFACTS' store

Point ``EMOTION_LAB_ARTIFACTS`` (or ``MLFLOW_TRACKING_URI``) at a throwaway folder first:
the runs are fake, and nothing marks them apart from real ones but their ``scale-`` group.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import numpy as np

from core.configs import ARCHITECTURES, RunConfig, presets
from core.data import datasets
from core.data.dataset import Dataset
from core.store import RunStore
from core.train import evaluation, runs

DATASET = "synthetic"
SEEDS_PER_GRID = 3
FAILED_EVERY = 37  # about 3% of runs fail mid-way, as some real ones do (a run a user cancels looks alike)
# Rough test accuracy of each configuration on the synthetic faces (scratch learns less in a few epochs).
_SKILL = {"imagenet-adam": 0.8, "imagenet-rmsprop": 0.75, "scratch-adam": 0.55, "scratch-rmsprop": 0.5,
          "imagenet-frozen-adam": 0.7}


def grid_configs(epochs: int = 5) -> Iterator[RunConfig]:
    """Endless seeded grids: every architecture x configuration, ``SEEDS_PER_GRID`` seeds per grid."""
    grid = 0
    while True:
        group = f"scale-{grid:04d}"
        for seed in range(42, 42 + SEEDS_PER_GRID):
            for arch in ARCHITECTURES:
                for cid in presets.CONFIG_IDS:
                    base = presets.base_config(arch, DATASET, epochs=epochs, seed=seed)
                    base = replace(base, data=replace(base.data, max_train=700, max_eval=700))
                    yield replace(presets.preset(cid, base), group=group)
        grid += 1


def _curves(rng: np.random.Generator, epochs: int, skill: float) -> list[dict[str, float]]:
    out = []
    for e in range(1, epochs + 1):
        acc = skill * (1 - np.exp(-e / 2)) + rng.normal(0, 0.01)
        out.append({"loss": 1.9 * np.exp(-e / 2.5) + 0.3 + rng.normal(0, 0.02), "accuracy": min(0.99, acc + 0.05),
                    "val_loss": 2.0 * np.exp(-e / 3) + 0.4 + rng.normal(0, 0.03), "val_accuracy": min(0.99, acc),
                    "learning_rate": 1e-3, "epoch_time": 55 + rng.normal(0, 3), "images_per_sec": 12.7})
    return out


def _predictions(rng: np.random.Generator, y_true: np.ndarray, k: int, skill: float) -> np.ndarray:
    """Class probabilities of a classifier right about ``skill`` of the time, confidently or not."""
    logits = rng.normal(0, 1.0, (len(y_true), k))
    right = rng.random(len(y_true)) < skill
    logits[np.flatnonzero(right), y_true[right]] += 3.0
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def add_run(store: RunStore, cfg: RunConfig, ds: Dataset, rng: np.random.Generator, failed: bool = False) -> str:
    """One run written as a finished (or failed) training would leave it; returns its id."""
    run_id = runs.open_run(cfg, ds, store=store)
    skill = _SKILL.get(cfg.variant, 0.6) * (0.95 if cfg.model.arch == "vgg16" else 1.0)
    curves = _curves(rng, cfg.train.epochs, skill)
    done = curves[: max(1, cfg.train.epochs // 2)] if failed else curves
    for epoch, record in enumerate(done, start=1):
        store.log_epoch(run_id, epoch, record)
    store.set_tags(run_id, {"epochs_done": len(done), "device": "CPU (scale fixture)"})
    if failed:
        runs.close_run(run_id, "FAILED", "ResourceExhaustedError: out of memory (scale fixture)", store)
        return run_id
    y_true = ds.splits["test"][1]
    probs = _predictions(rng, y_true, len(ds.class_names), skill)
    y_pred = probs.argmax(axis=1)
    report = evaluation.classification_report(y_true, probs, ds.class_names)
    low, high = evaluation.bootstrap_ci(y_true, y_pred, n_boot=200, seed=cfg.train.seed)
    report.update(accuracy_ci=[low, high], eval_images_per_sec=150.0, model_size_mb=90.0)
    store.log_json(run_id, "report.json", report)
    store.log_arrays(run_id, "predictions.npz", y_true=y_true, y_pred=y_pred, probs=probs)
    epoch_time = float(np.mean([c["epoch_time"] for c in curves]))
    store.log_summary(run_id, {
        "test_accuracy": report["accuracy"], "test_macro_f1": report["macro_f1"], "test_loss": report["loss"],
        "test_acc_ci_low": low, "test_acc_ci_high": high, "model_size_mb": 90.0,
        "best_val_accuracy": max(c["val_accuracy"] for c in curves), "mean_images_per_sec": 12.7,
        "train_time_s": epoch_time * len(curves), "train_time_per_epoch_s": epoch_time,
        "train_flops": 3 * 0.25e9 * 700 * len(curves), "forward_flops_per_image": 0.25e9,
        "images_seen": 700.0 * len(curves), "params_total": 24.1e6 if cfg.model.arch == "resnet50" else 14.9e6,
        "params_trainable": 23.6e6, "latency_ms_per_face": 9.0,
    })
    # No model file is written: said as training says it when a run keeps none, so Predict does not offer it.
    store.set_tags(run_id, {"has_model": False})
    runs.close_run(run_id, "FINISHED", store=store)
    return run_id


def fill_store(n: int, store: RunStore | None = None, *, start: int = 0, epochs: int = 5, seed: int = 0,
               progress: Callable[[int], None] | None = None) -> list[str]:
    """Add runs ``start`` .. ``n - 1`` of the fixture's sequence to ``store``; returns their ids.

    ``start`` continues an earlier fill (50, then 450 more to make 500), so a bench can grow
    one store instead of writing each size from scratch.
    """
    store = store or RunStore()
    ds = datasets.load_for_run(next(grid_configs(epochs)).data)
    rng = np.random.default_rng(seed + start)
    configs = grid_configs(epochs)
    for _ in range(start):
        next(configs)
    ids = []
    for i in range(start, n):
        ids.append(add_run(store, next(configs), ds, rng, failed=(i % FAILED_EVERY == FAILED_EVERY - 1)))
        if progress is not None:
            progress(i + 1)
    return ids


def main(argv: list[str] | None = None) -> int:
    """``python -m core.bench.scale N``: add N fixture runs to the configured store."""
    parser = argparse.ArgumentParser(prog="python -m core.bench.scale", description=__doc__.split("\n")[0])
    parser.add_argument("n", type=int, help="how many runs to add")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args(argv)
    store = RunStore()
    have = len(store.list_runs())
    t0 = time.perf_counter()
    fill_store(have + args.n, store, start=have, epochs=args.epochs)
    print(f"added {args.n} runs to {store.uri} in {time.perf_counter() - t0:.0f} s ({have + args.n} in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
