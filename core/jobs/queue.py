"""The job queue: a durable SQLite table beside the run store, and its public API.

Owns the schema, the registry of job kinds, submitting, reading (with a typed progress
record per job), cancelling, and the steps a worker takes on the queue: register, claim,
heartbeat, record a crash or an outcome. Workers (``core.jobs.worker``,
``core.jobs.ray_worker``) and the job's own process (``core.jobs.context``) go through
these functions; nothing else opens the database.

The queue is a SQLite table in ``artifacts/jobs.db`` rather than MLflow tags: claiming
a job must be an atomic compare-and-set (``UPDATE ... WHERE state='queued' RETURNING``
inside ``BEGIN IMMEDIATE``), progress is written several times a second, and the
dashboard polls it every second or two. SQLite in WAL mode gives all three with
millisecond reads that never wait for a writer; MLflow has no compare-and-set and its
tag writes are far heavier. Finished work itself (metrics, models) lives only in the
run store; a job row points at its run.

Recovery is by process identity, not only by timeout: each running job records its
worker's and its job process's pid and start time, so on the same machine a job whose
processes are both gone is resumed at once, and a job whose worker still lives is never
taken from it. Jobs of workers on other machines (a shared artifacts folder) are
recovered when their heartbeat is older than ``STALE_AFTER_S``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import sqlite3
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from core.configs import ConfigError, artifacts_dir

log = logging.getLogger(__name__)

RUNNABLE: tuple[str, ...] = ("queued", "interrupted")  # interrupted = waiting to resume from its checkpoint
MAX_ATTEMPTS = 3  # a job whose process dies this many times stays failed
STALE_AFTER_S = float(os.environ.get("EMOTION_LAB_STALE_AFTER_S", "30"))
CANCEL_GRACE_S = 30.0  # cooperative cancel gets this long before the job's process is killed
IDLE_EXIT_S = 600.0  # a worker started for the dashboard goes away after this long without work
HEARTBEAT_S = 1.0
PROGRESS_EVERY_S = 0.5  # progress writes per job, at most two a second
LOG_TAIL_LINES = 50

HOST = socket.gethostname()


class JobError(ConfigError):
    """A job could not be submitted: unknown kind or a malformed payload."""


class JobNotFound(KeyError):
    """No job with that id."""


class JobCancelled(Exception):
    """Raised inside a job when the user cancelled it; the job ends as 'cancelled'."""


@dataclass(frozen=True)
class JobKind:
    """A kind of job: how to check its payload, and which function runs it."""

    name: str
    executor: str  # "core.module:function", imported in the job's own process
    validate: Callable[[Any], tuple[dict, str]]  # payload -> (normalised payload, label)
    units: tuple[str, str, str, str] = ("epoch", "epochs", "batch", "batches")  # what its progress counts


_KINDS: dict[str, JobKind] = {}


def register_kind(name: str, executor: Callable | str, validate: Callable[[Any], tuple[dict, str]] | None = None,
                  units: tuple[str, str, str, str] = ("epoch", "epochs", "batch", "batches")) -> None:
    """Add a kind of job. ``executor(ctx: JobContext) -> dict | None`` runs it; its result is stored.

    The executor is recorded on each job by import path and imported in the job's own
    process, so it must be a module-level function of the ``core`` package (a row in the
    database can then never make the worker import anything else).
    """
    path = executor if isinstance(executor, str) else f"{executor.__module__}:{executor.__qualname__}"
    if not allowed_executor(path):
        raise JobError(f"executor must be a module-level function of the core package. Received: executor={path!r}")
    _KINDS[name] = JobKind(name, path, validate or _validate_mapping, units)


def kind_names() -> list[str]:
    """Names of the registered job kinds."""
    return sorted(_KINDS)


def units(kind: str) -> tuple[str, str, str, str]:
    """What a job of ``kind`` counts its progress in: unit, units, part, parts (``epoch, epochs, batch, batches``)."""
    spec = _KINDS.get(kind)
    return spec.units if spec is not None else ("step", "steps", "part", "parts")


def allowed_executor(path: str) -> bool:
    """True for a module-level function path of the core package (``core.module:function``)."""
    module, _, attr = path.partition(":")
    return module.startswith("core.") and bool(attr) and "<" not in attr


def _validate_mapping(payload: Any) -> tuple[dict, str]:
    if not isinstance(payload, dict):
        raise JobError(f"payload: expected a dict. Received: payload={payload!r}")
    return payload, ""


# ------------------------------------------------------------------ database

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
_READY: set[str] = set()


JOBS_DB_ENV = "EMOTION_LAB_JOBS_DB"  # overrides db_path(): core.jobs.ray_worker runs a job against a scratch copy of its row


def db_path() -> Path:
    """The queue's SQLite file, next to the MLflow store (or ``EMOTION_LAB_JOBS_DB``)."""
    override = os.environ.get(JOBS_DB_ENV)
    return Path(override) if override else artifacts_dir() / "jobs.db"


def connect() -> sqlite3.Connection:
    path = db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Autocommit mode: every write below is one statement or an explicit BEGIN IMMEDIATE.
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


def decode(row: sqlite3.Row) -> dict:
    d = dict(row)
    d["group"] = d.pop("grp")
    for key in ("payload", "metrics", "result"):
        d[key] = json.loads(d[key]) if d.get(key) else ({} if key != "result" else None)
    return d


# ------------------------------------------------------------------ process identity

_HAVE_PROC = Path("/proc/self/stat").exists()


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


_BOOT_ID = _boot_id()


def proc_token(pid: int | None) -> str | None:
    """An identity for a live process (boot + start time), or None if it is gone.

    A pid alone is not enough: after a reboot or a long time the number is reused.
    Zombies count as gone: a killed worker whose parent has not reaped it yet is dead.
    """
    if not pid:
        return None
    if not _HAVE_PROC:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return f"pid:{pid}"
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return f"{_BOOT_ID}:{fields[19]}"


def same_process_alive(host: str | None, pid: int | None, token: str | None) -> bool:
    return host == HOST and token is not None and proc_token(pid) == token


def worker_alive(w: sqlite3.Row | dict, now: float, stale_after: float) -> bool:
    if w["host"] == HOST:
        return same_process_alive(w["host"], w["pid"], w["token"])
    return now - w["heartbeat"] < stale_after


# ------------------------------------------------------------------ submitting


def _prepare(kind: str, payload: Any, group: str, key: str | None) -> tuple:
    spec = _KINDS.get(kind)
    if spec is None:
        raise JobError(f"Unknown job kind {kind!r}; expected one of {kind_names()}")
    payload, label = spec.validate(payload)
    body = json.dumps(payload, sort_keys=True)
    # The key names one user action (a click, a form submission); the payload hash makes
    # a reused key with different settings a different job rather than a silent no-op.
    idem = None if key is None else f"{key}:{hashlib.sha256(f'{kind}|{body}'.encode()).hexdigest()[:16]}"
    return kind, spec.executor, body, group or "", label, idem


def _insert(rows: list[tuple]) -> list[int]:
    now = time.time()
    ids = []
    with transaction() as conn:  # one transaction: a grid is queued whole or not at all
        for kind, executor, body, group, label, idem in rows:
            # Looked up first (the write lock is held) rather than INSERT OR IGNORE, which
            # would burn an id on every duplicate.
            got = conn.execute("SELECT id FROM jobs WHERE idem_key=?", (idem,)).fetchall() if idem else []
            if not got:
                got = conn.execute(
                    "INSERT INTO jobs(kind, executor, payload, grp, label, idem_key, created) VALUES (?,?,?,?,?,?,?) "
                    "RETURNING id", (kind, executor, body, group, label, idem, now)).fetchall()
            ids.append(int(got[0][0]))
    return ids


def submit(kind: str, payload: dict, *, group: str = "", key: str | None = None) -> int:
    """Queue one job and return its id.

    ``key`` makes submitting idempotent: the same key with the same kind and payload
    (a double click, two browser tabs) returns the existing job instead of a new one.
    Raises JobError (a ConfigError) naming the bad kind or payload value.
    """
    return _insert([_prepare(kind, payload, group, key)])[0]


def submit_many(kind: str, payloads: list[dict], *, group: str = "", key: str | None = None) -> list[int]:
    """Queue several jobs of one kind atomically (all or none), in order; ``key`` as in ``submit``."""
    if not payloads:
        raise JobError(f"submit_many: expected at least one {kind} payload. Received: payloads=[]")
    return _insert([_prepare(kind, p, group, None if key is None else f"{key}/{i}") for i, p in enumerate(payloads)])


# ------------------------------------------------------------------ reading

JOB_COLUMNS: list[str] = [
    "id", "kind", "state", "group", "label", "run_id", "progress", "metrics", "created", "started", "finished",
    "heartbeat_age_s", "attempts", "note", "error", "log_tail", "cancel_requested",
]


@dataclass(frozen=True)
class Progress:
    """How far a job has got, in its kind's units: epochs and batches, or generations and individuals.

    ``done`` counts finished units (``part_done`` the finished parts of the unit in
    progress); a count not reported yet is 0 and a total not known yet is None.
    """

    unit: str
    done: int
    total: int | None
    part_unit: str
    part_done: int
    part_total: int | None
    eta_s: float | None

    @classmethod
    def from_row(cls, kind: str, row: Any) -> Progress:
        """The progress stored in a job row (a ``sqlite3.Row`` or a dict) for a job of ``kind``."""
        unit, _, part, _ = units(kind)

        def count(key: str) -> int | None:
            return None if row[key] is None else int(row[key])

        eta = row["eta_s"]
        return cls(unit, count("epoch") or 0, count("epochs") or None, part, count("batch") or 0,
                   count("batches") or None, None if eta is None else float(eta))

    @property
    def started(self) -> bool:
        """True once the job has reported how many units it will run."""
        return bool(self.total)

    @property
    def fraction(self) -> float:
        """Share of the job done, in [0, 1]."""
        if not self.total:
            return 0.0
        part = self.part_done / self.part_total if self.part_total else 0.0
        return min(1.0, (self.done + part) / self.total)

    def describe(self) -> str:
        """``epoch 2/3, batch 14/88, about 40 s left`` (the unit in progress is counted from 1)."""
        if not self.total:
            return "starting"
        if self.done >= self.total:
            return f"all {self.unit}s done; finishing"
        parts = f", {self.part_unit} {self.part_done}/{self.part_total}" if self.part_total else ""
        eta = f", about {self.eta_s:.0f} s left" if self.eta_s else ""
        return f"{self.unit} {self.done + 1}/{self.total}{parts}{eta}"


def get_job(job_id: int) -> dict:
    """Everything about one job; ``payload``, ``metrics`` and ``result`` are decoded."""
    with closing(connect()) as conn:
        row = conn.execute("SELECT * FROM jobs WHERE id=?", (int(job_id),)).fetchone()
    if row is None:
        raise JobNotFound(f"No job {job_id} in {db_path()}")
    d = decode(row)
    d["progress"] = Progress.from_row(d["kind"], row)
    d["heartbeat_age_s"] = time.time() - d["heartbeat"] if d["state"] == "running" and d["heartbeat"] else None
    return d


def list_jobs(limit: int = 200, group: str | None = None):
    """Newest jobs first, one row each, with the columns in ``JOB_COLUMNS``.

    ``progress`` is a ``Progress`` record in the job kind's units; ``metrics`` is a JSON
    object of the latest values; times are UTC.
    """
    import pandas as pd

    sql = ("SELECT id, kind, state, grp AS 'group', label, run_id, epoch, epochs, batch, batches, metrics, eta_s, "
           "created, started, finished, heartbeat, attempts, note, error, log_tail, cancel_at FROM jobs")
    args: tuple = ()
    if group is not None:
        sql, args = sql + " WHERE grp=?", (group,)
    with closing(connect()) as conn:
        cur = conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, int(limit)))
        rows = cur.fetchall()
    now = time.time()
    df = pd.DataFrame([tuple(r) for r in rows], columns=[c[0] for c in cur.description])
    # Built from the rows, not the frame: a column with some NULLs turns into floats and NaN there.
    df["progress"] = pd.Series([Progress.from_row(r["kind"], r) for r in rows], index=df.index, dtype=object)
    df["heartbeat_age_s"] = (now - df["heartbeat"].astype(float)).where(df["state"] == "running")
    df["cancel_requested"] = df.pop("cancel_at").notna()
    for col in ("created", "started", "finished"):
        df[col] = pd.to_datetime(df[col].astype(float), unit="s", utc=True)
    for col in ("note", "error", "log_tail", "metrics"):
        df[col] = df[col].fillna("")
    return df.reindex(columns=JOB_COLUMNS)


def worker_status(stale_after_s: float = STALE_AFTER_S) -> dict:
    """Whether a worker is alive: ``alive``, ``pid``, ``host``, ``job_id``, ``heartbeat_age_s``, ``workers``."""
    with closing(connect()) as conn:
        rows = conn.execute("SELECT * FROM workers ORDER BY started").fetchall()
    now = time.time()
    live = [{**dict(w), "heartbeat_age_s": now - w["heartbeat"]} for w in rows if worker_alive(w, now, stale_after_s)]
    first = live[0] if live else {}
    return {"alive": bool(live), "pid": first.get("pid"), "host": first.get("host"), "job_id": first.get("job_id"),
            "heartbeat_age_s": first.get("heartbeat_age_s"), "workers": live}


# ------------------------------------------------------------------ cancelling


def cancel(job_id: int, *, grace_s: float = CANCEL_GRACE_S) -> str:
    """Cancel a job. Returns its state afterwards: 'cancelled', or 'running' while it stops.

    A queued job is cancelled at once. A running job stops at its next batch; if it has
    not stopped ``grace_s`` seconds later, its worker kills the job's process.
    """
    now = time.time()
    with transaction() as conn:
        row = conn.execute("SELECT state, run_id FROM jobs WHERE id=?", (int(job_id),)).fetchone()
        if row is None:
            raise JobNotFound(f"No job {job_id} in {db_path()}")
        state = row["state"]
        if state in RUNNABLE:
            note = "cancelled before it started" if state == "queued" else "cancelled while waiting to resume"
            conn.execute("UPDATE jobs SET state='cancelled', finished=?, cancel_at=?, note=? WHERE id=?",
                         (now, now, note, int(job_id)))
            state = "cancelled"
        elif state == "running":
            conn.execute("UPDATE jobs SET cancel_at=COALESCE(cancel_at, ?), cancel_deadline=? WHERE id=?",
                         (now, now + grace_s, int(job_id)))
    if state == "cancelled" and row["state"] == "interrupted" and row["run_id"]:
        from core.train import runs  # the run store is loaded only when a run must be closed

        runs.close_runs([(row["run_id"], "KILLED", "cancelled by user")])
    return state


# ------------------------------------------------------------------ the worker's steps


def register_worker(slots: int, stale_after_s: float) -> str | None:
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


def claim(wid: str, stale_after_s: float) -> tuple[dict | None, list]:
    """Recover jobs of dead workers, then take the oldest runnable job (interrupted ones first)."""
    now = time.time()
    with transaction() as conn:
        closed = []
        for row in conn.execute("SELECT * FROM jobs WHERE state='running'").fetchall():
            if row["host"] == HOST:
                if (same_process_alive(HOST, row["worker_pid"], row["worker_token"])
                        or same_process_alive(HOST, row["pid"], row["pid_token"])):
                    continue
                reason = f"its worker (pid {row['worker_pid']}) died"
            else:
                if row["heartbeat"] and now - row["heartbeat"] < stale_after_s:
                    continue
                reason = f"its worker on {row['host']} stopped sending heartbeats"
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


def after_crash(conn: sqlite3.Connection, row: sqlite3.Row, reason: str, now: float) -> list[tuple[str, str, str]]:
    """A job's process died without recording an outcome: resume it, or give up after MAX_ATTEMPTS."""
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




def set_worker_state(wid: str, state: str, job_id: int | None = None) -> None:
    """A worker's heartbeat: ``idle`` or ``busy`` (with the job it runs)."""
    with closing(connect()) as conn:
        conn.execute("UPDATE workers SET heartbeat=?, job_id=?, state=? WHERE id=?", (time.time(), job_id, state, wid))


def unregister_worker(wid: str) -> None:
    """The worker is exiting: it no longer counts as alive."""
    with closing(connect()) as conn:
        conn.execute("DELETE FROM workers WHERE id=?", (wid,))


def interrupt(jobs: list[tuple[int, int]], log_tail: str | None = None) -> None:
    """Its worker is stopping: each ``(job_id, attempt)`` still running waits to resume, the attempt not counted."""
    with transaction() as conn:
        for jid, attempt in jobs:
            conn.execute("UPDATE jobs SET state='interrupted', attempts=attempts-1, log_tail=COALESCE(?, log_tail), "
                         "note='interrupted: its worker was stopped; it resumes from its last checkpoint' "
                         "WHERE id=? AND attempts=? AND state='running'", (log_tail, jid, attempt))


# ------------------------------------------------------------------ a job run elsewhere (core.jobs.ray_worker)


def job_row(job_id: int, conn: sqlite3.Connection | None = None) -> dict | None:
    """The job's raw row (undecoded columns), or None."""
    if conn is not None:
        row = conn.execute("SELECT * FROM jobs WHERE id=?", (int(job_id),)).fetchone()
    else:
        with closing(connect()) as own:
            row = own.execute("SELECT * FROM jobs WHERE id=?", (int(job_id),)).fetchone()
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
    sets = ", ".join(f"{k}=?" for k in fields)
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


def settle(job_id: int, attempt: int, wid: str, outcome: dict | None, failure: str | None) -> list[tuple[str, str, str]]:
    """Record an attempt's outcome (columns copied from the queue it ran against), or, without one, treat
    it as a crashed job process. Returns the runs to close."""
    now = time.time()
    closed: list = []
    with transaction() as conn:
        row = conn.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row["state"] == "running" and row["attempts"] == attempt:
            if outcome is not None and outcome["state"] != "running":
                conn.execute(f"UPDATE jobs SET {', '.join(f'{c}=?' for c in outcome)} WHERE id=?",
                             (*outcome.values(), job_id))
            else:
                closed = after_crash(conn, row, failure or "its task ended without an outcome", now)
        conn.execute("UPDATE workers SET heartbeat=? WHERE id=?", (now, wid))
    return closed
