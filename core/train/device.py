"""The device a run trains on: accelerator detection, precision/XLA toggles, multi-GPU scope.

Owns the answers to "is there a GPU, may it use bfloat16, should XLA and mixed precision
be on, how many steps per execution" and the ``EMOTION_LAB_DISTRIBUTE`` switch that
trains one run on every visible GPU. TensorFlow is imported only inside functions.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from core.configs import ConfigError

DISTRIBUTE_ENV = "EMOTION_LAB_DISTRIBUTE"
DISTRIBUTE_MODES: tuple[str, ...] = ("none", "mirrored")


def accelerator() -> dict:
    """The device training runs on, and whether mixed precision / XLA are worth it there."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            # Grow on demand so several jobs (or a job and the dashboard's predictor) share a GPU.
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass  # the GPU was already initialised by earlier work in this process
    if not gpus:
        return {"device": "CPU", "gpu": False, "bf16": cpu_has_bf16()}
    details = tf.config.experimental.get_device_details(gpus[0])
    cc = details.get("compute_capability") or (0, 0)
    return {"device": details.get("device_name", "GPU"), "gpu": True, "bf16": tuple(cc) >= (8, 0)}


def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), so ``mixed_bfloat16`` runs
    in oneDNN's bfloat16 kernels rather than emulated. False where ``/proc/cpuinfo`` is unreadable."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))


def mixed_policy(acc: dict) -> str:
    """The Keras mixed-precision policy for this device: bfloat16 where it is native, else float16."""
    return "mixed_bfloat16" if acc["bf16"] else "mixed_float16"


def resolve_toggle(value: str, default: bool) -> bool:
    """``auto`` takes the device's default; ``on``/``off`` override it."""
    return default if value == "auto" else value == "on"


def steps_per_execution(acc: dict) -> int:
    """Steps Keras runs per call into the compiled graph on this device."""
    # On a GPU, per-step Python dispatch is a real cost at small input sizes; on a CPU it is noise.
    return 16 if acc["gpu"] else 1


def distribute_mode() -> str:
    """``EMOTION_LAB_DISTRIBUTE``: ``none`` (default) or ``mirrored``."""
    mode = (os.environ.get(DISTRIBUTE_ENV) or "none").strip().lower()
    if mode not in DISTRIBUTE_MODES:
        raise ConfigError(f"{DISTRIBUTE_ENV}: expected one of {DISTRIBUTE_MODES}. Received: {DISTRIBUTE_ENV}={mode!r}")
    return mode


@contextmanager
def distribution_scope(store=None, run_id: str | None = None) -> Iterator[Any]:
    """Build, compile and fit inside this scope: with ``mirrored``, one replica per visible GPU.

    Yields the ``tf.distribute`` strategy, or None when distribution is off. The batch
    size stays the global batch, split across replicas. The run is tagged with the
    strategy and its number of replicas.
    """
    if distribute_mode() == "none":
        yield None
        return
    import tensorflow as tf

    accelerator()  # memory growth must be set before the strategy initialises the GPUs
    strategy = tf.distribute.MirroredStrategy()
    if store is not None and run_id:
        store.set_tags(run_id, {"distribute": "mirrored", "replicas": strategy.num_replicas_in_sync})
    with strategy.scope():
        yield strategy


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and TensorFlow (weights, data order, augmentation, dropout) and, when
    ``deterministic``, make TensorFlow's ops deterministic so the same seed gives the same run.

    Op determinism is process-wide and cannot be switched off again; job processes run one
    training each, so it never leaks into a run that asked for ``off``.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
