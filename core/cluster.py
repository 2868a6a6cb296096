"""Ray fan-out: connect to a cluster and train a list of configurations as parallel Ray tasks.

``evaluate_configs`` trains configurations as Ray tasks and returns their fitness: the GA
calls it for each generation when its job runs under ``worker --ray`` (``ray_address()``
is then set in the job's process). The plumbing every Ray task shares (resources, task
environment, this machine's paths) lives here too; ``core.jobs.ray_worker`` uses it to run
queued jobs as Ray tasks. Ray and TensorFlow are imported only inside the functions that
need them.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from core.configs import PROJECT_ROOT, ConfigError, RunConfig, artifacts_dir, data_dir
from core.train import runs
from core.train.device import DISTRIBUTE_ENV

log = logging.getLogger(__name__)

ADDRESS_ENV = "EMOTION_LAB_RAY_ADDRESS"  # set in jobs run by `worker --ray`: the cluster to fan work out to
GPUS_ENV = "EMOTION_LAB_RAY_GPUS_PER_TASK"
CPUS_ENV = "EMOTION_LAB_RAY_CPUS_PER_TASK"
TASK_RETRIES = 2  # a GA task whose node or process dies is run again under the same run id (resumes)


def ray_address() -> str | None:
    """The Ray cluster this process may fan training out to, or None.

    Set inside every job that ``python -m core worker --ray`` runs; the GA uses it to
    decide between training its individuals in parallel on the cluster and one by one.
    """
    return os.environ.get(ADDRESS_ENV) or None


def connect(address: str | None = None) -> str:
    """Connect this process to Ray once and return the cluster's address.

    ``address``: ``"local"`` starts a Ray instance on this machine (stopped when the
    process exits); ``"auto"`` or ``HOST:6379`` joins the cluster a ``ray start`` runs.
    Default: the cluster of the job this process runs in (``ray_address()``), else local.
    """
    import ray

    if not ray.is_initialized():
        address = address or ray_address() or "local"
        kwargs: dict[str, Any] = {"include_dashboard": False} if address == "local" else {}
        ray.init(address=address, log_to_driver=True, logging_level=logging.WARNING, **kwargs)
    return ray.get_runtime_context().gcs_address


def task_resources(gpus_per_task: float, cpus_per_task: float) -> tuple[dict[str, float], bool]:
    """Ray resources for one training task, and whether the cluster has GPUs at all."""
    import ray

    gpu = ray.cluster_resources().get("GPU", 0) > 0
    return ({"num_gpus": gpus_per_task, "num_cpus": cpus_per_task} if gpu else {"num_cpus": cpus_per_task}), gpu


def check_fraction(name: str, value: float) -> None:
    # Ray takes whole numbers of accelerators above one, fractions below.
    if not (isinstance(value, (int, float)) and value > 0 and (value <= 1 or float(value).is_integer())):
        raise ConfigError(f"{name}: expected a fraction in (0, 1] or a whole number. Received: {name}={value!r}")


def capacity(resources: dict[str, float], max_parallel: int | None) -> int:
    """How many training tasks the cluster can run at once right now (it may grow or shrink)."""
    import ray

    total = ray.cluster_resources()
    key, name = ("GPU", "num_gpus") if "num_gpus" in resources else ("CPU", "num_cpus")
    n = max(1, int(total.get(key, 0) / resources[name] + 1e-6))
    return min(n, max_parallel) if max_parallel else n


def task_env(address: str, gpu: bool, gpus_per_task: float, cpus_per_task: float) -> dict[str, str]:
    """Environment of every task's process, on whichever node it lands."""
    env = {
        # Every node runs this project from the same path (see core/jobs/README.md: Run on a cluster).
        "PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p),
        "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        # Tasks sharing a GPU (--gpus-per-task 0.5) each take memory as they need it, not all of it.
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
        ADDRESS_ENV: address, GPUS_ENV: str(gpus_per_task), CPUS_ENV: str(cpus_per_task),
    }
    if not gpu:
        # CPU training in parallel: each run keeps to its share instead of every run using every core.
        env["TF_NUM_INTRAOP_THREADS"] = str(max(1, math.floor(cpus_per_task)))
    for key in ("MLFLOW_TRACKING_URI", DISTRIBUTE_ENV, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    return env


def local_paths() -> dict[str, str]:
    """This machine's artifacts, data and Keras cache, applied to tasks that land on it."""
    paths = {"EMOTION_LAB_ARTIFACTS": str(artifacts_dir()), "EMOTION_LAB_DATA": str(data_dir())}
    if os.environ.get("KERAS_HOME"):
        paths["KERAS_HOME"] = os.environ["KERAS_HOME"]
    return paths


def here() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def apply_paths(node: str, paths: Mapping[str, str]) -> None:
    # On the submitting machine a task uses its folders; another node keeps its own
    # (EMOTION_LAB_DATA and friends as set where `ray start` ran there).
    if here() == node:
        os.environ.update(paths)


def uses_shared_store() -> bool:
    """True when runs go to a tracking server or database every node can reach, not a local file."""
    from urllib.parse import urlparse

    return urlparse(os.environ.get("MLFLOW_TRACKING_URI", "")).scheme not in ("", "file", "sqlite")


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one configuration trained by ``evaluate_configs``."""

    run_id: str
    status: str  # FINISHED, FAILED or KILLED (stopped)
    fitness: float | None  # validation accuracy after the last epoch, as the GA scores a genome
    test_accuracy: float | None  # on the split ``train`` evaluates at the end (the GA hands it the validation split)
    seconds: float
    error: str = ""


def evaluate_configs(configs: Sequence[RunConfig], *, run_ids: Sequence[str] | None = None, dataset=None,
                     tags: Sequence[Mapping[str, Any]] | None = None, store=None,
                     should_stop: Callable[[], bool] | None = None,
                     on_result: Callable[[int, Evaluation], None] | None = None, address: str | None = None,
                     gpus_per_task: float | None = None, cpus_per_task: float | None = None) -> list[Evaluation]:
    """Train every configuration as a Ray task, in parallel as far as the cluster allows.

    Returns one ``Evaluation`` per configuration, in order. ``run_ids`` are runs already
    created for them (a run that was interrupted resumes from its checkpoint); without
    them each configuration gets a new run, tagged with its ``tags``. ``dataset`` (a
    ``core.data.datasets.Dataset``) is shipped to the tasks once through Ray's object store;
    without it each task loads its config's dataset on its node. ``on_result(i,
    evaluation)`` is called as each one finishes. When ``should_stop()`` turns true the
    runs still training are stopped and recorded as KILLED. ``gpus_per_task`` and
    ``cpus_per_task`` default to the worker's settings (``worker --ray``), else 1.
    """
    import ray

    from core.store import RunStore

    if run_ids is not None and len(run_ids) != len(configs):
        raise ConfigError(f"run_ids: expected one per config ({len(configs)}). Received: {len(run_ids)}")
    if tags is not None and len(tags) != len(configs):
        raise ConfigError(f"tags: expected one mapping per config ({len(configs)}). Received: {len(tags)}")
    if not configs:
        return []
    from core.train import models

    for cfg in configs:
        models.resolve_weights(cfg.model)  # a missing weights file fails here, before anything trains
    gpus = float(gpus_per_task or os.environ.get(GPUS_ENV) or 1.0)
    cpus = float(cpus_per_task or os.environ.get(CPUS_ENV) or 1.0)
    check_fraction("gpus_per_task", gpus)
    check_fraction("cpus_per_task", cpus)
    store = store or RunStore()
    if run_ids is None:
        run_ids = [_open_run(store, cfg, dataset, dict((tags or [{}] * len(configs))[i]))
                   for i, cfg in enumerate(configs)]
    gcs = connect(address)
    resources, gpu = task_resources(gpus, cpus)
    data_ref = ray.put(dataset) if dataset is not None else None
    task = ray.remote(_train_task).options(**resources, max_retries=TASK_RETRIES,
                                           runtime_env={"env_vars": task_env(gcs, gpu, gpus, cpus)})
    node, paths = here(), local_paths()
    refs = {task.remote(cfg.to_dict(), rid, data_ref, node, paths): i
            for i, (cfg, rid) in enumerate(zip(configs, run_ids))}
    results: list[Evaluation | None] = [None] * len(configs)
    pending = list(refs)
    while pending:
        if should_stop is not None and should_stop():
            for ref in pending:
                ray.cancel(ref, force=True)
            for ref in pending:
                i = refs[ref]
                try:  # a task may have finished just before its cancel: keep its result
                    results[i] = Evaluation(run_ids[i], **ray.get(ref, timeout=60))
                except Exception:
                    runs.close_runs([(run_ids[i], "KILLED", "cancelled by user")])
                    results[i] = Evaluation(run_ids[i], "KILLED", None, None, 0.0, "stopped before it finished")
                if on_result is not None:
                    on_result(i, results[i])
            break
        ready, pending = ray.wait(pending, num_returns=1, timeout=0.5)
        for ref in ready:
            i = refs[ref]
            results[i] = _evaluation(ref, run_ids[i], store)
            if on_result is not None:
                on_result(i, results[i])
    return results  # type: ignore[return-value]


def _open_run(store, cfg: RunConfig, dataset, tags: dict) -> str:
    from core.data import datasets

    ds = dataset if dataset is not None else datasets.load_for_run(cfg.data)
    return runs.open_run(cfg, ds, store=store, tags=tags)


def _evaluation(ref, run_id: str, store) -> Evaluation:
    import ray

    try:
        return Evaluation(run_id, **ray.get(ref))
    except ray.exceptions.RayTaskError as exc:  # train() raised: it has marked its run FAILED
        cause = exc.cause if isinstance(exc.cause, BaseException) else exc
        return Evaluation(run_id, "FAILED", None, None, 0.0, runs.describe_error(cause))
    except ray.exceptions.RayError as exc:  # the task's process or node died, retries spent
        error = f"its Ray task was lost: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"
        runs.close_runs([(run_id, "FAILED", error)])
        return Evaluation(run_id, "FAILED", None, None, 0.0, error)


def _train_task(cfg: dict, run_id: str, dataset, node: str, paths: Mapping[str, str]) -> dict:
    """A Ray task: train one configuration into its run; the numbers the GA needs come back."""
    apply_paths(node, paths)
    import keras

    from core.store import RunStore
    from core.train import training

    t0 = time.perf_counter()
    try:
        # GA individuals are judged by their numbers; their model files are not kept.
        result = training.train(RunConfig.from_dict(cfg), run_id=run_id, store=RunStore(), dataset=dataset,
                                keep_model=False)
    finally:
        keras.backend.clear_session()  # this process trains the next individual too
    history = result.history
    last = history["val_accuracy"].iloc[-1] if len(history) and "val_accuracy" in history else None
    return {"status": result.status, "fitness": None if last is None else float(last),
            "test_accuracy": (result.report or {}).get("accuracy"), "seconds": time.perf_counter() - t0}
