"""Process identity: whether the process that wrote a row (a worker, a job's process) still lives."""
from __future__ import annotations

import os
import socket
import sqlite3
from pathlib import Path
from typing import Any, Mapping

HOST = socket.gethostname()

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
    """True if the process (``pid`` with ``token``) runs on this machine and is still alive."""
    return host == HOST and token is not None and proc_token(pid) == token


def worker_alive(w: sqlite3.Row | Mapping[str, Any], now: float, stale_after: float) -> bool:
    """A ``workers`` row's worker lives: by process identity on this machine, by heartbeat elsewhere."""
    if w["host"] == HOST:
        return same_process_alive(w["host"], w["pid"], w["token"])
    return now - w["heartbeat"] < stale_after
