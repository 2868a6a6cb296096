"""Inside a job's own process: the context an executor gets, and the process's entry point.

``JobContext`` gives an executor its payload, progress reporting in its kind's units
(epochs and batches, or generations and individuals), the cancel flag and a Keras
callback; ``main`` runs the executor the job row names and records the outcome.
"""
from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import time
import traceback
from typing import Any, Callable

from core.jobs import queue
from core.jobs.queue import PROGRESS_EVERY_S, JobCancelled, JobError
from core.train import runs

# Job rows store every kind's progress in the same four columns.
_COLUMNS = ("epoch", "epochs", "batch", "batches")


class JobContext:
    """What an executor gets: the job's payload, progress reporting and the cancel flag."""

    def __init__(self, job_id: int, attempt: int, parent_pid: int | None = None):
        self._conn = queue.connect()
        self.job = queue.read_job(self._conn, job_id)
        self.job_id, self.attempt, self.parent_pid = job_id, attempt, parent_pid
        self.payload: dict = self.job["payload"]
        self.run_id: str | None = self.job["run_id"]
        self._pending: dict[str, Any] = {}
        self._last_write = 0.0
        self._checked = 0.0
        self.cancel_at: float | None = None
        self._batch_ends: list[float] = []

    def set_run_id(self, run_id: str) -> str:
        """Record the run this job writes, as soon as it exists (a resumed attempt reuses it)."""
        self.run_id = run_id
        queue.set_run_id(self._conn, self.job_id, self.attempt, run_id)
        return run_id

    def progress(self, *, force: bool = False, **fields: Any) -> None:
        """Report progress in the job kind's units, ``metrics`` (dict) and ``eta_s``.

        A training job reports ``epoch`` (epochs finished), ``epochs``, ``batch`` (batches
        finished in the epoch in progress) and ``batches``; a search reports ``generation``,
        ``generations``, ``individual`` and ``individuals`` the same way. Throttled to
        PROGRESS_EVERY_S unless forced.
        """
        names = dict(zip(queue.units(self.job["kind"]), _COLUMNS))
        unknown = set(fields) - set(names) - {"metrics", "eta_s"}
        if unknown:
            raise TypeError(f"progress(): unknown field(s) {sorted(unknown)} for a {self.job['kind']} job; "
                            f"expected {sorted(names)}, metrics, eta_s")
        self._pending.update({names.get(k, k): v for k, v in fields.items()})
        now = time.monotonic()
        if not self._pending or (not force and now - self._last_write < PROGRESS_EVERY_S):
            return
        queue.record_progress(self._conn, self.job_id, self.attempt, self._pending)
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
        self.cancel_at = queue.cancel_requested_at(self._conn, self.job_id)
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
        queue.record_outcome(self._conn, self.job_id, self.attempt, state, error=error, result=result, note=note)


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
            if epoch and not self.metrics and ctx.run_id:
                # Resumed after ``epoch`` logged epochs: the row still holds the killed attempt's live
                # values (part of an epoch no run logged); start from the last logged epoch instead.
                try:
                    self.metrics = runs.logged_epoch(ctx.run_id, epoch) or {}
                except Exception:  # the store not answering must not stop training; the values just stay empty
                    self.metrics = {}
            self.done_epochs, self.t = epoch, time.perf_counter()
            ctx.progress(epoch=epoch, epochs=self.epochs, batch=0, batches=self.batches, metrics=self.metrics,
                         force=True)

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

    if not queue.allowed_executor(path):
        raise JobError(f"refusing to run executor {path!r}: not a function of the core package")
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def main(job_id: str, attempt: str, parent_pid: str) -> int:
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
        ctx.finish("failed", error=runs.describe_error(exc))
        return 1
    ctx.finish("done", result=result)
    return 0


