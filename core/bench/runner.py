"""What every bench experiment is timed with: its images, its model, epoch windows, and the JSON it writes.

A window does a fixed amount of real work and returns how many images it did; ``stats.interleave``
times windows of several variants in turns.
"""
from __future__ import annotations

import json
import os
import platform
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from core.configs import RunConfig, presets
from core.configs.choices import FER_LABELS
from core.data.pipeline import fixed_parallelism, make_pipeline
from core.train import device, models

NUM_CLASSES = len(FER_LABELS)  # the synthetic set's classes, like FER2013's


def bench_data(n_images: int) -> tuple[np.ndarray, np.ndarray]:
    """Exactly ``n_images`` drawn faces of the synthetic set (uint8, 48x48) with their labels, classes mixed."""
    from core.data import synthetic

    x, y = synthetic.generate(-(-n_images // NUM_CLASSES), seed=123)
    keep = np.random.default_rng(0).permutation(len(y))[:n_images]
    return x[keep], y[keep]


def bench_config(arch: str, size: int, batch_size: int) -> RunConfig:
    """The ``scratch-adam`` configuration at ``size`` px: what the throughput experiments train."""
    cfg = presets.preset("scratch-adam", presets.base_config(arch, "bench", batch_size=batch_size))
    return replace(cfg, model=replace(cfg.model, input_size=size))


def compiled(cfg: RunConfig, num_classes: int, **compile_kw):
    """``cfg``'s model compiled as ``core.train.training`` compiles it, train state built."""
    model = models.build_model(cfg.model, num_classes, seed=cfg.train.seed)
    model.compile(optimizer=models.make_optimizer(cfg.optimizer), loss="categorical_crossentropy",
                  metrics=["accuracy"], **compile_kw)
    models.build_train_state(model)
    return model


def train_pipeline(x: np.ndarray, y: np.ndarray, arch: str, size: int, batch_size: int, num_classes: int,
                   augment: bool = False, **options):
    """The project's training pipeline over ``(x, y)``, seed 0; ``options`` go to ``make_pipeline``."""
    return make_pipeline(x, y, arch=arch, input_size=size, num_classes=num_classes, batch_size=batch_size,
                         seed=0, training=True, augment=augment, **options)


def epoch_window(model, data, n: int) -> Callable[[], float]:
    """One window = one epoch of ``model.fit`` over ``n`` images (a tf.data dataset or a Keras iterator)."""
    return lambda: (model.fit(data, epochs=1, verbose=0, shuffle=False), n)[1]


def in_memory(arch: str, size: int, x: np.ndarray, y: np.ndarray, batch_size: int, num_classes: int):
    """Preprocessed images held as tensors, batched and nothing else: the model's speed with no input work.

    Not ``model.fit`` on NumPy arrays: Keras' array adapter is a tf.data pipeline with
    autotuning on, whose per-epoch stall (see ``fixed_parallelism``) is not the model's.
    """
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((models.preprocess(arch, x, size),
                                               np.eye(num_classes, dtype="float32")[y]))
    return fixed_parallelism(data.shuffle(len(y), seed=0).batch(batch_size))


def environment_summary() -> dict:
    """Device, versions and the settings the numbers were measured with."""
    import tensorflow as tf

    acc = device.accelerator()
    return {"device": acc["device"], "platform": platform.platform(), "python": platform.python_version(),
            "tensorflow": tf.__version__, "keras": __import__("keras").__version__,
            "mixed_precision": "on" if acc["gpu"] else "off (CPU)", "xla": "on" if acc["gpu"] else "off (CPU)",
            "cpu_threads": tf.config.threading.get_inter_op_parallelism_threads() or "default",
            # Other processes skew CPU timings; the load at the start says how quiet the machine was.
            "load_average_1min": os.getloadavg()[0]}


def collect(results: dict, prefix: str, section: dict) -> None:
    """Copy a section's figures and ratios into the run's flat, stably named tables (what ``compare`` reads)."""
    for name, fig in section["figures"].items():
        results["figures"][f"{prefix}/{name}"] = fig
    for name, r in section["ratios"].items():
        results["ratios"][f"{prefix}/{name}"] = r


def save(results: dict, out: Path | None) -> None:
    """Write ``results`` as JSON to ``out`` (its folder created); nothing when ``out`` is None."""
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
