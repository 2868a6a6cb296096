"""The queue's worker with Ray as its execution backend: ``python -m core worker --ray [ADDRESS]``.

It claims jobs from the same SQLite queue as the ordinary worker (so submitting,
cancelling, progress and the dashboard work unchanged) and runs up to as many at once as
the cluster has room for, each as a Ray task holding one GPU (or a fraction,
``--gpus-per-task``), or one CPU on a machine without GPUs. Inside the task the job runs
exactly as under the ordinary worker (``core.jobs.worker.supervise``).

The queue file can only be opened on the worker's machine (SQLite wants a local disk),
while a task may run on any node. So a task never opens it: it supervises its job
against a scratch copy of the job's row on its own node (``JOBS_DB_ENV``), and once a
second a small relay actor pinned to the worker's node copies the row's progress into the
real queue and hands back a cancel request if there is one. The worker records each job's
outcome when its task returns, or treats a lost task like a crashed job process (resumed
from its checkpoint, up to ``MAX_ATTEMPTS`` attempts). Uses the queue's public API only.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from contextlib import closing
from typing import Any, Callable, Mapping

from core import cluster
from core.configs import ConfigError
from core.jobs import queue, worker
from core.train import runs

log = logging.getLogger(__name__)

# Kinds whose executor trains nothing itself but fans its runs out through
# cluster.evaluate_configs (the GA): their task holds no GPU and no CPU, so the runs it
# spawns can use every one, and a one-GPU cluster cannot deadlock on it.
COORDINATOR_KINDS: frozenset[str] = frozenset({"evolve"})
SYNC_EVERY_S = 1.0

# What the relay copies from a task's scratch row into the queue while the job runs ...
_PROGRESS = ("run_id", "epoch", "epochs", "batch", "batches", "metrics", "eta_s", "progress_at", "log_tail")
# ... what is meaningful only on the worker's own machine (crash recovery by process identity) ...
_SAME_HOST = ("pid", "pid_token", "log_path")
# ... and what the worker copies when the task returns.
_OUTCOME = (*_PROGRESS, "state", "finished", "error", "result", "note")


class _Relay:
    """Runs on the worker's node, the one place the queue can be opened: progress in, cancel out."""

    def __init__(self, db: str):
        os.environ[queue.JOBS_DB_ENV] = db
        self.conn = queue.connect()

    def sync(self, job_id: int, attempt: int, fields: dict[str, Any]) -> dict[str, Any]:
        answer = queue.relay_progress(self.conn, job_id, attempt, fields)
        if answer is False:  # no longer this attempt's job (its worker stopped): stop it
            return {"running": False, "cancel_in_s": 0.0}
        return {"running": True, "cancel_in_s": answer}


def run_ray_worker(address: str | None = "local", *, gpus_per_task: float = 1.0, cpus_per_task: float = 1.0,
                   max_parallel: int | None = None, max_jobs: int | None = None, exit_when_idle: float | None = None,
                   slots: int = 1, poll_s: float = 1.0, stale_after_s: float = queue.STALE_AFTER_S,
                   echo: Callable[[str], None] | None = None) -> int:
    """Claim queued jobs and run them as Ray tasks, several at once. Returns a process exit code.

    ``address`` as in ``connect``. ``gpus_per_task`` is each training job's share of a GPU
    (a whole number above one gives a job several GPUs, for ``--distribute mirrored``);
    on a cluster without GPUs each job takes ``cpus_per_task`` CPUs. At most
    ``max_parallel`` jobs run at once (default: as many as the cluster's GPUs, or CPUs,
    allow). Other arguments as in ``core.jobs.worker.run_worker``.
    """
    import ray

    echo = echo or worker.echo_line
    if address and address.startswith("ray://"):
        raise ConfigError("worker --ray needs this machine to be a node of the cluster (the queue is a local file): "
                          "run `ray start --address=HEAD:6379` here and use `--ray auto`. "
                          f"Received: address={address!r}")
    cluster.check_fraction("gpus_per_task", gpus_per_task)
    cluster.check_fraction("cpus_per_task", cpus_per_task)
    wid = queue.register_worker(slots, stale_after_s)
    if wid is None:
        echo("A worker is already running on this machine; not starting another.")
        return 0
    inflight: dict[Any, dict] = {}
    previous = signal.getsignal(signal.SIGTERM)
    claimed = 0
    try:
        try:
            gcs = cluster.connect(address)
        except ConnectionError as exc:
            raise ConfigError(f"no Ray cluster at --ray {address}: {exc}") from exc
        # After ray.init, which installs a SIGTERM handler of its own: SIGTERM stops like Ctrl-C.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        resources, gpu = cluster.task_resources(gpus_per_task, cpus_per_task)
        node = cluster.here()
        if len([n for n in ray.nodes() if n.get("Alive")]) > 1 and not cluster.uses_shared_store():
            echo("warning: this cluster has several nodes but MLFLOW_TRACKING_URI names no tracking server; "
                 "runs on other nodes will not reach this machine's run store")
        env = cluster.task_env(gcs, gpu, gpus_per_task, cpus_per_task)
        relay, task, paths = _start_relay(node, env), ray.remote(_job_task), cluster.local_paths()
        share = f"{gpus_per_task:g} GPU" if gpu else f"{cpus_per_task:g} CPU"
        echo(f"ray worker {os.getpid()} on {queue.HOST}: cluster {gcs} with {ray.cluster_resources().get('CPU', 0):g} "
             f"CPU(s), {ray.cluster_resources().get('GPU', 0):g} GPU(s); each job gets {share}; "
             f"waiting for jobs in {queue.db_path()}")
        idle_since = time.monotonic()
        while True:
            while (max_jobs is None or claimed < max_jobs) and len(inflight) < cluster.capacity(resources, max_parallel):
                job, closed = queue.claim(wid, stale_after_s)
                runs.close_runs(closed)
                if job is None:
                    break
                claimed += 1
                opts = {"num_cpus": 0, "num_gpus": 0} if job["kind"] in COORDINATOR_KINDS else resources
                # The queue counts attempts and resumes; Ray must not rerun a job behind its back.
                ref = task.options(**opts, max_retries=0, runtime_env={"env_vars": env}).remote(
                    job, wid, relay, node, paths)
                inflight[ref] = job
                echo(f"job {job['id']} ({job['kind']}: {job['label']}): dispatched to Ray, attempt {job['attempts']}")
            queue.set_worker_state(wid, "busy" if inflight else "idle",
                                   next(iter(inflight.values()))["id"] if inflight else None)
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
        queue.unregister_worker(wid)
        if ray.is_initialized():
            ray.shutdown()
    echo(f"ray worker {os.getpid()}: exiting after {claimed} job(s)")
    return 0


def _start_relay(node: str, env: dict[str, str]):
    """The relay actor, on this very node: the one place the queue file can be opened."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    # Restarted if its process dies: losing it would only pause progress, never a job.
    return ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(_Relay).options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False), runtime_env={"env_vars": env},
    ).remote(str(queue.db_path()))


def _settle(ref, job: dict, wid: str, echo: Callable[[str], None]) -> None:
    """Record a finished task's outcome in the queue, or treat a lost task as a crashed job process."""
    import ray

    jid, attempt = job["id"], job["attempts"]
    outcome, failure = None, None
    try:
        outcome = ray.get(ref)
    except ray.exceptions.RayError as exc:
        failure = f"its Ray task was lost ({type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]})"
    if outcome is not None:
        outcome = {c: outcome[c] for c in _OUTCOME + _SAME_HOST if c in outcome}
    runs.close_runs(queue.settle(jid, attempt, wid, outcome, failure))
    if failure:
        echo(f"job {jid}: {failure}; state now {queue.get_job(jid)['state']}")


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
    queue.interrupt([(job["id"], job["attempts"]) for job in inflight.values()])
    echo(f"stopped {len(inflight)} running job(s)")


def _job_task(job: dict, wid: str, relay, node: str, paths: Mapping[str, str]) -> dict:
    """A Ray task: run one claimed job exactly as the ordinary worker does, against a scratch row."""
    saved = {k: os.environ.get(k) for k in (*paths, queue.JOBS_DB_ENV)}
    scratch = tempfile.mkdtemp(prefix=f"emotion-lab-job-{job['id']}-")
    same_host = cluster.here() == node
    try:
        cluster.apply_paths(node, paths)
        os.environ[queue.JOBS_DB_ENV] = os.path.join(scratch, "jobs.db")
        queue.copy_claimed(job)
        stop = threading.Event()
        syncer = threading.Thread(target=_sync_loop, args=(job, relay, stop, same_host), daemon=True,
                                  name=f"sync-job-{job['id']}")
        syncer.start()
        try:
            # The same supervision as `python -m core worker`: own process, heartbeat, cancel, crash handling.
            worker.supervise(job, wid, worker.echo_line)
        finally:
            stop.set()
            syncer.join(timeout=30)
        row = queue.job_row(job["id"])
        return {k: row[k] for k in (*_OUTCOME, *(_SAME_HOST if same_host else ()))}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(scratch, ignore_errors=True)


def _sync_loop(job: dict, relay, stop: threading.Event, same_host: bool) -> None:
    """Once a second: scratch row's progress -> the queue (through the relay); a cancel request <- back."""
    import ray

    cols = (*_PROGRESS, *(_SAME_HOST if same_host else ()))
    with closing(queue.connect()) as conn:
        while not stop.wait(SYNC_EVERY_S):
            row = queue.job_row(job["id"], conn)
            if row is None or row["state"] != "running":
                continue  # finished: the worker records the outcome from the task's result
            try:
                answer = ray.get(relay.sync.remote(job["id"], job["attempts"], {c: row[c] for c in cols}), timeout=30)
            except Exception as exc:  # the relay is busy or restarting; the next round catches up
                log.warning("job %s: progress not relayed: %s", job["id"], exc)
                continue
            if answer["cancel_in_s"] is not None and row["cancel_at"] is None:
                queue.request_cancel(conn, job["id"], answer["cancel_in_s"])
