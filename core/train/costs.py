"""What a trained model cost: time, arithmetic, size and prediction latency, measured the same way for every run.

Conventions (core/analysis/README.md, "Accuracy against cost", repeats them):

- training time: the wall-clock seconds of the fit epochs (training and validation passes),
  summed over epochs; per epoch is that sum over the epochs run.
- training FLOPs: ``TRAIN_FLOPS_PER_FORWARD`` x the model's per-image forward FLOPs
  (``models.forward_flops``: 2 x multiply-adds of every Conv2D and Dense layer) x the
  training images seen (training images x epochs). The backward pass costs about twice the
  forward one; frozen blocks and the frozen-feature cache are not discounted, so for frozen
  runs this is the cost of the same schedule trained in full (an upper bound).
- inference latency: milliseconds for one face (batch of 1, already cropped and resized) through
  the whole model, the median of ``LATENCY_REPEATS`` calls after one untimed warm-up, on the
  device that trained it. Face detection is the same for every model and is not included.
"""
from __future__ import annotations

import time

import numpy as np

from core.train import models

TRAIN_FLOPS_PER_FORWARD = 3  # forward + backward (~2x forward)
LATENCY_REPEATS = 10

# The run-level metrics ``run_costs`` returns, in the order tables show them.
COST_METRICS = ("train_time_s", "train_time_per_epoch_s", "train_flops", "forward_flops_per_image", "images_seen",
                "params_total", "params_trainable", "latency_ms_per_face")


def inference_latency_ms(model, face: np.ndarray, repeats: int = LATENCY_REPEATS) -> float:
    """Median milliseconds of ``model.predict_on_batch`` on one preprocessed face (shape (1, H, W, 3))."""
    model.predict_on_batch(face)  # traces the predict function once
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict_on_batch(face)
        times.append(time.perf_counter() - t0)
    return 1000.0 * float(np.median(times))


def run_costs(model, epoch_times: list[float], n_train: int, face: np.ndarray) -> dict[str, float]:
    """Every cost of ``COST_METRICS`` for a model trained ``len(epoch_times)`` epochs on ``n_train`` images.

    ``epoch_times`` are the seconds of each epoch; ``face`` is one preprocessed input
    (batch of 1) for the latency.
    """
    epochs = len(epoch_times)
    forward = models.forward_flops(model)
    seen = n_train * epochs
    train_time = float(sum(epoch_times))
    return {
        "train_time_s": train_time,
        "train_time_per_epoch_s": train_time / epochs if epochs else float("nan"),
        "train_flops": TRAIN_FLOPS_PER_FORWARD * forward * seen,
        "forward_flops_per_image": forward,
        "images_seen": float(seen),
        **models.count_params(model),
        "latency_ms_per_face": inference_latency_ms(model, face),
    }
