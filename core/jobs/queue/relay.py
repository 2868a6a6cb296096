"""A job run elsewhere (``core.jobs.ray_worker``): a scratch copy of its row, relayed progress, the outcome.

A Ray task supervises its job against a scratch queue on its own node; these functions
copy the claimed row there, relay progress and cancel requests between the two queues,
and record the outcome in the real one.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import closing
from typing import Any

from core.jobs.queue.process import HOST, proc_token
from core.jobs.queue.schema import assignments, connect, fetch_row, transaction
from core.jobs.queue.workers import RunsToClose, after_crash


def job_row(job_id: int, conn: sqlite3.Connection | None = None) -> dict | None:
    """The job's raw row (undecoded columns), or None."""
    if conn is not None:
        row = fetch_row(conn, job_id)
    else:
        with closing(connect()) as own:
            row = fetch_row(own, job_id)
    return dict(row) if row is not None else None


def copy_claimed(job: dict) -> None:
    """Insert a job claimed in another queue into this one (a scratch queue), as the claim left it."""
    with transaction() as conn:
        conn.execute(
            "INSERT INTO jobs(id, kind, executor, payload, grp, label, state, run_id, created, started, heartbeat, "
            "worker, host, worker_pid, worker_token, attempts, note) VALUES (?,?,?,?,?,?, 'running', ?,?,?,?,?,?,?,?,?,?)",
            (job["id"], job["kind"], job["executor"], json.dumps(job["payload"], sort_keys=True), job["group"],
             job["label"], job["run_id"], job["created"], job["started"], time.time(), job["worker"], HOST,
             os.getpid(), proc_token(os.getpid()), job["attempts"], job["note"]))


def relay_progress(conn: sqlite3.Connection, job_id: int, attempt: int, fields: dict[str, Any]) -> float | None | bool:
    """Copy progress columns into a running attempt's row. Returns False when the attempt no longer runs,
    else the seconds left before a requested cancel is forced (None: no cancel requested)."""
    now = time.time()
    sets = assignments(fields)
    rows = conn.execute(
        f"UPDATE jobs SET {sets}{', ' if sets else ''}heartbeat=? WHERE id=? AND attempts=? AND state='running' "
        "RETURNING cancel_at, cancel_deadline", (*fields.values(), now, job_id, attempt)).fetchall()
    if not rows:
        return False
    cancel_at, deadline = rows[0]
    # A grace period, not a time: the caller's machine may have another clock.
    return None if cancel_at is None else max(0.0, (deadline or now) - now)


def request_cancel(conn: sqlite3.Connection, job_id: int, grace_s: float) -> None:
    """Cancel a running job in this queue, forced after ``grace_s`` seconds (relayed from another queue)."""
    now = time.time()
    conn.execute("UPDATE jobs SET cancel_at=?, cancel_deadline=? WHERE id=?", (now, now + grace_s, job_id))


def settle(job_id: int, attempt: int, wid: str, outcome: dict | None, failure: str | None) -> RunsToClose:
    """Record an attempt's outcome (columns copied from the queue it ran against), or, without one, treat
    it as a crashed job process. Returns the runs to close."""
    now = time.time()
    closed: RunsToClose = []
    with transaction() as conn:
        row = fetch_row(conn, job_id)
        if row["state"] == "running" and row["attempts"] == attempt:
            if outcome is not None and outcome["state"] != "running":
                conn.execute(f"UPDATE jobs SET {assignments(outcome)} WHERE id=?", (*outcome.values(), job_id))
            else:
                closed = after_crash(conn, row, failure or "its task ended without an outcome", now)
        conn.execute("UPDATE workers SET heartbeat=? WHERE id=?", (now, wid))
    return closed
