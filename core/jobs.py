"""Background jobs: a durable queue beside the run store, and the worker that runs it.

Training never runs in the dashboard's process. The dashboard (or ``python -m core
submit``) puts a job in the queue and makes sure a worker is alive; the worker claims
jobs one at a time and runs each in a process of its own, so a job that crashes, runs
out of memory or is cancelled by force takes nothing else down, and the accelerator's
memory is returned to the system after every job.

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
import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

from core.config import PROJECT_ROOT, ConfigError, RunConfig, artifacts_dir, data_dir

log = logging.getLogger(__name__)

STATES: tuple[str, ...] = ("queued", "running", "done", "failed", "cancelled", "interrupted")
RUNNABLE: tuple[str, ...] = ("queued", "interrupted")  # interrupted = waiting to resume from its checkpoint
ACTIVE: tuple[str, ...] = ("queued", "running", "interrupted")
FINAL: tuple[str, ...] = ("done", "failed", "cancelled")
MAX_ATTEMPTS = 3  # a job whose process dies this many times stays failed
STALE_AFTER_S = float(os.environ.get("EMOTION_LAB_STALE_AFTER_S", "30"))
CANCEL_GRACE_S = 30.0  # cooperative cancel gets this long before the job's process is killed
IDLE_EXIT_S = 600.0  # a worker started for the dashboard goes away after this long without work
HEARTBEAT_S = 1.0
PROGRESS_EVERY_S = 0.5  # progress writes per job, at most two a second
LOG_TAIL_LINES = 50

JOB_COLUMNS: list[str] = [
    "id", "kind", "state", "group", "label", "run_id", "epoch", "epochs", "batch", "batches", "metrics", "eta_s",
    "created", "started", "finished", "heartbeat_age_s", "attempts", "note", "error", "log_tail",
    "cancel_requested",
]

HOST = socket.gethostname()


class JobError(ConfigError):
    """A job could not be submitted: unknown kind or a malformed payload."""


class JobNotFound(KeyError):
    """No job with that id."""


class JobCancelled(Exception):
    """Raised inside a job when the user cancelled it; the job ends as 'cancelled'."""


# ------------------------------------------------------------------ kinds


@dataclass(frozen=True)
class JobKind:
    """A kind of job: how to check its payload, and which function runs it."""

    name: str
    executor: str  # "core.module:function", imported in the job's own process
    validate: Callable[[Any], tuple[dict, str]]  # payload -> (normalised payload, label)


_KINDS: dict[str, JobKind] = {}


def register_kind(name: str, executor: Callable | str, validate: Callable[[Any], tuple[dict, str]] | None = None) -> None:
    """Add a kind of job. ``executor(ctx: JobContext) -> dict | None`` runs it; its result is stored.

    The executor is recorded on each job by import path and imported in the job's own
    process, so it must be a module-level function of the ``core`` package (a row in the
    database can then never make the worker import anything else).
    """
    path = executor if isinstance(executor, str) else f"{executor.__module__}:{executor.__qualname__}"
    if not _allowed_executor(path):
        raise JobError(f"executor must be a module-level function of the core package. Received: executor={path!r}")
    _KINDS[name] = JobKind(name, path, validate or _validate_mapping)


def kinds() -> list[str]:
    """Names of the registered job kinds."""
    return sorted(_KINDS)


def _allowed_executor(path: str) -> bool:
    module, _, attr = path.partition(":")
    return module.startswith("core.") and bool(attr) and "<" not in attr


def _validate_mapping(payload: Any) -> tuple[dict, str]:
    if not isinstance(payload, dict):
        raise JobError(f"payload: expected a dict. Received: payload={payload!r}")
    return payload, ""


def _validate_train(payload: Any) -> tuple[dict, str]:
    if not isinstance(payload, dict) or "config" not in payload:
        raise JobError(f"train payload: expected {{'config': RunConfig.to_dict()}}. Received: payload={payload!r}")
    cfg = payload["config"]
    cfg = cfg.validate() if isinstance(cfg, RunConfig) else RunConfig.from_dict(cfg)
    return {"config": cfg.to_dict()}, f"{cfg.model.arch}/{cfg.variant} on {cfg.data.dataset}"


def _validate_evaluate(payload: Any) -> tuple[dict, str]:
    if not isinstance(payload, dict):
        raise JobError(f"evaluate payload: expected {{'run_id': ..., 'dataset': ...}}. Received: payload={payload!r}")
    for field in ("run_id", "dataset"):
        if not isinstance(payload.get(field), str) or not payload[field]:
            raise JobError(f"evaluate payload: {field} must be a non-empty string. Received: {field}={payload.get(field)!r}")
    return {"run_id": payload["run_id"], "dataset": payload["dataset"]}, \
        f"evaluate {payload['run_id'][:8]} on {payload['dataset']}"


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


JOBS_DB_ENV = "EMOTION_LAB_JOBS_DB"  # overrides db_path(): core.cluster runs a job against a scratch copy of its row


def db_path() -> Path:
    """The queue's SQLite file, next to the MLflow store (or ``EMOTION_LAB_JOBS_DB``)."""
    override = os.environ.get(JOBS_DB_ENV)
    return Path(override) if override else artifacts_dir() / "jobs.db"


def _connect() -> sqlite3.Connection:
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
def _transaction(conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE: takes the write lock up front, so read-then-write steps cannot interleave."""
    own = conn is None
    conn = conn or _connect()
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


def _decode(row: sqlite3.Row) -> dict:
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


def _same_process_alive(host: str | None, pid: int | None, token: str | None) -> bool:
    return host == HOST and token is not None and proc_token(pid) == token


def _worker_alive(w: sqlite3.Row | dict, now: float, stale_after: float) -> bool:
    if w["host"] == HOST:
        return _same_process_alive(w["host"], w["pid"], w["token"])
    return now - w["heartbeat"] < stale_after


# ------------------------------------------------------------------ submitting


def _prepare(kind: str, payload: Any, group: str, key: str | None) -> tuple:
    spec = _KINDS.get(kind)
    if spec is None:
        raise JobError(f"Unknown job kind {kind!r}; expected one of {kinds()}")
    payload, label = spec.validate(payload)
    body = json.dumps(payload, sort_keys=True)
    # The key names one user action (a click, a form submission); the payload hash makes
    # a reused key with different settings a different job rather than a silent no-op.
    idem = None if key is None else f"{key}:{hashlib.sha256(f'{kind}|{body}'.encode()).hexdigest()[:16]}"
    return kind, spec.executor, body, group or "", label, idem


def _insert(rows: list[tuple]) -> list[int]:
    now = time.time()
    ids = []
    with _transaction() as conn:  # one transaction: a grid is queued whole or not at all
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


def submit_train(cfg: RunConfig, key: str | None = None) -> int:
    """Queue training of one configuration."""
    return submit("train", {"config": cfg}, group=cfg.group, key=key)


def submit_grid(configs: list[RunConfig], group: str, key: str | None = None) -> list[int]:
    """Queue a comparison grid atomically: one training job per configuration, all in ``group``."""
    if not configs:
        raise JobError("submit_grid: expected at least one configuration. Received: configs=[]")
    rows = [_prepare("train", {"config": replace(cfg, group=group)}, group, None if key is None else f"{key}/{i}")
            for i, cfg in enumerate(configs)]
    return _insert(rows)


def submit_evaluate(run_id: str, dataset: str, key: str | None = None) -> int:
    """Queue evaluation of a stored run's model on another dataset's test split."""
    return submit("evaluate", {"run_id": run_id, "dataset": dataset}, key=key)


# ------------------------------------------------------------------ reading


def get_job(job_id: int) -> dict:
    """Everything about one job; ``payload``, ``metrics`` and ``result`` are decoded."""
    with closing(_connect()) as conn:
        row = conn.execute("SELECT * FROM jobs WHERE id=?", (int(job_id),)).fetchone()
    if row is None:
        raise JobNotFound(f"No job {job_id} in {db_path()}")
    d = _decode(row)
    d["heartbeat_age_s"] = time.time() - d["heartbeat"] if d["state"] == "running" and d["heartbeat"] else None
    return d


def list_jobs(limit: int = 200, group: str | None = None):
    """Newest jobs first, one row each, with the columns in ``JOB_COLUMNS``.

    ``epoch`` counts finished epochs and ``batch`` the finished batches of the epoch in
    progress; ``metrics`` is a JSON object of the latest values; times are UTC.
    """
    import pandas as pd

    sql = ("SELECT id, kind, state, grp AS 'group', label, run_id, epoch, epochs, batch, batches, metrics, eta_s, "
           "created, started, finished, heartbeat, attempts, note, error, log_tail, cancel_at FROM jobs")
    args: tuple = ()
    if group is not None:
        sql, args = sql + " WHERE grp=?", (group,)
    with closing(_connect()) as conn:
        cur = conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, int(limit)))
        rows = cur.fetchall()
    now = time.time()
    df = pd.DataFrame([tuple(r) for r in rows], columns=[c[0] for c in cur.description])
    df["heartbeat_age_s"] = (now - df["heartbeat"].astype(float)).where(df["state"] == "running")
    df["cancel_requested"] = df.pop("cancel_at").notna()
    for col in ("created", "started", "finished"):
        df[col] = pd.to_datetime(df[col].astype(float), unit="s", utc=True)
    for col in ("note", "error", "log_tail", "metrics"):
        df[col] = df[col].fillna("")
    return df.reindex(columns=JOB_COLUMNS)


def worker_status(stale_after_s: float = STALE_AFTER_S) -> dict:
    """Whether a worker is alive: ``alive``, ``pid``, ``host``, ``job_id``, ``heartbeat_age_s``, ``workers``."""
    with closing(_connect()) as conn:
        rows = conn.execute("SELECT * FROM workers ORDER BY started").fetchall()
    now = time.time()
    live = [{**dict(w), "heartbeat_age_s": now - w["heartbeat"]} for w in rows if _worker_alive(w, now, stale_after_s)]
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
    with _transaction() as conn:
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
        _close_runs([(row["run_id"], "KILLED", "cancelled by user")])
    return state


def _close_runs(runs: list[tuple[str, str, str]]) -> None:
    """Mark runs whose job ended outside the training loop (killed, given up) in the run store."""
    if not runs:
        return
    import shutil

    from core.tracking import RunStore

    store = RunStore()
    for run_id, status, message in runs:
        try:
            store.finish(run_id, status, error=message)
        except Exception as exc:  # the job's state is what matters; the run store may be unreachable
            log.warning("could not mark run %s %s: %s", run_id, status, exc)
        if status == "KILLED":  # a cancelled run is never resumed; same folder as training.checkpoint_dir
            shutil.rmtree(artifacts_dir() / "checkpoints" / run_id, ignore_errors=True)


# ------------------------------------------------------------------ starting a worker


def _child_env() -> dict[str, str]:
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
        if worker_status()["alive"]:
            return None
        with closing(_connect()) as conn:
            pending = conn.execute("SELECT 1 FROM jobs WHERE state IN ('queued','interrupted','running') LIMIT 1").fetchone()
        if pending is None:
            return None
        logs = artifacts_dir() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        tmp = logs / f"worker-starting-{os.getpid()}-{time.time_ns()}.log"
        with open(tmp, "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "core", "worker", "--exit-when-idle", str(idle_exit_s)],
                                    cwd=PROJECT_ROOT, env=_child_env(), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        log_path = logs / f"worker-{proc.pid}.log"
        os.replace(tmp, log_path)
        # Reap it when it exits, so a long-lived caller (Streamlit) collects no zombies.
        threading.Thread(target=proc.wait, daemon=True).start()
        # Registered before the lock is released: a second caller sees it as alive.
        now = time.time()
        with _transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO workers(id, host, pid, token, started, heartbeat, state, log_path) "
                         "VALUES (?,?,?,?,?,?, 'starting', ?)",
                         (f"{HOST}:{proc.pid}", HOST, proc.pid, proc_token(proc.pid), now, now, str(log_path)))
    return proc.pid


# ------------------------------------------------------------------ the worker


def run_worker(*, max_jobs: int | None = None, exit_when_idle: float | None = None, slots: int = 1,
               poll_s: float = 1.0, stale_after_s: float = STALE_AFTER_S, echo: Callable[[str], None] | None = None) -> int:
    """Claim and run jobs one at a time until stopped. Returns a process exit code.

    ``slots`` is how many workers may run on this machine at once (one per accelerator;
    start each with its own CUDA_VISIBLE_DEVICES). A worker finding them all taken exits.
    """
    echo = echo or _print
    wid = _register_worker(slots, stale_after_s)
    if wid is None:
        others = worker_status(stale_after_s)["workers"]
        echo(f"A worker is already running on this machine (pid {', '.join(str(w['pid']) for w in others)}); "
             "not starting another.")
        return 0
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops like Ctrl-C
    echo(f"worker {os.getpid()} on {HOST}: waiting for jobs in {db_path()}")
    done, idle_since = 0, time.monotonic()
    try:
        while max_jobs is None or done < max_jobs:
            job, closed = _claim(wid, stale_after_s)
            _close_runs(closed)
            if job is None:
                if exit_when_idle is not None and time.monotonic() - idle_since >= exit_when_idle:
                    break
                with closing(_connect()) as conn:
                    conn.execute("UPDATE workers SET heartbeat=?, job_id=NULL, state='idle' WHERE id=?", (time.time(), wid))
                time.sleep(poll_s)
                continue
            _supervise(job, wid, echo)
            done += 1
            idle_since = time.monotonic()
    except KeyboardInterrupt:
        echo(f"worker {os.getpid()}: stopped; unfinished jobs resume from their last checkpoint")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        with closing(_connect()) as conn:
            conn.execute("DELETE FROM workers WHERE id=?", (wid,))
    echo(f"worker {os.getpid()}: exiting after {done} job(s)")
    return 0


def _print(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


def _register_worker(slots: int, stale_after_s: float) -> str | None:
    wid, now = f"{HOST}:{os.getpid()}", time.time()
    with _transaction() as conn:
        live = 0
        for w in conn.execute("SELECT * FROM workers WHERE id != ?", (wid,)).fetchall():
            if not _worker_alive(w, now, stale_after_s):
                conn.execute("DELETE FROM workers WHERE id=?", (w["id"],))
            elif w["host"] == HOST:
                live += 1
        if live >= slots:
            return None
        conn.execute("INSERT OR REPLACE INTO workers(id, host, pid, token, started, heartbeat, state, log_path) "
                     "VALUES (?,?,?,?,?,?, 'idle', (SELECT log_path FROM workers WHERE id=?))",
                     (wid, HOST, os.getpid(), proc_token(os.getpid()), now, now, wid))
    return wid


def _claim(wid: str, stale_after_s: float) -> tuple[dict | None, list]:
    """Recover jobs of dead workers, then take the oldest runnable job (interrupted ones first)."""
    now = time.time()
    with _transaction() as conn:
        closed = []
        for row in conn.execute("SELECT * FROM jobs WHERE state='running'").fetchall():
            if row["host"] == HOST:
                if (_same_process_alive(HOST, row["worker_pid"], row["worker_token"])
                        or _same_process_alive(HOST, row["pid"], row["pid_token"])):
                    continue
                reason = f"its worker (pid {row['worker_pid']}) died"
            else:
                if row["heartbeat"] and now - row["heartbeat"] < stale_after_s:
                    continue
                reason = f"its worker on {row['host']} stopped sending heartbeats"
            closed += _after_crash(conn, row, reason, now)
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
    return (_decode(got[0]) if got else None), closed


def _after_crash(conn: sqlite3.Connection, row: sqlite3.Row, reason: str, now: float) -> list[tuple[str, str, str]]:
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


_JOB_PROCESS = "import sys; from core.jobs import _job_process_main; sys.exit(_job_process_main(*sys.argv[1:]))"


def _supervise(job: dict, wid: str, echo: Callable[[str], None]) -> None:
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
        proc = subprocess.Popen([sys.executable, "-c", _JOB_PROCESS, str(jid), str(attempt), str(os.getpid())],
                                cwd=PROJECT_ROOT, env=_child_env(), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    echo(f"job {jid} ({job['kind']}: {job['label']}): started, attempt {attempt}, process {proc.pid}")
    forced: float | None = None
    beat, tail_size, shown = 0.0, -1, None
    with closing(_connect()) as conn:
        conn.execute("UPDATE jobs SET pid=?, pid_token=?, log_path=? WHERE id=? AND attempts=?",
                     (proc.pid, proc_token(proc.pid), str(log_path), jid, attempt))
        try:
            while proc.poll() is None:
                now = time.time()
                if now - beat >= HEARTBEAT_S:
                    beat = now
                    # fetchall: a RETURNING statement left half-read would keep its write open.
                    rows = conn.execute("UPDATE jobs SET heartbeat=? WHERE id=? AND attempts=? RETURNING *",
                                        (now, jid, attempt)).fetchall()
                    row = rows[0] if rows else None
                    conn.execute("UPDATE workers SET heartbeat=? WHERE id=?", (now, wid))
                    if row is not None:
                        if row["cancel_deadline"] and now >= row["cancel_deadline"] and forced is None:
                            forced = now - row["cancel_at"]
                            _kill(proc)
                            continue
                        shown = _echo_progress(echo, row, shown)
                    size = log_path.stat().st_size
                    if size != tail_size:
                        tail_size = size
                        conn.execute("UPDATE jobs SET log_tail=? WHERE id=?", (_tail(log_path), jid))
                time.sleep(0.2)
        except BaseException:  # the worker is being stopped: stop the job, keep it resumable
            _kill(proc, graceful=True)
            conn.execute("UPDATE jobs SET state='interrupted', attempts=attempts-1, log_tail=?, "
                         "note='interrupted: its worker was stopped; it resumes from its last checkpoint' "
                         "WHERE id=? AND attempts=? AND state='running'", (_tail(log_path), jid, attempt))
            raise
    now = time.time()
    closed: list = []
    with _transaction() as conn:
        row = conn.execute("SELECT * FROM jobs WHERE id=?", (jid,)).fetchone()
        if row["state"] == "running" and row["attempts"] == attempt:
            if forced is not None:
                conn.execute("UPDATE jobs SET state='cancelled', finished=?, note=? WHERE id=?",
                             (now, f"cancelled: stopped forcefully, {forced:.0f} s after the request", jid))
                closed = [(row["run_id"], "KILLED", "cancelled by user")] if row["run_id"] else []
            else:
                closed = _after_crash(conn, row, _exit_reason(proc.returncode), now)
        conn.execute("UPDATE jobs SET log_tail=? WHERE id=?", (_tail(log_path), jid))
        conn.execute("UPDATE workers SET job_id=NULL, state='idle', heartbeat=? WHERE id=?", (now, wid))
    _close_runs(closed)
    final = get_job(jid)
    echo(f"job {jid}: " + (f"failed: {final['error']}" if final["state"] == "failed" else final["note"] or final["state"]))


def _echo_progress(echo: Callable[[str], None], row: sqlite3.Row, shown: tuple | None) -> tuple | None:
    """One line per finished epoch on the worker's console (headless use)."""
    now_at = (row["epoch"], row["epochs"])
    if row["epoch"] and now_at != shown:
        metrics = json.loads(row["metrics"] or "{}")
        eta = f", about {row['eta_s']:.0f} s left" if row["eta_s"] else ""
        echo(f"job {row['id']}: epoch {row['epoch']}/{row['epochs']} "
             + " ".join(f"{k}={v:.4f}" for k, v in metrics.items()) + eta)
        return now_at
    return shown


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


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


# ------------------------------------------------------------------ inside the job's process


class JobContext:
    """What an executor gets: the job's payload, progress reporting and the cancel flag."""

    def __init__(self, job_id: int, attempt: int, parent_pid: int | None = None):
        self._conn = _connect()
        row = self._conn.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(f"No job {job_id} in {db_path()}")
        self.job = _decode(row)
        self.job_id, self.attempt, self.parent_pid = job_id, attempt, parent_pid
        self.payload: dict = self.job["payload"]
        self.run_id: str | None = self.job["run_id"]
        self._pending: dict[str, Any] = {}
        self._last_write = 0.0
        self._checked = 0.0
        self.cancel_at: float | None = None
        self._batch_ends: list[float] = []

    def _update(self, sql: str, args: tuple) -> None:
        # Fenced by attempt: a process of an earlier attempt can never overwrite a newer one.
        self._conn.execute(f"UPDATE jobs SET {sql} WHERE id=? AND attempts=? AND state='running'",
                           (*args, self.job_id, self.attempt))

    def set_run_id(self, run_id: str) -> str:
        """Record the run this job writes, as soon as it exists (a resumed attempt reuses it)."""
        self.run_id = run_id
        self._update("run_id=?", (run_id,))
        return run_id

    def progress(self, *, force: bool = False, **fields: Any) -> None:
        """Report ``epoch`` (epochs finished), ``epochs``, ``batch`` (batches finished in the epoch in
        progress), ``batches``, ``metrics`` (dict) and ``eta_s``. Throttled to PROGRESS_EVERY_S unless forced."""
        unknown = set(fields) - {"epoch", "epochs", "batch", "batches", "metrics", "eta_s"}
        if unknown:
            raise TypeError(f"progress(): unknown field(s) {sorted(unknown)}")
        self._pending.update(fields)
        now = time.monotonic()
        if not self._pending or (not force and now - self._last_write < PROGRESS_EVERY_S):
            return
        values = {k: json.dumps(v) if k == "metrics" else v for k, v in self._pending.items()}
        self._update(", ".join(f"{k}=?" for k in values) + ", progress_at=?", (*values.values(), time.time()))
        self._pending, self._last_write = {}, now

    def should_stop(self) -> bool:
        """True once the user has cancelled the job. Cheap enough to call after every batch."""
        if self.cancel_at is not None:
            return True
        now = time.monotonic()
        if now - self._checked < 0.05:
            return False
        self._checked = now
        if self.parent_pid and os.getppid() != self.parent_pid:
            os._exit(1)  # the worker is gone (no PR_SET_PDEATHSIG here); the next worker resumes the job
        row = self._conn.execute("SELECT cancel_at FROM jobs WHERE id=?", (self.job_id,)).fetchone()
        self.cancel_at = row[0] if row else None
        return self.cancel_at is not None

    def check_cancelled(self) -> None:
        """Raise JobCancelled if the user has cancelled the job (call between long steps)."""
        if self.should_stop():
            raise JobCancelled()

    def batch_ended(self) -> None:
        """Note a finished batch (to report how promptly a cancel took effect)."""
        self._batch_ends = [*self._batch_ends[-19:], time.time()]

    def keras_callback(self):
        """A Keras callback writing epoch/batch progress, latest metrics and an ETA to the job row."""
        return _progress_callback(self)

    def finish(self, state: str, *, error: str = "", result: dict | None = None) -> None:
        """Record the outcome (done, failed or cancelled); the job's process exits next."""
        self.progress(force=True)
        note = ""
        if state == "cancelled":
            late = sum(t >= (self.cancel_at or 0) for t in self._batch_ends)
            note = (f"cancelled: stopped {late} batch{'es' if late != 1 else ''} after the request"
                    if self._batch_ends else "cancelled before training started")
        elif state == "done" and self.attempt > 1:
            note = f"done after {self.attempt} attempts (resumed from its checkpoint)"
        self._update("state=?, finished=?, error=?, result=?, note=?",
                     (state, time.time(), error, json.dumps(result) if result is not None else None, note))


def _floats(logs: dict | None) -> dict[str, float]:
    out = {}
    for k, v in (logs or {}).items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            pass
    return out


def _progress_callback(ctx: JobContext):
    import keras

    class JobProgress(keras.callbacks.Callback):
        """Progress and an ETA from measured batch and validation times."""

        def __init__(self):
            super().__init__()
            self.metrics: dict[str, float] = {}
            self.batch_secs: list[float] = []
            self.val_secs = 0.0
            self.first_batch = True

        def on_train_begin(self, logs=None):
            self.epochs = int(self.params.get("epochs") or 0)
            self.batches = self.params.get("steps")

        def on_epoch_begin(self, epoch, logs=None):
            self.done_epochs, self.t = epoch, time.perf_counter()
            ctx.progress(epoch=epoch, epochs=self.epochs, batch=0, batches=self.batches, force=True)

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            if not self.first_batch:  # the first batch includes graph tracing
                self.batch_secs = [*self.batch_secs[-49:], now - self.t]
            self.first_batch, self.t = False, now
            ctx.batch_ended()
            self.metrics.update(_floats(logs))
            ctx.progress(batch=batch + 1, metrics=self.metrics, eta_s=self._eta(batch + 1))

        def on_test_begin(self, logs=None):
            self.tv = time.perf_counter()

        def on_test_end(self, logs=None):
            self.val_secs = time.perf_counter() - self.tv

        def on_epoch_end(self, epoch, logs=None):
            self.metrics.update(_floats(logs))
            self.done_epochs = epoch + 1
            ctx.progress(epoch=epoch + 1, batch=0, metrics=self.metrics, eta_s=self._eta(0), force=True)

        def on_train_end(self, logs=None):
            ctx.progress(force=True)

        def _eta(self, batch: int) -> float | None:
            if not self.batch_secs or not self.batches:
                return None
            per_batch = sorted(self.batch_secs)[len(self.batch_secs) // 2]
            epochs_left = self.epochs - self.done_epochs  # including the one in progress
            batches_left = epochs_left * self.batches - batch
            return max(0.0, batches_left * per_batch + epochs_left * self.val_secs)

    return JobProgress()


def describe_error(exc: BaseException) -> str:
    """The reason a job failed, in words a user can act on."""
    name, text = type(exc).__name__, str(exc)
    # tf.errors.ResourceExhaustedError is matched by name: this module never imports TensorFlow.
    if name == "ResourceExhaustedError" or isinstance(exc, MemoryError) or "out of memory" in text.lower():
        first = text.strip().splitlines()[0][:300] if text.strip() else name
        return (f"Out of memory: {first}. Lower the batch size (train.batch_size) or the input size "
                "(model.input_size), or wait until other jobs on this device finish.")
    # WeightsMissingError, ConfigError, DatasetError, RunNotFound already say what to do.
    return f"{name}: {text}"[:2000]


def _die_with_parent(parent_pid: int) -> None:
    # Linux: the kernel kills this process the moment its worker dies (kill -9 included),
    # so a replacement worker never finds the old job process still training the same run.
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # elsewhere, JobContext.should_stop() notices the parent is gone
    if os.getppid() != parent_pid:
        os._exit(1)  # the worker died before the line above ran


def _import_executor(path: str) -> Callable[[JobContext], dict | None]:
    import importlib

    if not _allowed_executor(path):
        raise JobError(f"refusing to run executor {path!r}: not a function of the core package")
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def _job_process_main(job_id: str, attempt: str, parent_pid: str) -> int:
    """Entry point of a job's own process (started by the worker)."""
    _die_with_parent(int(parent_pid))
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx = JobContext(int(job_id), int(attempt), int(parent_pid))
    try:
        result = _import_executor(ctx.job["executor"])(ctx)
    except JobCancelled:
        ctx.finish("cancelled")
        return 0
    except BaseException as exc:
        traceback.print_exc()
        ctx.finish("failed", error=describe_error(exc))
        return 1
    ctx.finish("done", result=result)
    return 0


# ------------------------------------------------------------------ built-in kinds


def execute_train(ctx: JobContext) -> dict:
    """Train one configuration; a resumed attempt continues the same run from its checkpoint."""
    from core import datasets, models

    cfg = RunConfig.from_dict(ctx.payload["config"])
    models.resolve_weights(cfg.model)  # before TensorFlow loads: a missing file fails in a second
    from core import training  # imports TensorFlow
    from core.tracking import RunStore

    store = RunStore()
    if ctx.run_id and store.client.get_run(ctx.run_id).info.status == "FINISHED":
        return _train_summary(store, ctx.run_id)  # finished before its job row could say so
    ds = datasets.load_for_run(cfg.data, cfg.train.seed)
    ctx.check_cancelled()
    if ctx.run_id is None:
        ctx.set_run_id(store.create_run(cfg, training.dataset_identity(ds), {"job_id": str(ctx.job_id)}))
    result = training.train(cfg, run_id=ctx.run_id, store=store, dataset=ds, callbacks=[ctx.keras_callback()],
                            should_stop=ctx.should_stop)
    if result.status == "KILLED":
        raise JobCancelled()
    return _train_summary(store, result.run_id)


def _train_summary(store, run_id: str) -> dict:
    report = store.report(run_id) or {}
    return {"run_id": run_id, "test_accuracy": report.get("accuracy"), "test_macro_f1": report.get("macro_f1"),
            "epochs_done": len(store.history(run_id))}


def execute_evaluate(ctx: JobContext) -> dict:
    """Evaluate a stored run's model on another dataset; the evaluation is a new run."""
    from core import training
    from core.tracking import RunStore

    ctx.check_cancelled()
    store = RunStore()
    new_id, report = training.evaluate_stored(ctx.payload["run_id"], ctx.payload["dataset"], store=store)
    ctx.set_run_id(new_id)
    store.set_tags(new_id, {"job_id": ctx.job_id})
    return {"run_id": new_id, "test_accuracy": report["accuracy"], "test_macro_f1": report["macro_f1"]}


# ------------------------------------------------------------------ evolve (core.evolution searches)

EVOLVE_ACTIONS: tuple[str, ...] = ("start", "resume", "retrain")
_SEARCH_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def _search_exists(search_id: str) -> dict | None:
    from core import evolution

    try:
        return evolution.search_state(search_id)
    except evolution.SearchNotFound:
        return None


def _validate_evolve(payload: Any) -> tuple[dict, str]:
    """``{"search_id", "action": "start", "dataset", "population", ...}``, or ``{"search_id", "action": "resume"
    | "retrain"}`` for a saved search. Settings are checked here so a bad one fails at submit, not in the worker."""
    from core import evolution, models, presets

    if not isinstance(payload, dict):
        raise JobError(f"evolve payload: expected a dict. Received: payload={payload!r}")
    sid, action = payload.get("search_id"), payload.get("action", "start")
    # The id names a folder under artifacts/searches: no separators, no "..".
    if not (isinstance(sid, str) and sid and set(sid) <= _SEARCH_ID_CHARS and not sid.startswith(".")):
        raise JobError(f"evolve payload: search_id must be letters, digits, '-', '_' or '.'. Received: search_id={sid!r}")
    if action not in EVOLVE_ACTIONS:
        raise JobError(f"evolve payload: action must be one of {EVOLVE_ACTIONS}. Received: action={action!r}")
    if action != "start":
        state = _search_exists(sid)
        if state is None:
            raise JobError(f"evolve payload: no saved search {sid!r} to {action}")
        if action == "retrain" and state["mode"] != "hyper":
            raise JobError(f"search {sid!r} evolves a head's weights: it has no genome to retrain")
        if action == "retrain" and state["best"] is None:
            raise JobError(f"search {sid!r} has no finished genome to retrain yet")
        return {"search_id": sid, "action": action}, \
            (f"retrain best of {sid}" if action == "retrain" else f"resume search {sid}")

    if _search_exists(sid) is not None:
        raise JobError(f"search {sid!r} already exists; resume it instead (action='resume')")
    dataset, strategy, mode = payload.get("dataset"), payload.get("strategy", "ga"), payload.get("mode", "hyper")
    population, generations, seed = payload.get("population", 8), payload.get("generations", 5), payload.get("seed", 42)
    retrain_best, fixed = payload.get("retrain_best", True), payload.get("fixed") or {}
    if not isinstance(dataset, str) or not dataset:
        raise JobError(f"evolve payload: dataset must be a non-empty string. Received: dataset={dataset!r}")
    if strategy not in evolution.STRATEGIES or mode not in evolution.MODES:
        raise JobError(f"evolve payload: expected strategy in {evolution.STRATEGIES} and mode in {evolution.MODES}. "
                       f"Received: strategy={strategy!r}, mode={mode!r}")
    for name, value, least in (("population", population, 2), ("generations", generations, 1), ("seed", seed, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise JobError(f"evolve payload: {name} must be an integer >= {least}. Received: {name}={value!r}")
    if not isinstance(retrain_best, bool) or not isinstance(fixed, dict):
        raise JobError(f"evolve payload: retrain_best must be a bool and fixed a dict. "
                       f"Received: retrain_best={retrain_best!r}, fixed={fixed!r}")
    try:
        budget = evolution.Budget(**(payload.get("budget") or {})).validate()
    except TypeError as exc:
        raise JobError(f"evolve payload: budget takes {list(evolution.Budget.__dataclass_fields__)}. {exc}") from None
    base = payload.get("base")
    base = RunConfig.from_dict(base) if base else presets.base_config(dataset=dataset, seed=seed)
    base = replace(base, data=replace(base.data, dataset=dataset)).validate()
    genes = {g.name: g for g in evolution.GENE_SPACE}
    for name, value in fixed.items():
        if name not in genes or value not in genes[name].choices:
            raise JobError(f"evolve payload: fixed gene {name}={value!r} is not in the search space "
                           f"({ {g: list(v.choices) for g, v in genes.items()} })")
    if mode == "head":
        if strategy != "ga" or not set(fixed) <= set(evolution.HEAD_GENES):
            raise JobError(f"mode head evolves a head's weights with the GA and can fix only {evolution.HEAD_GENES}. "
                           f"Received: strategy={strategy!r}, fixed={sorted(fixed)}")
        retrain_best = False
    try:  # ImageNet weights pinned but not on this machine, or a pinned value the base cannot take
        if mode == "head" and fixed.get("weights") == "imagenet":
            models.resolve_weights(replace(base.model, arch=fixed.get("arch", base.model.arch), weights="imagenet"))
        elif mode == "hyper":
            space, _ = evolution.resolve_space(fixed)
            evolution.decode([0] * len(space), base, space)
    except models.WeightsMissingError as exc:
        raise JobError(str(exc)) from None
    normalised = {"search_id": sid, "action": "start", "dataset": dataset, "strategy": strategy, "mode": mode,
                  "population": population, "generations": generations, "seed": seed, "retrain_best": retrain_best,
                  "fixed": dict(fixed), "budget": asdict(budget), "base": base.to_dict()}
    what = "head weights" if mode == "head" else ("GA" if strategy == "ga" else "random search")
    return normalised, (f"{what} {sid} on {dataset}: population {population}, "
                        f"{generations} generation{'s' if generations != 1 else ''}")


def submit_evolve(dataset: str, *, population: int = 8, generations: int = 5, strategy: str = "ga",
                  mode: str = "hyper", budget: Any = None, fixed: dict | None = None, seed: int = 42,
                  retrain_best: bool = True, base: RunConfig | None = None, search_id: str | None = None,
                  key: str | None = None) -> tuple[int, str]:
    """Queue a search (``core.evolution.run_search`` in the worker); return ``(job_id, search_id)``.

    The search id is chosen here, so the caller can follow the search before the worker
    starts it; the job's group is the search id, as is the group of the search's runs.
    """
    from core import evolution

    sid = search_id or evolution.new_search_id(strategy, mode)
    budget = asdict(budget) if isinstance(budget, evolution.Budget) else budget
    payload = {"search_id": sid, "action": "start", "dataset": dataset, "population": population,
               "generations": generations, "strategy": strategy, "mode": mode, "budget": budget,
               "fixed": dict(fixed or {}), "seed": seed, "retrain_best": retrain_best,
               "base": base.to_dict() if base is not None else None}
    return submit("evolve", payload, group=sid, key=key), sid


def submit_search_action(search_id: str, action: str, key: str | None = None) -> int:
    """Queue ``resume`` (continue a stopped or failed search) or ``retrain`` (retrain its best genome with
    the full budget as variant ``ga-<search_id>``, for a search started with ``retrain_best=False``)."""
    if action not in ("resume", "retrain"):
        raise JobError(f"action must be 'resume' or 'retrain'. Received: action={action!r}")
    return submit("evolve", {"search_id": search_id, "action": action}, group=search_id, key=key)


def _enable_retrain(search_id: str) -> None:
    # core.evolution retrains the best genome only at the end of a run with retrain_best=True;
    # turning the flag on in the saved state makes resume_search do exactly that step (its
    # generations are all scored, so nothing else runs). Uses evolution's own load/save.
    from core import evolution

    state = evolution._load(search_id)
    if state["retrain_best"] and state["status"] != "finished":
        return
    if state.get("final") and state["final"].get("status") == "FINISHED":
        return
    state["retrain_best"] = True
    if state["status"] == "finished":
        state["status"] = "stopped"  # resume_search leaves finished searches alone
    evolution._save(state)


def execute_evolve(ctx: JobContext) -> dict:
    """Run, resume or finish a search; a retried job resumes the search it started (same search id)."""
    from core import evolution

    payload, sid = ctx.payload, ctx.payload["search_id"]
    action = payload.get("action", "start")
    ctx.check_cancelled()
    existing = _search_exists(sid)
    settings = existing["settings"] if existing else payload
    population, generations = settings["population"], settings["generations"]
    mode = existing["mode"] if existing else payload["mode"]
    long_epochs = (settings.get("budget") or {}).get("long_epochs") or 0
    per_generation = population + (math.ceil(population / 3) if long_epochs else 0)
    means: dict[int, float] = {}
    started = {"t": time.monotonic(), "done": None}

    def progress(p: "evolution.Progress") -> None:
        if started["done"] is None:
            started["done"] = p.done - 1  # slots already scored before this attempt
        if mode == "head":
            fields = {"epoch": p.done, "epochs": p.total, "batch": 0, "batches": 1}
        else:
            # epoch = generations fully scored (of generations + 1, counting generation 0),
            # batch = slots scored in the generation in progress.
            rounds = generations + 1
            epoch = min(p.done // per_generation, rounds)
            fields = {"epoch": epoch, "epochs": rounds, "batches": per_generation,
                      "batch": p.done - epoch * per_generation if epoch < rounds else 0}
            if max(means, default=-1) < p.generation - 1 or p.done == p.total:  # a generation was saved since
                table = evolution.search_state(sid)["generations"]
                means.update(zip(table["generation"], table["mean"]))
        # Head mode reports the validation accuracy of the method at work (see the progress message).
        metrics = {("val_accuracy" if mode == "head" else "best_fitness"): float(p.best)} if p.best is not None else {}
        if means:  # the latest fully scored generation
            metrics["mean_fitness"] = float(means[max(means)])
        done_now = p.done - started["done"]
        eta = (time.monotonic() - started["t"]) / done_now * (p.total - p.done) if done_now > 0 else None
        ctx.progress(**fields, metrics=metrics, eta_s=eta, force=p.done == p.total)

    def should_stop() -> bool:
        # Training polls this after every batch: counting those lets a cancel say how promptly it stopped.
        ctx.batch_ended()
        return ctx.should_stop()

    if action == "retrain":
        _enable_retrain(sid)
    if existing is None and action == "start":
        evolution.run_search(
            payload["dataset"], population, generations, payload["strategy"], mode,
            budget=evolution.Budget(**payload["budget"]), base=RunConfig.from_dict(payload["base"]),
            fixed=payload["fixed"], seed=payload["seed"], retrain_best=payload["retrain_best"], search_id=sid,
            progress=progress, should_stop=should_stop)
    else:  # resume, retrain, or this job's earlier attempt died mid-search
        evolution.resume_search(sid, progress=progress, should_stop=should_stop)
    state = evolution.search_state(sid)
    if state["status"] == "stopped":
        raise JobCancelled()
    best, gens = state["best"], state["generations"]
    if best is not None and len(gens):  # the last generation is saved after its last progress report
        ctx.progress(metrics={"best_fitness": best["fitness"], "mean_fitness": float(gens["mean"].iloc[-1])},
                     force=True)
    if state["mode"] == "head":  # the GA's best validation accuracy; Adam's and RMSprop's are in the curves
        ga = state["curves"][state["curves"].method == "ga"].val_accuracy
        best = {"fitness": float(ga.max())} if len(ga) else None
    return {"search_id": sid, "status": state["status"], "best_fitness": best["fitness"] if best else None,
            "final_run_id": state["final_run_id"], "final_test_accuracy": state["final_test_accuracy"],
            **state["cost"]}


register_kind("train", execute_train, _validate_train)
register_kind("evaluate", execute_evaluate, _validate_evaluate)
register_kind("evolve", execute_evolve, _validate_evolve)
