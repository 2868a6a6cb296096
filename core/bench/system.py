"""The machine and the process rather than a model: the matmul ceiling, start-up to the first trained
batch (in a fresh interpreter), and loading the dataset again within a process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from core.configs import PROJECT_ROOT


def matmul_windows(n: int = 2048, windows: int = 5, seconds: float = 0.3) -> list[float]:
    """Matmul FLOP/s in ``windows`` short windows (the ceiling's spread says how busy the CPU was)."""
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    tf.linalg.matmul(a, b).numpy()  # warm-up
    rates = []
    for _ in range(windows):
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            tf.linalg.matmul(a, b).numpy()
            reps += 1
        rates.append(2 * n**3 * reps / (time.perf_counter() - t0))
    return rates


def bench_startup(arch: str, size: int, batch_size: int = 32, prebuild: bool = True) -> dict:
    """Time to a job's first trained batch, by phase, measured in a fresh interpreter (``core.bench.startup``).

    ``prebuild=False`` measures it without ``models.build_train_state`` (the train step traced twice).
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "core.bench.startup", arch, str(size), str(batch_size)]
    done = subprocess.run(cmd + ([] if prebuild else ["--no-prebuild"]),
                          capture_output=True, text=True, env=env, cwd=PROJECT_ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"start-up probe failed ({arch}@{size}): {done.stderr.strip()[-500:]}")
    got = json.loads(done.stdout.strip().splitlines()[-1])
    got["process_total_s"] = time.perf_counter() - t0  # with interpreter start and exit
    return got


def bench_dataset_cache() -> dict:
    """Loading the synthetic set: first load in this process vs the per-process memo."""
    from core.configs import DataConfig
    from core.data import datasets

    datasets.forget_loaded()
    t0 = time.perf_counter()
    datasets.load_for_run(DataConfig(dataset="synthetic"))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    datasets.load_for_run(DataConfig(dataset="synthetic"))
    return {"first_load_s": first, "cached_load_s": time.perf_counter() - t0}
