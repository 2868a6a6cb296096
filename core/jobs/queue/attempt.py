"""Inside a job's own process (``core.jobs.context``): its row, its progress and outcome, the cancel flag.

Every write is fenced by attempt: a process of an earlier attempt (one its worker lost
track of) can never overwrite a newer one.
"""
from __future__ import annotations

import json
import sqlite3
import time
from typing import Any, Mapping

from core.jobs.queue.errors import JobNotFound
from core.jobs.queue.schema import assignments, db_path, decode, fetch_row


def read_job(conn: sqlite3.Connection, job_id: int) -> dict:
    """The job, decoded as ``get_job`` has it (without progress); JobNotFound if there is none."""
    row = fetch_row(conn, job_id)
    if row is None:
        raise JobNotFound(f"No job {job_id} in {db_path()}")
    return decode(row)


def _update_attempt(conn: sqlite3.Connection, job_id: int, attempt: int, fields: Mapping[str, Any]) -> None:
    conn.execute(f"UPDATE jobs SET {assignments(fields)} WHERE id=? AND attempts=? AND state='running'",
                 (*fields.values(), job_id, attempt))


def set_run_id(conn: sqlite3.Connection, job_id: int, attempt: int, run_id: str) -> None:
    """Record the run the job writes (a resumed attempt reuses it)."""
    _update_attempt(conn, job_id, attempt, {"run_id": run_id})


def record_progress(conn: sqlite3.Connection, job_id: int, attempt: int, fields: Mapping[str, Any]) -> None:
    """Store progress columns (``epoch``, ``epochs``, ``batch``, ``batches``, ``eta_s``, ``metrics`` as a dict)."""
    values = {k: json.dumps(v) if k == "metrics" else v for k, v in fields.items()}
    _update_attempt(conn, job_id, attempt, {**values, "progress_at": time.time()})


def record_outcome(conn: sqlite3.Connection, job_id: int, attempt: int, state: str, *, error: str = "",
                   result: dict | None = None, note: str = "") -> None:
    """Store how the attempt ended: ``done``, ``failed`` or ``cancelled``, with its error, result and note."""
    _update_attempt(conn, job_id, attempt, {"state": state, "finished": time.time(), "error": error,
                                            "result": json.dumps(result) if result is not None else None,
                                            "note": note})


def cancel_requested_at(conn: sqlite3.Connection, job_id: int) -> float | None:
    """When the user asked to cancel the job (a time.time()), or None."""
    row = conn.execute("SELECT cancel_at FROM jobs WHERE id=?", (job_id,)).fetchone()
    return row[0] if row else None
