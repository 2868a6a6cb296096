"""The worker: claims jobs from the queue and runs each in a process of its own.

Training never runs in the dashboard's process. The dashboard (or ``python -m core
submit``) puts a job in the queue and calls ``ensure_worker``; the worker claims jobs one
at a time and supervises each in its own process (heartbeat, progress echo, cancel with
a grace period, crash recovery), so a job that crashes, runs out of memory or is
cancelled by force takes nothing else down, and the accelerator's memory is returned to
the system after every job.
"""
from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Callable

from core.configs import PROJECT_ROOT, artifacts_dir, data_dir
from core.jobs import queue
from core.jobs.queue import HEARTBEAT_S, HOST, IDLE_EXIT_S, LOG_TAIL_LINES, STALE_AFTER_S
from core.train import runs

# Jobs yield the CPU to the dashboard: on a shared machine a training job's threads would otherwise
# take every core from the pages people are waiting on. Niceness only matters while something
# else wants the CPU, so an unattended job trains as fast as before. EMOTION_LAB_JOB_NICE=0 turns it off.
JOB_NICE = 10


def job_nice() -> int:
    """How much lower than the worker's the job processes' CPU priority is (``EMOTION_LAB_JOB_NICE``)."""
    raw = os.environ.get("EMOTION_LAB_JOB_NICE", str(JOB_NICE))
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"EMOTION_LAB_JOB_NICE={raw!r}: expected a whole number from 0 to 19") from None
    if not 0 <= value <= 19:
        raise ValueError(f"EMOTION_LAB_JOB_NICE={value}: expected a whole number from 0 to 19")
    return value


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    # Absolute paths: the worker and job processes run from the project root.
    env["EMOTION_LAB_ARTIFACTS"] = str(artifacts_dir())
    env["EMOTION_LAB_DATA"] = str(data_dir())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach the log file (and the job's log tail) as they happen
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def ensure_worker(*, idle_exit_s: float = IDLE_EXIT_S) -> int | None:
    """Start a detached worker if jobs are waiting and none is alive; return its pid, else None.

    The worker runs in a session of its own, so closing the browser or restarting
    Streamlit does not stop it; it exits after ``idle_exit_s`` seconds without work.
    A file lock makes two tabs calling this at once start one worker, not two.
    """
    import fcntl

    lock = artifacts_dir() / "jobs.spawn.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        if queue.worker_status()["alive"] or not queue.has_unfinished_jobs():
            return None
        logs = artifacts_dir() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        tmp = logs / f"worker-starting-{os.getpid()}-{time.time_ns()}.log"
        with open(tmp, "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "core", "worker", "--exit-when-idle", str(idle_exit_s)],
                                    cwd=PROJECT_ROOT, env=child_env(), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        log_path = logs / f"worker-{proc.pid}.log"
        # Renamed, not written whole (so not core.configs.atomic_write): the worker already writes
        # to this file, and its name needs the pid, known only once the worker has started.
        os.replace(tmp, log_path)
        # Reap it when it exits, so a long-lived caller (Streamlit) collects no zombies.
        threading.Thread(target=proc.wait, daemon=True).start()
        # Registered before the lock is released: a second caller sees it as alive.
        queue.register_started_worker(proc.pid, log_path)
    return proc.pid


def run_worker(*, max_jobs: int | None = None, exit_when_idle: float | None = None, slots: int = 1,
               poll_s: float = 1.0, stale_after_s: float = STALE_AFTER_S, echo: Callable[[str], None] | None = None) -> int:
    """Claim and run jobs one at a time until stopped. Returns a process exit code.

    ``slots`` is how many workers may run on this machine at once (one per accelerator;
    start each with its own CUDA_VISIBLE_DEVICES). A worker finding them all taken exits.
    """
    echo = echo or echo_line
    try:
        nice = job_nice()
    except ValueError as exc:  # before any job is claimed: a bad setting fails no job
        echo(f"error: {exc}")
        return 2
    wid = queue.register_worker(slots, stale_after_s)
    if wid is None:
        others = queue.worker_status(stale_after_s)["workers"]
        echo(f"A worker is already running on this machine (pid {', '.join(str(w['pid']) for w in others)}); "
             "not starting another.")
        return 0
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops like Ctrl-C
    echo(f"worker {os.getpid()} on {HOST}: waiting for jobs in {queue.db_path()}"
         + (f" (jobs run at nice {nice}: pages and commands get the CPU first)" if nice else ""))
    done, idle_since = 0, time.monotonic()
    try:
        while max_jobs is None or done < max_jobs:
            job, closed = queue.claim(wid, stale_after_s)
            runs.close_runs(closed)
            if job is None:
                if exit_when_idle is not None and time.monotonic() - idle_since >= exit_when_idle:
                    break
                queue.set_worker_state(wid, "idle")
                time.sleep(poll_s)
                continue
            supervise(job, wid, echo)
            done += 1
            idle_since = time.monotonic()
    except KeyboardInterrupt:
        echo(f"worker {os.getpid()}: stopped; unfinished jobs resume from their last checkpoint")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        queue.unregister_worker(wid)
    echo(f"worker {os.getpid()}: exiting after {done} job(s)")
    return 0


def echo_line(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


# The job lowers its own priority first (see JOB_NICE): its last argument is the niceness.
_JOB_PROCESS = ("import os, sys; os.nice(int(sys.argv.pop())); "
                "from core.jobs.context import main; sys.exit(main(*sys.argv[1:]))")


def supervise(job: dict, wid: str, echo: Callable[[str], None]) -> None:
    """Run one claimed job in its own process: heartbeat, relay progress, enforce cancel, record crashes."""
    jid, attempt = job["id"], job["attempts"]
    logs = artifacts_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"job-{jid}.log"
    with open(log_path, "ab") as out:
        out.write(f"===== job {jid} ({job['kind']}: {job['label']}) attempt {attempt} by worker {os.getpid()} "
                  f"on {HOST} at {time.strftime('%Y-%m-%d %H:%M:%S')} =====\n".encode())
        out.flush()
        # Own session: a forced cancel kills the job's process group and nothing else.
        proc = subprocess.Popen([sys.executable, "-c", _JOB_PROCESS, str(jid), str(attempt), str(os.getpid()),
                                 str(job_nice())], cwd=PROJECT_ROOT, env=child_env(), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    echo(f"job {jid} ({job['kind']}: {job['label']}): started, attempt {attempt}, process {proc.pid}")
    forced: float | None = None
    beat, tail_size, shown = 0.0, -1, None
    with closing(queue.connect()) as conn:
        queue.attach_process(conn, jid, attempt, proc.pid, log_path)
        try:
            while proc.poll() is None:
                now = time.time()
                if now - beat >= HEARTBEAT_S:
                    beat = now
                    row = queue.heartbeat(conn, jid, attempt, wid, now)
                    if row is not None:
                        if row["cancel_deadline"] and now >= row["cancel_deadline"] and forced is None:
                            forced = now - row["cancel_at"]
                            _kill(proc)
                            continue
                        shown = _echo_progress(echo, row, shown)
                    size = log_path.stat().st_size
                    if size != tail_size:
                        tail_size = size
                        queue.save_log_tail(conn, jid, tail(log_path))
                time.sleep(0.2)
        except BaseException:  # the worker is being stopped: stop the job, keep it resumable
            _kill(proc, graceful=True)
            queue.interrupt([(jid, attempt)], tail(log_path))
            raise
    runs.close_runs(queue.end_attempt(jid, attempt, wid, exit_reason=_exit_reason(proc.returncode),
                                      log_tail=tail(log_path), forced_after_s=forced))
    final = queue.get_job(jid)
    echo(f"job {jid}: " + (f"failed: {final['error']}" if final["state"] == "failed" else final["note"] or final["state"]))


def _echo_progress(echo: Callable[[str], None], row: dict, shown: tuple | None) -> tuple | None:
    """One line per finished epoch (or generation) on the worker's console (headless use).

    A training job's line quotes the epoch as its run logged it: the row's ``metrics`` is
    live (running batch averages of the epoch in progress by the time the worker looks),
    so a line built from it can show a loss no logged epoch has. The first line of a
    resumed attempt says which logged epoch it continues from.
    """
    p = queue.Progress.from_row(row["kind"], row)
    now_at = (p.done, p.total)
    if not p.done or now_at == shown:
        return shown
    metrics = _logged_epoch(row["run_id"], p.done) if row["kind"] == "train" and row.get("run_id") else None
    values = " ".join(f"{k}={v:.4f}" for k, v in (metrics or json.loads(row["metrics"] or "{}")).items())
    if shown is None and row["attempts"] > 1:
        source = f"logged {p.unit} {p.done}: {values}" if metrics else values
        echo(f"job {row['id']}: resumed after {p.unit} {p.done}/{p.total}" + (f" ({source})" if source else ""))
    else:
        eta = f", about {p.eta_s:.0f} s left" if p.eta_s else ""
        echo(f"job {row['id']}: {p.unit} {p.done}/{p.total} {values}{eta}")
    return now_at


@functools.lru_cache(maxsize=1)
def _store():
    """One run-store client per worker process (each new client checks the database's schema again)."""
    from core.store import RunStore

    return RunStore()


def _logged_epoch(run_id: str, epoch: int) -> dict[str, float] | None:
    try:
        return runs.logged_epoch(run_id, epoch, _store())
    except Exception:  # a console line is not worth stopping the worker for: the row's values are used instead
        return None


def _kill(proc: subprocess.Popen, graceful: bool = False) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM if graceful else signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10 if graceful else 60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _exit_reason(rc: int | None) -> str:
    if rc is not None and rc < 0:
        name = signal.Signals(-rc).name
        hint = " (the system may have run out of memory)" if -rc == signal.SIGKILL else ""
        return f"its process was killed by {name}{hint}"
    return f"its process exited with code {rc} without recording a result"


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


