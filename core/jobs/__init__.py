"""Background jobs: a durable queue, the workers that run it, and the kinds of job.

``queue`` owns the database and its public API (submit, read, progress record, cancel,
claim); ``worker`` runs jobs in processes of their own; ``context`` is what a job's own
process gets; ``kinds`` defines train, evaluate and evolve; ``ray_worker`` runs the same
queue on a Ray cluster. Callers use the names re-exported here.
"""
from core.jobs.context import JobContext
from core.jobs.kinds import submit_evaluate, submit_evolve, submit_grid, submit_search_action, submit_train
from core.jobs.queue import (
                             CANCEL_GRACE_S,
                             IDLE_EXIT_S,
                             JOB_COLUMNS,
                             JOBS_DB_ENV,
                             MAX_ATTEMPTS,
                             RUNNABLE,
                             STALE_AFTER_S,
                             JobCancelled,
                             JobError,
                             JobNotFound,
                             Progress,
                             ago,
                             cancel,
                             db_path,
                             get_job,
                             kind_names,
                             list_jobs,
                             proc_token,
                             register_kind,
                             submit,
                             submit_many,
                             worker_status,
)
from core.jobs.worker import ensure_worker, run_worker

__all__ = [
    "CANCEL_GRACE_S", "IDLE_EXIT_S", "JOB_COLUMNS", "JOBS_DB_ENV", "MAX_ATTEMPTS", "RUNNABLE", "STALE_AFTER_S",
    "JobCancelled", "JobContext", "JobError", "JobNotFound", "Progress", "ago", "cancel", "db_path", "ensure_worker",
    "get_job", "kind_names", "list_jobs", "proc_token", "register_kind", "run_worker", "submit", "submit_evaluate",
    "submit_evolve", "submit_grid", "submit_many", "submit_search_action", "submit_train", "worker_status",
]
