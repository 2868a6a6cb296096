"""The worker's side of the queue: register, claim, supervise an attempt, record crashes and outcomes.

Used by ``core.jobs.worker`` (and, for registering and claiming, ``core.jobs.ray_worker``).
Recovery is by process identity, not only by timeout: each running job records its
worker's and its job process's pid and start time, so on the same machine a job whose
processes are both gone is resumed at once, and a job whose worker still lives is never
taken from it. Jobs of workers on other machines (a shared artifacts folder) are
recovered when their heartbeat is older than ``STALE_AFTER_S``.
"""
from __future__ import annotations

import os
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from core.jobs.queue.process import HOST, holder_gone, proc_token, worker_alive
from core.jobs.queue.schema import MAX_ATTEMPTS, connect, decode, fetch_row, transaction

RunsToClose = list[tuple[str, str, str]]  # (run id, MLflow status, reason), for core.train.runs.close_runs

# ------------------------------------------------------------------ workers


def register_worker(slots: int, stale_after_s: float) -> str | None:
    """Register this process as a worker; None if ``slots`` live workers on this machine already run.

    Rows of dead workers are dropped on the way. Returns the worker's id.
    """
    wid, now = f"{HOST}:{os.getpid()}", time.time()
    with transaction() as conn:
        live = 0
        for w in conn.execute("SELECT * FROM workers WHERE id != ?", (wid,)).fetchall():
            if not worker_alive(w, now, stale_after_s):
                conn.execute("DELETE FROM workers WHERE id=?", (w["id"],))
            elif w["host"] == HOST:
                live += 1
        if live >= slots:
            return None
        conn.execute("INSERT OR REPLACE INTO workers(id, host, pid, token, started, heartbeat, state, log_path) "
                     "VALUES (?,?,?,?,?,?, 'idle', (SELECT log_path FROM workers WHERE id=?))",
                     (wid, HOST, os.getpid(), proc_token(os.getpid()), now, now, wid))
    return wid


def register_started_worker(pid: int, log_path: Path) -> None:
    """Record a worker process just started on this machine (state 'starting'), so it counts as alive at once."""
    now = time.time()
    with transaction() as conn:
        conn.execute("INSERT OR REPLACE INTO workers(id, host, pid, token, started, heartbeat, state, log_path) "
                     "VALUES (?,?,?,?,?,?, 'starting', ?)",
                     (f"{HOST}:{pid}", HOST, pid, proc_token(pid), now, now, str(log_path)))


def set_worker_state(wid: str, state: str, job_id: int | None = None) -> None:
    """A worker's heartbeat: ``idle`` or ``busy`` (with the job it runs)."""
    with closing(connect()) as conn:
        conn.execute("UPDATE workers SET heartbeat=?, job_id=?, state=? WHERE id=?", (time.time(), job_id, state, wid))


def unregister_worker(wid: str) -> None:
    """The worker is exiting: it no longer counts as alive."""
    with closing(connect()) as conn:
        conn.execute("DELETE FROM workers WHERE id=?", (wid,))


# ------------------------------------------------------------------ claiming and crashes


def claim(wid: str, stale_after_s: float) -> tuple[dict | None, RunsToClose]:
    """Recover jobs of dead workers, then take the oldest runnable job (interrupted ones first).

    Returns the claimed job (decoded, or None) and the runs of jobs given up on, to close.
    """
    now = time.time()
    with transaction() as conn:
        closed = []
        for row in conn.execute("SELECT * FROM jobs WHERE state='running'").fetchall():
            reason = holder_gone(row, now, stale_after_s)
            if reason is not None:
                closed += after_crash(conn, row, reason, now)
        got = conn.execute(
            "UPDATE jobs SET state='running', attempts=attempts+1, started=COALESCE(started, :now), heartbeat=:now, "
            "finished=NULL, worker=:wid, host=:host, worker_pid=:pid, worker_token=:token, pid=NULL, pid_token=NULL, "
            "note=CASE WHEN attempts > 0 THEN 'resumed: attempt ' || (attempts + 1) || ' of ' || :max ELSE '' END "
            "WHERE id=(SELECT id FROM jobs WHERE state IN ('queued','interrupted') "
            "          ORDER BY state='interrupted' DESC, id LIMIT 1) RETURNING *",
            dict(now=now, wid=wid, host=HOST, pid=os.getpid(), token=proc_token(os.getpid()), max=MAX_ATTEMPTS),
        ).fetchall()
        if got:
            conn.execute("UPDATE workers SET job_id=?, state='busy', heartbeat=? WHERE id=?", (got[0]["id"], now, wid))
    return (decode(got[0]) if got else None), closed


def after_crash(conn: sqlite3.Connection, row: sqlite3.Row, reason: str, now: float) -> RunsToClose:
    """A job's process died without recording an outcome: resume it, or give up after MAX_ATTEMPTS.

    Runs inside the caller's transaction on ``conn``; returns the runs to close.
    """
    run = row["run_id"]
    if row["cancel_at"]:
        conn.execute("UPDATE jobs SET state='cancelled', finished=?, note=? WHERE id=?",
                     (now, f"cancelled ({reason} before it stopped)", row["id"]))
        return [(run, "KILLED", "cancelled by user")] if run else []
    if row["attempts"] >= MAX_ATTEMPTS:
        error = (f"Gave up after {row['attempts']} attempts: each time the job's process died without finishing; "
                 f"the last time {reason}. See the log tail.")
        conn.execute("UPDATE jobs SET state='failed', finished=?, error=?, note='' WHERE id=?", (now, error, row["id"]))
        return [(run, "FAILED", error)] if run else []
    conn.execute("UPDATE jobs SET state='interrupted', note=? WHERE id=?",
                 (f"interrupted: {reason}; it resumes from its last checkpoint", row["id"]))
    return []


def interrupt(jobs: list[tuple[int, int]], log_tail: str | None = None) -> None:
    """Its worker is stopping: each ``(job_id, attempt)`` still running waits to resume, the attempt not counted."""
    with transaction() as conn:
        for jid, attempt in jobs:
            conn.execute("UPDATE jobs SET state='interrupted', attempts=attempts-1, log_tail=COALESCE(?, log_tail), "
                         "note='interrupted: its worker was stopped; it resumes from its last checkpoint' "
                         "WHERE id=? AND attempts=? AND state='running'", (log_tail, jid, attempt))


# ------------------------------------------------------------------ supervising an attempt (core.jobs.worker)


def attach_process(conn: sqlite3.Connection, job_id: int, attempt: int, pid: int, log_path: Path) -> None:
    """Record the process running ``attempt`` of the job, and its log file (crash recovery needs both)."""
    conn.execute("UPDATE jobs SET pid=?, pid_token=?, log_path=? WHERE id=? AND attempts=?",
                 (pid, proc_token(pid), str(log_path), job_id, attempt))


def heartbeat(conn: sqlite3.Connection, job_id: int, attempt: int, wid: str, now: float) -> dict[str, Any] | None:
    """The worker's beat for a job it supervises: job and worker stamped ``now``.

    Returns the job's row as stored (its progress and any cancel request), or None once
    the row belongs to another attempt.
    """
    # fetchall: a RETURNING statement left half-read would keep its write open.
    rows = conn.execute("UPDATE jobs SET heartbeat=? WHERE id=? AND attempts=? RETURNING *",
                        (now, job_id, attempt)).fetchall()
    conn.execute("UPDATE workers SET heartbeat=? WHERE id=?", (now, wid))
    return dict(rows[0]) if rows else None


def save_log_tail(conn: sqlite3.Connection, job_id: int, log_tail: str) -> None:
    """Store the last lines of the job's log, for the dashboard."""
    conn.execute("UPDATE jobs SET log_tail=? WHERE id=?", (log_tail, job_id))


def end_attempt(job_id: int, attempt: int, wid: str, *, exit_reason: str, log_tail: str,
                forced_after_s: float | None = None) -> RunsToClose:
    """The attempt's process has exited: settle the job if the process recorded no outcome, free the worker.

    In one transaction: a job still running this attempt is cancelled (if its process
    was killed ``forced_after_s`` seconds after a cancel request) or treated as crashed
    (``exit_reason``); the log tail is stored; the worker goes idle. Returns the runs to close.
    """
    now = time.time()
    closed: RunsToClose = []
    with transaction() as conn:
        row = fetch_row(conn, job_id)
        if row["state"] == "running" and row["attempts"] == attempt:
            if forced_after_s is not None:
                conn.execute("UPDATE jobs SET state='cancelled', finished=?, note=? WHERE id=?",
                             (now, f"cancelled: stopped forcefully, {forced_after_s:.0f} s after the request", job_id))
                closed = [(row["run_id"], "KILLED", "cancelled by user")] if row["run_id"] else []
            else:
                closed = after_crash(conn, row, exit_reason, now)
        save_log_tail(conn, job_id, log_tail)
        conn.execute("UPDATE workers SET job_id=NULL, state='idle', heartbeat=? WHERE id=?", (now, wid))
    return closed
