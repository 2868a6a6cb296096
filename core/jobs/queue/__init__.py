"""The job queue: a durable SQLite table beside the run store, and its public API.

The only place that opens the database or speaks SQL. ``schema`` holds the tables,
connections and the states and timings all processes agree on; ``registry`` the kinds
of job; ``process`` process identity; ``progress`` the typed progress record. The API:
``api`` for callers (submit, read, cancel), ``workers`` for the worker's steps
(register, claim, heartbeat, record a crash or an outcome), ``attempt`` for a job's own
process (``core.jobs.context``) and ``relay`` for jobs run on Ray
(``core.jobs.ray_worker``). Callers import the names re-exported here.

The queue is a SQLite table in ``artifacts/jobs.db`` rather than MLflow tags: claiming
a job must be an atomic compare-and-set (``UPDATE ... WHERE state='queued' RETURNING``
inside ``BEGIN IMMEDIATE``), progress is written several times a second, and the
dashboard polls it every second or two. SQLite in WAL mode gives all three with
millisecond reads that never wait for a writer; MLflow has no compare-and-set and its
tag writes are far heavier. Finished work itself (metrics, models) lives only in the
run store; a job row points at its run.
"""
from core.jobs.queue.api import (
    JOB_COLUMNS,
    ago,
    as_read,
    cancel,
    get_job,
    has_unfinished_jobs,
    list_jobs,
    submit,
    submit_many,
    worker_status,
)
from core.jobs.queue.attempt import cancel_requested_at, read_job, record_outcome, record_progress, set_run_id
from core.jobs.queue.errors import JobCancelled, JobError, JobNotFound
from core.jobs.queue.process import HOST, proc_token
from core.jobs.queue.progress import Progress
from core.jobs.queue.registry import JobKind, allowed_executor, kind_names, register_kind, units
from core.jobs.queue.relay import copy_claimed, job_row, relay_progress, request_cancel, settle
from core.jobs.queue.schema import (
    CANCEL_GRACE_S,
    HEARTBEAT_S,
    IDLE_EXIT_S,
    JOBS_DB_ENV,
    LOG_TAIL_LINES,
    MAX_ATTEMPTS,
    PROGRESS_EVERY_S,
    RUNNABLE,
    STALE_AFTER_S,
    connect,
    db_path,
)
from core.jobs.queue.workers import (
    attach_process,
    claim,
    end_attempt,
    heartbeat,
    interrupt,
    register_started_worker,
    register_worker,
    save_log_tail,
    set_worker_state,
    unregister_worker,
)

__all__ = [
    "CANCEL_GRACE_S", "HEARTBEAT_S", "HOST", "IDLE_EXIT_S", "JOBS_DB_ENV", "JOB_COLUMNS", "LOG_TAIL_LINES",
    "MAX_ATTEMPTS", "PROGRESS_EVERY_S", "RUNNABLE", "STALE_AFTER_S", "JobCancelled", "JobError", "JobKind",
    "JobNotFound", "Progress", "ago", "allowed_executor", "as_read", "attach_process", "cancel", "cancel_requested_at",
    "claim", "connect", "copy_claimed", "db_path", "end_attempt", "get_job", "has_unfinished_jobs",
    "heartbeat", "interrupt", "job_row", "kind_names", "list_jobs", "proc_token", "read_job",
    "record_outcome", "record_progress", "register_kind", "register_started_worker", "register_worker",
    "relay_progress", "request_cancel", "save_log_tail", "set_run_id", "set_worker_state",
    "settle", "submit", "submit_many", "unregister_worker", "units", "worker_status",
]
