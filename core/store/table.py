"""One runs table per dashboard server, kept current by reading only what can have changed.

Pages of every session share it (``dashboard.services.runstore``): a store of thousands of runs is read
in full once, then only its unfinished and newly started runs are read again, at most once a second.
What was read is kept on disk (``snapshot_path``), so a restarted server starts from it instead of
reading every run again before its first page.
"""
from __future__ import annotations

import hashlib
import json
import logging
import pickle
from pathlib import Path
from typing import Any

import pandas as pd

from core.configs import artifacts_dir, atomic_write
from core.store.tracking import RUN_COLUMNS, RunStore, run_row, runs_frame

log = logging.getLogger(__name__)
SNAPSHOT_VERSION = 2
# Statuses a run keeps until someone acts on it: read once, like finished runs. A failed run that is
# resumed is RUNNING again (``RunStore.reopen``), and the query for open runs finds it.
SETTLED = ("FINISHED", "FAILED", "KILLED")
OPEN = ("RUNNING", "SCHEDULED")


def snapshot_path(store: RunStore) -> Path:
    """Where the runs table of ``store`` is kept between servers (one file per store URI)."""
    digest = hashlib.sha256(store.uri.encode()).hexdigest()[:16]
    return artifacts_dir() / "cache" / "run-table" / f"{digest}.pkl"


def _signature(row: dict[str, Any]) -> str:
    return json.dumps(row, default=str, sort_keys=True)


class RunTable:
    """The runs table of one store, for a long-lived reader (the dashboard's server), kept current cheaply.

    ``list_runs`` reads every run with all its params, tags and metrics: at 2000 runs that
    is most of a page's time, and a dashboard polling it every few seconds per user pays it
    over and over for runs that cannot change. Here a finished run is read once and kept
    (FINISHED is final), and so is a failed or cancelled one until it is resumed, when it is
    RUNNING again; each refresh asks MLflow only for the runs that are running or scheduled, those
    that were open at the last look, and those started since the newest one seen (less
    ``NEW_RUN_MARGIN_S``), so its cost follows the runs in flight, not the runs stored (a store
    with a hundred failed runs once paid for reading all of them at every refresh). Every
    ``FULL_RELOAD_S`` seconds the whole table is read again in the background, which picks
    up what the incremental reads cannot see (a deleted run, a tag set on a finished run); the
    period grows to ten times what the last full read took, so a big store costs the server at
    most a tenth of a core in the background.

    With ``persist``, every full read is saved (``snapshot_path``) and the first refresh starts from
    the saved table: it reads only what can have changed since (as any refresh does), and the full
    read that catches deletions and edits of settled runs follows in the background
    ``RESTORE_GRACE_S`` later.

    ``refresh`` returns a key that changes exactly when the table does: callers cache
    whatever they derive from the table under that key. Thread-safe (Streamlit serves each
    session from a thread of its own).
    """

    FULL_RELOAD_S = 60.0
    # Every run starts RUNNING, so the query for unfinished runs finds new ones; this margin catches
    # one created and finished between two looks, whose start a clock or a slow commit put a little
    # before the newest start already seen.
    NEW_RUN_MARGIN_S = 5.0
    # After a restart from the saved table, the full read waits this long: at 2000 runs it holds the GIL
    # for seconds, and the first visitors' pages (which the saved table already serves) would share it.
    RESTORE_GRACE_S = 30.0

    def __init__(self, store: RunStore, min_interval_s: float = 1.0, persist: bool = False):
        import threading

        self.store, self.min_interval_s, self.persist = store, min_interval_s, persist
        self._full_read_s = 0.0  # how long the last full read took
        self._lock = threading.Lock()
        self._settled: dict[str, tuple[dict, str]] = {}  # run id -> (row, its signature): finished, failed, cancelled
        self._open: dict[str, dict] = {}
        self._newest_ms = 0
        self._version = 0  # bumped whenever the finished rows change
        self._full_at = self._checked_at = -float("inf")
        self._reloading = False
        self._key = ""
        self._frame: pd.DataFrame | None = None

    def refresh(self, force: bool = False) -> str:
        """Bring the table up to date (at most once per ``min_interval_s`` unless ``force``); returns its key.

        The first refresh and a forced one read the whole store; the periodic full read runs in a
        thread of its own, so no page waits for it (the table stays served meanwhile).
        """
        import threading
        import time

        with self._lock:
            now = time.monotonic()
            if self.persist and self._full_at == -float("inf") and not force:
                self._restore(now)
            if not force and self._full_at > -float("inf"):
                if now - self._full_at >= self._full_period_s() and not self._reloading:
                    self._reloading = True
                    threading.Thread(target=self._reload, name="run-table-reload", daemon=True).start()
                if now - self._checked_at < self.min_interval_s:
                    return self._key
                since = self._newest_ms - int(self.NEW_RUN_MARGIN_S * 1000)
                found = self.store.search(f"attributes.start_time >= {since}")
                for status in OPEN:
                    found += self.store.search(f"attributes.status = '{status}'")
                # Runs open at the last look that have finished since: neither query above names them.
                gone = sorted(set(self._open) - {r.info.run_id for r in found})
                for i in range(0, len(gone), 100):
                    ids = ", ".join(f"'{rid}'" for rid in gone[i:i + 100])
                    found += self.store.search(f"attributes.run_id IN ({ids})")
                self._apply(found, full=False, now=now)
            else:
                self._apply(self._read_all(), full=True, now=now)
            return self._key

    def _read_all(self) -> list:
        import time

        t0 = time.monotonic()
        found = self.store.search()
        self._full_read_s = time.monotonic() - t0
        return found

    def _full_period_s(self) -> float:
        return max(self.FULL_RELOAD_S, 10 * self._full_read_s)

    def _reload(self) -> None:
        import time

        try:
            found = self._read_all()
        except Exception:  # a store that does not answer now: the next period tries again
            found = None
        with self._lock:
            if found is not None:
                self._apply(found, full=True, now=time.monotonic())
            self._reloading = False

    def _restore(self, now: float) -> None:
        """Start from the saved table, if there is one for this store; the lock is held."""
        path = snapshot_path(self.store)
        try:
            saved = pickle.loads(path.read_bytes())
            # Rows of another version of the lab may lack columns that pages read: not worth the risk.
            if (saved["version"], saved["uri"], saved["columns"]) != (SNAPSHOT_VERSION, self.store.uri,
                                                                     list(RUN_COLUMNS)):
                return
        except FileNotFoundError:
            return
        except Exception as exc:  # written by another version, or cut short: read the store instead
            log.warning("ignoring the saved runs table %s (%s); reading the store", path, exc)
            return
        self._settled = {rid: (row, _signature(row)) for rid, row in saved["settled"].items()}
        self._open = saved["open"]
        self._newest_ms = saved["newest_ms"]
        self._version += 1
        self._key, self._frame = "", None
        # Due after the grace period: then a refresh starts the background full read (deletions, edits of
        # settled runs); what else changed meanwhile, every refresh reads at once.
        self._full_at = now - self._full_period_s() + self.RESTORE_GRACE_S

    def _save(self) -> None:
        """Keep the table for the next server; the lock is held. A cache: failing to write loses nothing."""
        saved = {"version": SNAPSHOT_VERSION, "uri": self.store.uri, "columns": list(RUN_COLUMNS),
                 "newest_ms": self._newest_ms,
                 "settled": {rid: row for rid, (row, _) in self._settled.items()}, "open": self._open}
        path = snapshot_path(self.store)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, pickle.dumps(saved, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError as exc:
            log.warning("could not save the runs table to %s: %s", path, exc)

    def _apply(self, found: list, *, full: bool, now: float) -> None:
        """Merge runs read from the store (all of them when ``full``) into the table; the lock is held."""
        rows = {r.info.run_id: (r, run_row(r)) for r in found}
        # Rows compared by their JSON text: NaN and NaT never equal themselves, a text does.
        settled = {rid: (row, _signature(row)) for rid, (r, row) in rows.items() if r.info.status in SETTLED}
        self._open = {rid: row for rid, (r, row) in rows.items() if r.info.status not in SETTLED}
        if full:
            if {k: v[1] for k, v in settled.items()} != {k: v[1] for k, v in self._settled.items()}:
                self._version += 1
            self._settled = settled
            self._full_at = now
        else:
            changed = {rid: v for rid, v in settled.items() if self._settled.get(rid, (None, ""))[1] != v[1]}
            reopened = [rid for rid in self._open if rid in self._settled]  # a failed run resumed
            for rid in reopened:
                del self._settled[rid]
            if changed or reopened:
                self._settled.update(changed)
                self._version += 1
        self._newest_ms = max([self._newest_ms, *(r.info.start_time or 0 for r, _ in rows.values())])
        open_state = "\n".join(_signature(self._open[rid]) for rid in sorted(self._open))
        key = f"{self._version}:{hashlib.sha256(open_state.encode()).hexdigest()[:16]}"
        if key != self._key:
            self._key, self._frame = key, None
        self._checked_at = now
        if full and self.persist:
            self._save()

    def invalidate(self) -> None:
        """Make the next ``refresh`` ask the store, however recent the last one was."""
        with self._lock:
            self._checked_at = -float("inf")

    def table(self) -> pd.DataFrame:
        """The runs table as of the last ``refresh`` (call it first), newest first, ``RUN_COLUMNS``."""
        with self._lock:
            if self._frame is None:
                rows = [*self._open.values(), *(r for rid, (r, _) in self._settled.items() if rid not in self._open)]
                rows.sort(key=lambda r: 0 if pd.isna(r["start_time"]) else r["start_time"].value, reverse=True)
                self._frame = runs_frame(rows)
            return self._frame

    def is_finished(self, run_id: str) -> bool:
        """True when the run was FINISHED at the last ``refresh`` (its data can be cached for good)."""
        with self._lock:
            row = self._settled.get(run_id)
            return row is not None and row[0]["status"] == "FINISHED" and run_id not in self._open
