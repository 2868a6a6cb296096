"""Status that never lies: a job whose worker was killed reads as interrupted everywhere it is shown.

A real worker process claims a job and reports progress with a time estimate, then is
killed with SIGKILL; no worker replaces it. The queue API, ``python -m core jobs`` (the
table and one job's details) and the Train page must then say interrupted, with when the
worker was last seen, and never "running" with an ETA.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import ROOT, texts, tiny_config

from core import jobs

# A stand-in worker: registers, claims the job, reports epoch 1/3 with an ETA, then waits to be killed.
_FAKE_WORKER = textwrap.dedent("""
    import sys, time
    from core.jobs import queue
    from core.jobs.context import JobContext
    wid = queue.register_worker(1, 30)
    job, _ = queue.claim(wid, 30)
    JobContext(job["id"], job["attempts"]).progress(epoch=1, epochs=3, batch=2, batches=6, eta_s=12.0,
                                                    metrics={"loss": 1.5}, force=True)
    print("claimed", flush=True)
    time.sleep(600)
""")


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def killed_job(fresh_artifacts):
    """A job whose worker claimed it, reported progress with an ETA and was killed by SIGKILL."""
    job_id = jobs.submit_train(tiny_config("vgg16", epochs=3))
    proc = subprocess.Popen([sys.executable, "-c", _FAKE_WORKER], cwd=ROOT, env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout.readline().strip() == b"claimed", proc.stdout.read().decode()
        alive = jobs.get_job(job_id)
        assert alive["state"] == "running" and alive["progress"].describe().endswith("about 12 s left")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        yield job_id
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_killed_workers_job_reads_as_interrupted_with_when_it_was_last_seen(killed_job):
    job = jobs.get_job(killed_job)
    assert job["state"] == "interrupted", job
    assert job["progress"].eta_s is None and job["heartbeat_age_s"] is None
    assert "died" in job["note"] and "last seen" in job["note"] and "resumes" in job["note"]
    assert job["last_seen"] and time.time() - job["last_seen"] < 60

    row = jobs.list_jobs().set_index("id").loc[killed_job]
    assert row.state == "interrupted" and row.note == job["note"] and row.progress.eta_s is None
    assert not jobs.worker_status()["alive"]


def _cli(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=dict(os.environ),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_jobs_command_says_interrupted_and_last_seen_not_running_with_an_eta(killed_job):
    table = _cli("jobs")
    assert "interrupted" in table and "last seen" in table and "UTC" in table
    assert "running" not in table.split("Worker:")[0] and "s left" not in table
    assert "Worker: none running" in table

    detail = _cli("jobs", str(killed_job))
    assert "state: interrupted" in detail and "last_seen:" in detail and "s left" not in detail


def test_cancelling_a_job_whose_worker_is_gone_takes_effect_at_once(killed_job):
    assert jobs.cancel(killed_job) == "cancelled"
    assert jobs.get_job(killed_job)["state"] == "cancelled"


def test_train_page_shows_the_killed_workers_job_as_interrupted(killed_job, no_worker):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(ROOT) / "dashboard" / "app.py"), default_timeout=60)
    at.run()
    at = at.switch_page("views/train.py").run()
    shown = texts(at)
    assert f"#{killed_job}" in shown and "· interrupted" in shown and "last seen" in shown, shown
    assert "· running" not in shown and "left" not in shown
    assert not [p for p in at.get("progress")], "no live progress bar for a job nobody runs"
