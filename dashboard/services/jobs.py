"""The job queue as the pages see it: submit runs, list and cancel jobs, and keep a worker running.

Training never runs in the Streamlit server process: ``core.jobs`` queues the work and a
detached worker process executes it.
"""
from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from core import jobs
from core.configs import RunConfig
from dashboard.services.runstore import forget_runs

ACTIVE_STATES = ("queued", "running", "interrupted")  # a job in these states can still be cancelled


def submit(configs: list[RunConfig], group: str, key: str | None = None) -> list[int]:
    """Queue the runs (one job each, one group) and make sure a worker is running."""
    configs = [replace(c, group=group) for c in configs]
    ids = jobs.submit_grid(configs, group=group, key=key)
    jobs.ensure_worker()
    forget_runs()
    job_table.clear()
    return ids


@st.cache_data(ttl=1, show_spinner=False)
def job_table() -> pd.DataFrame:
    return jobs.list_jobs()


def cancel(job_id: int) -> None:
    jobs.cancel(job_id)
    job_table.clear()


def worker_status() -> dict:
    return jobs.worker_status()


def ensure_worker() -> int | None:
    return jobs.ensure_worker()


def job_action(job_id: int) -> str:
    """What an evolve job does: 'start', 'resume' or 'retrain'."""
    return jobs.get_job(job_id)["payload"].get("action", "start")
