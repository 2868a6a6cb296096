"""The queue for its callers (the dashboard, the CLI, the kinds): submit, read, cancel."""
from __future__ import annotations

import hashlib
import json
import time
from contextlib import closing
from typing import TYPE_CHECKING, Any

from core.jobs.queue.errors import JobError, JobNotFound
from core.jobs.queue.process import holder_gone, worker_alive
from core.jobs.queue.progress import Progress
from core.jobs.queue.registry import get_kind
from core.jobs.queue.schema import (
    CANCEL_GRACE_S,
    RUNNABLE,
    STALE_AFTER_S,
    connect,
    db_path,
    decode,
    fetch_row,
    transaction,
)

if TYPE_CHECKING:
    import pandas as pd

JOB_COLUMNS: list[str] = [
    "id", "kind", "state", "group", "label", "run_id", "progress", "metrics", "created", "started", "finished",
    "heartbeat_age_s", "last_seen", "attempts", "note", "error", "log_tail", "cancel_requested",
]

# ------------------------------------------------------------------ submitting


def _prepare(kind: str, payload: Any, group: str, key: str | None) -> tuple:
    spec = get_kind(kind)
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


def get_job(job_id: int) -> dict:
    """Everything about one job; ``payload``, ``metrics`` and ``result`` are decoded.

    A job stored as running whose worker is gone reads as ``interrupted`` (see ``list_jobs``).
    """
    with closing(connect()) as conn:
        row = fetch_row(conn, job_id)
    if row is None:
        raise JobNotFound(f"No job {job_id} in {db_path()}")
    now = time.time()
    d = as_read(decode(row), now)
    d["progress"] = Progress.from_row(d["kind"], d)
    d["heartbeat_age_s"] = now - d["heartbeat"] if d["state"] == "running" and d["heartbeat"] else None
    return d


def list_jobs(limit: int = 200, group: str | None = None) -> pd.DataFrame:
    """Newest jobs first, one row each, with the columns in ``JOB_COLUMNS``.

    ``progress`` is a ``Progress`` record in the job kind's units; ``metrics`` is a JSON
    object of the latest values; times are UTC. A job stored as running whose worker is
    gone (killed, machine rebooted) reads as ``interrupted``, without a time estimate, its
    ``note`` saying why and ``last_seen`` when its worker last beat: the row itself changes
    only when the next worker claims it, but no reader is told it is running meanwhile.
    """
    import pandas as pd

    sql = ("SELECT id, kind, state, grp AS 'group', label, run_id, epoch, epochs, batch, batches, metrics, eta_s, "
           "created, started, finished, heartbeat, attempts, note, error, log_tail, cancel_at, "
           "host, worker_pid, worker_token, pid, pid_token FROM jobs")
    args: tuple = ()
    if group is not None:
        sql, args = sql + " WHERE grp=?", (group,)
    with closing(connect()) as conn:
        cur = conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, int(limit)))
        rows = cur.fetchall()
    now = time.time()
    records = [as_read(dict(r), now) for r in rows]
    df = pd.DataFrame(records, columns=[*(c[0] for c in cur.description), "last_seen"])
    # Built from the rows, not the frame: a column with some NULLs turns into floats and NaN there.
    df["progress"] = pd.Series([Progress.from_row(r["kind"], r) for r in records], index=df.index, dtype=object)
    df["heartbeat_age_s"] = (now - df["heartbeat"].astype(float)).where(df["state"] == "running")
    df["cancel_requested"] = df.pop("cancel_at").notna()
    for col in ("created", "started", "finished", "last_seen"):
        df[col] = pd.to_datetime(df[col].astype(float), unit="s", utc=True)
    for col in ("note", "error", "log_tail", "metrics"):
        df[col] = df[col].fillna("")
    return df.reindex(columns=JOB_COLUMNS)


def as_read(job: dict, now: float, stale_after_s: float = STALE_AFTER_S) -> dict:
    """A stored job as readers should see it: ``running`` only while someone runs it.

    Adds ``last_seen`` (the time of its worker's last heartbeat for it, or None). A
    running row whose worker and job process are gone (``holder_gone``) reads as
    ``interrupted`` with no ETA and a note saying why and when it was last seen.
    """
    job = dict(job)
    job["last_seen"] = job.get("heartbeat")
    if job["state"] == "running" and (reason := holder_gone(job, now, stale_after_s)) is not None:
        seen = job.get("heartbeat") or job.get("started")
        when = f"; last seen {ago(now - seen)} ago" if seen else ""
        job.update(state="interrupted", eta_s=None,
                   note=f"interrupted: {reason}{when}; it resumes from its last checkpoint when a worker starts")
    return job


def ago(seconds: float) -> str:
    """``"37 s"``, ``"4 min"``, ``"3 h"``, ``"2 days"``: how long ago, roughly."""
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def has_unfinished_jobs() -> bool:
    """True if any job is queued, waiting to resume or running (so a worker is wanted)."""
    with closing(connect()) as conn:
        row = conn.execute("SELECT 1 FROM jobs WHERE state IN ('queued','interrupted','running') LIMIT 1").fetchone()
    return row is not None


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
    not stopped ``grace_s`` seconds later, its worker kills the job's process. A job
    stored as running whose worker is gone is cancelled at once, as an interrupted one:
    nobody is left to act on a request.
    """
    now = time.time()
    with transaction() as conn:
        row = fetch_row(conn, job_id)
        if row is None:
            raise JobNotFound(f"No job {job_id} in {db_path()}")
        state = as_read(dict(row), now)["state"]
        original = state
        if state in RUNNABLE:
            note = "cancelled before it started" if state == "queued" else "cancelled while waiting to resume"
            conn.execute("UPDATE jobs SET state='cancelled', finished=?, cancel_at=?, note=? WHERE id=?",
                         (now, now, note, int(job_id)))
            state = "cancelled"
        elif state == "running":
            conn.execute("UPDATE jobs SET cancel_at=COALESCE(cancel_at, ?), cancel_deadline=? WHERE id=?",
                         (now, now + grace_s, int(job_id)))
    if state == "cancelled" and original == "interrupted" and row["run_id"]:
        from core.train import runs  # the run store is loaded only when a run must be closed

        runs.close_runs([(row["run_id"], "KILLED", "cancelled by user")])
    return state
