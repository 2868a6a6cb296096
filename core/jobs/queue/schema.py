"""The queue's database: where it lives, its tables, connections and transactions.

Also the states and timings every process sharing the database agrees on (workers,
job processes, the dashboard).
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

from core.configs import artifacts_dir

RUNNABLE: tuple[str, ...] = ("queued", "interrupted")  # interrupted = waiting to resume from its checkpoint
MAX_ATTEMPTS = 3  # a job whose process dies this many times stays failed
STALE_AFTER_S = float(os.environ.get("EMOTION_LAB_STALE_AFTER_S", "30"))
CANCEL_GRACE_S = 30.0  # cooperative cancel gets this long before the job's process is killed
IDLE_EXIT_S = 600.0  # a worker started for the dashboard goes away after this long without work
HEARTBEAT_S = 1.0
PROGRESS_EVERY_S = 0.5  # progress writes per job, at most two a second
LOG_TAIL_LINES = 50

JOBS_DB_ENV = "EMOTION_LAB_JOBS_DB"  # overrides db_path(): core.jobs.ray_worker runs a job against a scratch copy of its row

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    executor TEXT NOT NULL,
    payload TEXT NOT NULL,
    grp TEXT NOT NULL DEFAULT '',
    label TEXT NOT NULL DEFAULT '',
    idem_key TEXT UNIQUE,
    state TEXT NOT NULL DEFAULT 'queued',
    note TEXT NOT NULL DEFAULT '',
    run_id TEXT,
    epoch INTEGER, epochs INTEGER, batch INTEGER, batches INTEGER,
    metrics TEXT, eta_s REAL, progress_at REAL,
    created REAL NOT NULL, started REAL, finished REAL, heartbeat REAL,
    worker TEXT, host TEXT, worker_pid INTEGER, worker_token TEXT, pid INTEGER, pid_token TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_at REAL, cancel_deadline REAL,
    error TEXT NOT NULL DEFAULT '',
    log_path TEXT, log_tail TEXT NOT NULL DEFAULT '',
    result TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state, id);
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL, pid INTEGER NOT NULL, token TEXT,
    started REAL NOT NULL, heartbeat REAL NOT NULL,
    job_id INTEGER, state TEXT NOT NULL DEFAULT 'idle', log_path TEXT
);
"""
# The columns a statement may name from a caller's mapping (names are spliced into SQL, values never are).
JOB_FIELDS: frozenset[str] = frozenset((
    "run_id", "state", "note", "epoch", "epochs", "batch", "batches", "metrics", "eta_s", "progress_at", "finished",
    "pid", "pid_token", "error", "log_path", "log_tail", "result",
))
_READY: set[str] = set()


def db_path() -> Path:
    """The queue's SQLite file, next to the MLflow store (or ``EMOTION_LAB_JOBS_DB``)."""
    override = os.environ.get(JOBS_DB_ENV)
    return Path(override) if override else artifacts_dir() / "jobs.db"


def connect() -> sqlite3.Connection:
    """A connection to the queue, created (schema and WAL mode) on first use in this process."""
    path = db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Autocommit mode: every write is one statement or an explicit BEGIN IMMEDIATE.
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout=30000")
    if str(path) not in _READY:
        _initialise(conn)
        _READY.add(str(path))
    return conn


def _initialise(conn: sqlite3.Connection, patience_s: float = 30.0) -> None:
    # WAL: readers never wait for the job that is writing progress, and vice versa.
    # Switching a new file to WAL while another process does the same can fail with
    # "database is locked" at once, without SQLite's busy handler ever waiting, so
    # processes that meet at a fresh queue retry here instead of failing the submit.
    deadline = time.monotonic() + patience_s
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            return
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


@contextmanager
def transaction(conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE: takes the write lock up front, so read-then-write steps cannot interleave."""
    own = conn is None
    conn = conn or connect()
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        if own:
            conn.close()


def fetch_row(conn: sqlite3.Connection, job_id: int) -> sqlite3.Row | None:
    """The job's row as stored (JSON columns undecoded), or None."""
    return conn.execute("SELECT * FROM jobs WHERE id=?", (int(job_id),)).fetchone()


def decode(row: sqlite3.Row | Mapping[str, Any]) -> dict:
    """A job row for callers: ``grp`` as ``group``; ``payload``, ``metrics`` and ``result`` decoded."""
    d = dict(row)
    d["group"] = d.pop("grp")
    for key in ("payload", "metrics", "result"):
        d[key] = json.loads(d[key]) if d.get(key) else ({} if key != "result" else None)
    return d


def assignments(fields: Mapping[str, Any]) -> str:
    """``a=?, b=?`` for an UPDATE of these job columns; ValueError for a name that is not one."""
    unknown = set(fields) - JOB_FIELDS
    if unknown:
        raise ValueError(f"not job columns a caller may set: {sorted(unknown)}")
    return ", ".join(f"{k}=?" for k in fields)
