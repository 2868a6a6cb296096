"""Scale out on Ray: queued jobs and GA generations as Ray tasks, one run on several GPUs.

``python -m core worker --ray [ADDRESS]`` is the job queue's worker with Ray as its
execution backend. It claims jobs from the same SQLite queue as the ordinary worker (so
submitting, cancelling, progress and the dashboard work unchanged) and runs up to as many
at once as the cluster has room for, each as a Ray task holding one GPU (or a fraction,
``--gpus-per-task``), or one CPU on a machine without GPUs. Inside the task the job runs
exactly as under the ordinary worker: ``core.jobs`` supervises the job's executor in a
process of its own, with the job's run id, progress reporting and cooperative cancel.

The queue file can only be opened on the worker's machine (SQLite wants a local disk),
while a task may run on any node. So a task never opens it: it supervises its job
against a scratch copy of the job's row on its own node (``EMOTION_LAB_JOBS_DB``), and
once a second a small relay actor pinned to the worker's node copies the row's progress
into the real queue and hands back a cancel request if there is one. The worker records
each job's outcome when its task returns, or treats a lost task like a crashed job
process (resumed from its checkpoint, up to ``jobs.MAX_ATTEMPTS`` attempts). On one
machine and on many, progress takes this same path.

``evaluate_configs`` trains a list of configurations as parallel Ray tasks and returns
their fitness: the GA calls it for each generation when its job runs under
``worker --ray`` (``ray_address()`` is then set in the job's process).

``distribution_scope`` wraps model building and training in
``tf.distribute.MirroredStrategy`` when ``EMOTION_LAB_DISTRIBUTE=mirrored`` (``--distribute
mirrored`` on ``train`` and ``worker``), for one large run on every GPU it can see.

Ray and TensorFlow are imported only inside the functions that need them.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import tempfile
import threading
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

from core import jobs
from core.config import PROJECT_ROOT, ConfigError, RunConfig, artifacts_dir, data_dir

log = logging.getLogger(__name__)

ADDRESS_ENV = "EMOTION_LAB_RAY_ADDRESS"  # set in jobs run by `worker --ray`: the cluster to fan work out to
GPUS_ENV = "EMOTION_LAB_RAY_GPUS_PER_TASK"
CPUS_ENV = "EMOTION_LAB_RAY_CPUS_PER_TASK"
DISTRIBUTE_ENV = "EMOTION_LAB_DISTRIBUTE"
DISTRIBUTE_MODES: tuple[str, ...] = ("none", "mirrored")
# Kinds whose executor trains nothing itself but fans its runs out through
# evaluate_configs (the GA): their task holds no GPU and no CPU, so the runs it spawns
# can use every one, and a one-GPU cluster cannot deadlock on it.
COORDINATOR_KINDS: frozenset[str] = frozenset({"evolve"})
SYNC_EVERY_S = 1.0
TASK_RETRIES = 2  # a GA task whose node or process dies is run again under the same run id (resumes)

# What the relay copies from a task's scratch row into the queue while the job runs ...
_PROGRESS = ("run_id", "epoch", "epochs", "batch", "batches", "metrics", "eta_s", "progress_at", "log_tail")
# ... what is meaningful only on the worker's own machine (crash recovery by process identity) ...
_SAME_HOST = ("pid", "pid_token", "log_path")
# ... and what the worker copies when the task returns.
_OUTCOME = (*_PROGRESS, "state", "finished", "error", "result", "note")


# ------------------------------------------------------------------ connecting


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


def _resources(gpus_per_task: float, cpus_per_task: float) -> tuple[dict[str, float], bool]:
    """Ray resources for one training task, and whether the cluster has GPUs at all."""
    import ray

    gpu = ray.cluster_resources().get("GPU", 0) > 0
    return ({"num_gpus": gpus_per_task, "num_cpus": cpus_per_task} if gpu else {"num_cpus": cpus_per_task}), gpu


def _check_fraction(name: str, value: float) -> None:
    # Ray takes whole numbers of accelerators above one, fractions below.
    if not (isinstance(value, (int, float)) and value > 0 and (value <= 1 or float(value).is_integer())):
        raise ConfigError(f"{name}: expected a fraction in (0, 1] or a whole number. Received: {name}={value!r}")


def _capacity(resources: dict[str, float], max_parallel: int | None) -> int:
    """How many training tasks the cluster can run at once right now (it may grow or shrink)."""
    import ray

    total = ray.cluster_resources()
    key, name = ("GPU", "num_gpus") if "num_gpus" in resources else ("CPU", "num_cpus")
    n = max(1, int(total.get(key, 0) / resources[name] + 1e-6))
    return min(n, max_parallel) if max_parallel else n


def _task_env(address: str, gpu: bool, gpus_per_task: float, cpus_per_task: float) -> dict[str, str]:
    """Environment of every task's process, on whichever node it lands."""
    env = {
        # Every node runs this project from the same path (see README: Run on a cluster).
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


def _local_paths() -> dict[str, str]:
    """This machine's artifacts, data and Keras cache, applied to tasks that land on it."""
    paths = {"EMOTION_LAB_ARTIFACTS": str(artifacts_dir()), "EMOTION_LAB_DATA": str(data_dir())}
    if os.environ.get("KERAS_HOME"):
        paths["KERAS_HOME"] = os.environ["KERAS_HOME"]
    return paths


def _here() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def _apply_paths(node: str, paths: Mapping[str, str]) -> None:
    # On the submitting machine a task uses its folders; another node keeps its own
    # (EMOTION_LAB_DATA and friends as set where `ray start` ran there).
    if _here() == node:
        os.environ.update(paths)


def _uses_shared_store() -> bool:
    """True when runs go to a tracking server or database every node can reach, not a local file."""
    from urllib.parse import urlparse

    return urlparse(os.environ.get("MLFLOW_TRACKING_URI", "")).scheme not in ("", "file", "sqlite")


# ------------------------------------------------------------------ the queue's worker on Ray


class _Relay:
    """Runs on the worker's node, the one place the queue can be opened: progress in, cancel out."""

    def __init__(self, db: str):
        os.environ[jobs.JOBS_DB_ENV] = db
        self.conn = jobs._connect()

    def sync(self, job_id: int, attempt: int, fields: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        sets = ", ".join(f"{k}=?" for k in fields)
        rows = self.conn.execute(
            f"UPDATE jobs SET {sets}{', ' if sets else ''}heartbeat=? WHERE id=? AND attempts=? AND state='running' "
            "RETURNING cancel_at, cancel_deadline", (*fields.values(), now, job_id, attempt)).fetchall()
        if not rows:  # no longer this attempt's job (its worker stopped): stop it
            return {"running": False, "cancel_in_s": 0.0}
        cancel_at, deadline = rows[0]
        # A grace period, not a time: the task's node may have another clock.
        return {"running": True, "cancel_in_s": None if cancel_at is None else max(0.0, (deadline or now) - now)}


def run_ray_worker(address: str | None = "local", *, gpus_per_task: float = 1.0, cpus_per_task: float = 1.0,
                   max_parallel: int | None = None, max_jobs: int | None = None, exit_when_idle: float | None = None,
                   slots: int = 1, poll_s: float = 1.0, stale_after_s: float = jobs.STALE_AFTER_S,
                   echo: Callable[[str], None] | None = None) -> int:
    """Claim queued jobs and run them as Ray tasks, several at once. Returns a process exit code.

    ``address`` as in ``connect``. ``gpus_per_task`` is each training job's share of a GPU
    (a whole number above one gives a job several GPUs, for ``--distribute mirrored``);
    on a cluster without GPUs each job takes ``cpus_per_task`` CPUs. At most
    ``max_parallel`` jobs run at once (default: as many as the cluster's GPUs, or CPUs,
    allow). Other arguments as in ``core.jobs.run_worker``.
    """
    import ray

    echo = echo or jobs._print
    if address and address.startswith("ray://"):
        raise ConfigError("worker --ray needs this machine to be a node of the cluster (the queue is a local file): "
                          "run `ray start --address=HEAD:6379` here and use `--ray auto`. "
                          f"Received: address={address!r}")
    _check_fraction("gpus_per_task", gpus_per_task)
    _check_fraction("cpus_per_task", cpus_per_task)
    wid = jobs._register_worker(slots, stale_after_s)
    if wid is None:
        echo("A worker is already running on this machine; not starting another.")
        return 0
    inflight: dict[Any, dict] = {}
    previous = signal.getsignal(signal.SIGTERM)
    claimed = 0
    try:
        try:
            gcs = connect(address)
        except ConnectionError as exc:
            raise ConfigError(f"no Ray cluster at --ray {address}: {exc}") from exc
        # After ray.init, which installs a SIGTERM handler of its own: SIGTERM stops like Ctrl-C.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        resources, gpu = _resources(gpus_per_task, cpus_per_task)
        node = _here()
        if len([n for n in ray.nodes() if n.get("Alive")]) > 1 and not _uses_shared_store():
            echo("warning: this cluster has several nodes but MLFLOW_TRACKING_URI names no tracking server; "
                 "runs on other nodes will not reach this machine's run store")
        # The relay must live where the queue file is: on this very node.
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # Restarted if its process dies: losing it would only pause progress, never a job.
        relay = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(_Relay).options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
            runtime_env={"env_vars": _task_env(gcs, gpu, gpus_per_task, cpus_per_task)},
        ).remote(str(jobs.db_path()))
        task = ray.remote(_job_task)
        env = _task_env(gcs, gpu, gpus_per_task, cpus_per_task)
        paths = _local_paths()
        share = f"{gpus_per_task:g} GPU" if gpu else f"{cpus_per_task:g} CPU"
        echo(f"ray worker {os.getpid()} on {jobs.HOST}: cluster {gcs} with {ray.cluster_resources().get('CPU', 0):g} "
             f"CPU(s), {ray.cluster_resources().get('GPU', 0):g} GPU(s); each job gets {share}; "
             f"waiting for jobs in {jobs.db_path()}")
        idle_since = time.monotonic()
        while True:
            while (max_jobs is None or claimed < max_jobs) and len(inflight) < _capacity(resources, max_parallel):
                job, closed = jobs._claim(wid, stale_after_s)
                jobs._close_runs(closed)
                if job is None:
                    break
                claimed += 1
                opts = {"num_cpus": 0, "num_gpus": 0} if job["kind"] in COORDINATOR_KINDS else resources
                # The queue counts attempts and resumes; Ray must not rerun a job behind its back.
                ref = task.options(**opts, max_retries=0, runtime_env={"env_vars": env}).remote(
                    job, wid, relay, node, paths)
                inflight[ref] = job
                echo(f"job {job['id']} ({job['kind']}: {job['label']}): dispatched to Ray, attempt {job['attempts']}")
            now = time.time()
            with closing(jobs._connect()) as conn:
                conn.execute("UPDATE workers SET heartbeat=?, state=?, job_id=? WHERE id=?",
                             (now, "busy" if inflight else "idle",
                              next(iter(inflight.values()))["id"] if inflight else None, wid))
            if not inflight:
                if max_jobs is not None and claimed >= max_jobs:
                    break
                if exit_when_idle is not None and time.monotonic() - idle_since >= exit_when_idle:
                    break
                time.sleep(poll_s)
                continue
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=poll_s)
            for ref in ready:
                _settle(ref, inflight.pop(ref), wid, echo)
            idle_since = time.monotonic()
    except KeyboardInterrupt:
        _stop(inflight, echo)
        echo(f"ray worker {os.getpid()}: stopped; unfinished jobs resume from their last checkpoint")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        with closing(jobs._connect()) as conn:
            conn.execute("DELETE FROM workers WHERE id=?", (wid,))
        if ray.is_initialized():
            ray.shutdown()
    echo(f"ray worker {os.getpid()}: exiting after {claimed} job(s)")
    return 0


def _settle(ref, job: dict, wid: str, echo: Callable[[str], None]) -> None:
    """Record a finished task's outcome in the queue, or treat a lost task as a crashed job process."""
    import ray

    jid, attempt = job["id"], job["attempts"]
    outcome, failure = None, None
    try:
        outcome = ray.get(ref)
    except ray.exceptions.RayError as exc:
        failure = f"its Ray task was lost ({type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]})"
    now = time.time()
    closed: list = []
    with jobs._transaction() as conn:
        row = conn.execute("SELECT * FROM jobs WHERE id=?", (jid,)).fetchone()
        if row["state"] == "running" and row["attempts"] == attempt:
            if outcome is not None and outcome["state"] != "running":
                cols = [c for c in _OUTCOME + _SAME_HOST if c in outcome]
                conn.execute(f"UPDATE jobs SET {', '.join(f'{c}=?' for c in cols)} WHERE id=?",
                             (*(outcome[c] for c in cols), jid))
            else:
                closed = jobs._after_crash(conn, row, failure or "its task ended without an outcome", now)
        conn.execute("UPDATE workers SET heartbeat=? WHERE id=?", (now, wid))
    jobs._close_runs(closed)
    if failure:
        echo(f"job {jid}: {failure}; state now {jobs.get_job(jid)['state']}")


def _stop(inflight: dict, echo: Callable[[str], None]) -> None:
    """The worker is stopping: stop its tasks, leave their jobs resumable (as the ordinary worker does)."""
    import ray

    if not inflight:
        return
    for ref in inflight:
        ray.cancel(ref)  # KeyboardInterrupt in the task: it stops its job's process gracefully
    try:
        ray.wait(list(inflight), num_returns=len(inflight), timeout=20)
    except Exception:  # already shutting down
        pass
    with jobs._transaction() as conn:
        for job in inflight.values():
            conn.execute("UPDATE jobs SET state='interrupted', attempts=attempts-1, "
                         "note='interrupted: its worker was stopped; it resumes from its last checkpoint' "
                         "WHERE id=? AND attempts=? AND state='running'", (job["id"], job["attempts"]))
    echo(f"stopped {len(inflight)} running job(s)")


def _job_task(job: dict, wid: str, relay, node: str, paths: Mapping[str, str]) -> dict:
    """A Ray task: run one claimed job exactly as the ordinary worker does, against a scratch row."""
    saved = {k: os.environ.get(k) for k in (*paths, jobs.JOBS_DB_ENV)}
    scratch = tempfile.mkdtemp(prefix=f"emotion-lab-job-{job['id']}-")
    same_host = _here() == node
    try:
        _apply_paths(node, paths)
        os.environ[jobs.JOBS_DB_ENV] = os.path.join(scratch, "jobs.db")
        _mirror(job)
        stop = threading.Event()
        syncer = threading.Thread(target=_sync_loop, args=(job, relay, stop, same_host), daemon=True,
                                  name=f"sync-job-{job['id']}")
        syncer.start()
        try:
            # The same supervision as `python -m core worker`: own process, heartbeat, cancel, crash handling.
            jobs._supervise(job, wid, jobs._print)
        finally:
            stop.set()
            syncer.join(timeout=30)
        with closing(jobs._connect()) as conn:
            row = dict(conn.execute("SELECT * FROM jobs WHERE id=?", (job["id"],)).fetchone())
        return {k: row[k] for k in (*_OUTCOME, *(_SAME_HOST if same_host else ()))}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(scratch, ignore_errors=True)


def _mirror(job: dict) -> None:
    """The claimed job's row in the task's scratch queue, as the worker's claim left it."""
    with jobs._transaction() as conn:
        conn.execute(
            "INSERT INTO jobs(id, kind, executor, payload, grp, label, state, run_id, created, started, heartbeat, "
            "worker, host, worker_pid, worker_token, attempts, note) VALUES (?,?,?,?,?,?, 'running', ?,?,?,?,?,?,?,?,?,?)",
            (job["id"], job["kind"], job["executor"], json.dumps(job["payload"], sort_keys=True), job["group"],
             job["label"], job["run_id"], job["created"], job["started"], time.time(), job["worker"], jobs.HOST,
             os.getpid(), jobs.proc_token(os.getpid()), job["attempts"], job["note"]))


def _sync_loop(job: dict, relay, stop: threading.Event, same_host: bool) -> None:
    """Once a second: scratch row's progress -> the queue (through the relay); a cancel request <- back."""
    import ray

    cols = (*_PROGRESS, *(_SAME_HOST if same_host else ()))
    with closing(jobs._connect()) as conn:
        while not stop.wait(SYNC_EVERY_S):
            row = conn.execute("SELECT * FROM jobs WHERE id=?", (job["id"],)).fetchone()
            if row is None or row["state"] != "running":
                continue  # finished: the worker records the outcome from the task's result
            try:
                answer = ray.get(relay.sync.remote(job["id"], job["attempts"], {c: row[c] for c in cols}), timeout=30)
            except Exception as exc:  # the relay is busy or restarting; the next round catches up
                log.warning("job %s: progress not relayed: %s", job["id"], exc)
                continue
            if answer["cancel_in_s"] is not None and row["cancel_at"] is None:
                now = time.time()
                conn.execute("UPDATE jobs SET cancel_at=?, cancel_deadline=? WHERE id=?",
                             (now, now + answer["cancel_in_s"], job["id"]))


# ------------------------------------------------------------------ a GA generation on Ray


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
    ``core.datasets.Dataset``) is shipped to the tasks once through Ray's object store;
    without it each task loads its config's dataset on its node. ``on_result(i,
    evaluation)`` is called as each one finishes. When ``should_stop()`` turns true the
    runs still training are stopped and recorded as KILLED. ``gpus_per_task`` and
    ``cpus_per_task`` default to the worker's settings (``worker --ray``), else 1.
    """
    import ray

    from core.tracking import RunStore

    configs = [c.validate() for c in configs]
    if run_ids is not None and len(run_ids) != len(configs):
        raise ConfigError(f"run_ids: expected one per config ({len(configs)}). Received: {len(run_ids)}")
    if tags is not None and len(tags) != len(configs):
        raise ConfigError(f"tags: expected one mapping per config ({len(configs)}). Received: {len(tags)}")
    if not configs:
        return []
    from core import models

    for cfg in configs:
        models.resolve_weights(cfg.model)  # a missing weights file fails here, before anything trains
    gpus = float(gpus_per_task or os.environ.get(GPUS_ENV) or 1.0)
    cpus = float(cpus_per_task or os.environ.get(CPUS_ENV) or 1.0)
    _check_fraction("gpus_per_task", gpus)
    _check_fraction("cpus_per_task", cpus)
    store = store or RunStore()
    if run_ids is None:
        run_ids = [_create_run(store, cfg, dataset, dict((tags or [{}] * len(configs))[i]))
                   for i, cfg in enumerate(configs)]
    gcs = connect(address)
    resources, gpu = _resources(gpus, cpus)
    data_ref = ray.put(dataset) if dataset is not None else None
    task = ray.remote(_train_task).options(**resources, max_retries=TASK_RETRIES,
                                           runtime_env={"env_vars": _task_env(gcs, gpu, gpus, cpus)})
    node, paths = _here(), _local_paths()
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
                    jobs._close_runs([(run_ids[i], "KILLED", "cancelled by user")])
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


def _create_run(store, cfg: RunConfig, dataset, tags: dict) -> str:
    from core import datasets, training

    ds = dataset if dataset is not None else datasets.load_for_run(cfg.data, cfg.train.seed)
    return store.create_run(cfg, training.dataset_identity(ds), {k: str(v) for k, v in tags.items()})


def _evaluation(ref, run_id: str, store) -> Evaluation:
    import ray

    try:
        return Evaluation(run_id, **ray.get(ref))
    except ray.exceptions.RayTaskError as exc:  # train() raised: it has marked its run FAILED
        cause = exc.cause if isinstance(exc.cause, BaseException) else exc
        return Evaluation(run_id, "FAILED", None, None, 0.0, jobs.describe_error(cause))
    except ray.exceptions.RayError as exc:  # the task's process or node died, retries spent
        error = f"its Ray task was lost: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"
        jobs._close_runs([(run_id, "FAILED", error)])
        return Evaluation(run_id, "FAILED", None, None, 0.0, error)


def _train_task(cfg: dict, run_id: str, dataset, node: str, paths: Mapping[str, str]) -> dict:
    """A Ray task: train one configuration into its run; the numbers the GA needs come back."""
    _apply_paths(node, paths)
    import keras

    from core import training
    from core.tracking import RunStore

    t0 = time.perf_counter()
    try:
        # GA individuals are judged by their numbers; their model files are not kept (as in evolution.py).
        result = training.train(RunConfig.from_dict(cfg), run_id=run_id, store=RunStore(), dataset=dataset,
                                keep_model=False)
    finally:
        keras.backend.clear_session()  # this process trains the next individual too
    history = result.history
    last = history["val_accuracy"].iloc[-1] if len(history) and "val_accuracy" in history else None
    return {"status": result.status, "fitness": None if last is None else float(last),
            "test_accuracy": (result.report or {}).get("accuracy"), "seconds": time.perf_counter() - t0}


# ------------------------------------------------------------------ one run on several GPUs


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

    from core.training import accelerator

    accelerator()  # memory growth must be set before the strategy initialises the GPUs
    strategy = tf.distribute.MirroredStrategy()
    if store is not None and run_id:
        store.set_tags(run_id, {"distribute": "mirrored", "replicas": strategy.num_replicas_in_sync})
    with strategy.scope():
        yield strategy
