"""Process identity: whether the process that wrote a row (a worker, a job's process) still lives.

A pid alone is not enough: after a reboot or a long time the number is reused. A token
is the pid with the process's start time, taken from ``psutil``; a live process matches
a token only when it started at the same moment of the same boot.
"""
from __future__ import annotations

import os
import socket
import sqlite3
from typing import Any, Mapping

import psutil

HOST = socket.gethostname()

_TOLERANCE_S = 0.005  # start times count in clock ticks of 0.01 s; floats only have to agree within half of one


def _start(pid: int | None) -> tuple[float, float] | None:
    """(wall-clock start, seconds from boot to start) of a live process, or None if it is gone."""
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            # Zombies count as gone: a killed worker whose parent has not reaped it yet is dead.
            if proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                return None
            created = proc.create_time()
        return created, created - psutil.boot_time()
    except psutil.Error:
        return None


def proc_token(pid: int | None) -> str | None:
    """An identity for a live process, ``pid:start:seconds-from-boot-to-start``, or None if it is gone."""
    start = _start(pid)
    return None if start is None else f"{pid}:{start[0]:.2f}:{start[1]:.2f}"


def is_alive(pid: int | None, token: str | None) -> bool:
    """True while the process ``token`` was taken from still runs as ``pid``.

    Start times are compared from boot, which clock adjustments (NTP, a resumed virtual
    machine) leave alone, so a live worker is never taken for dead; the wall-clock start
    only tells boots apart, since a reboot always comes after the token's process started.
    Tokens of earlier versions (``boot-id:ticks``, ``pid:N``) are still understood.
    """
    start = _start(pid)
    if start is None or not token:
        return False
    created, since_boot = start
    parts = token.split(":")
    try:
        if len(parts) == 3:
            token_pid, token_created, token_since_boot = int(parts[0]), float(parts[1]), float(parts[2])
            return (token_pid == pid and abs(since_boot - token_since_boot) < _TOLERANCE_S
                    and created - since_boot <= token_created)
        if len(parts) == 2 and parts[0] == "pid":  # written where /proc was missing: the pid was all it had
            return int(parts[1]) == pid
        if len(parts) == 2:  # boot id and start in clock ticks from /proc/PID/stat; the boot id is not checked
            ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
            return abs(since_boot - int(parts[1]) / ticks) < _TOLERANCE_S
    except ValueError:
        pass
    return False


def same_process_alive(host: str | None, pid: int | None, token: str | None) -> bool:
    """True if the process (``pid`` with ``token``) runs on this machine and is still alive."""
    return host == HOST and token is not None and is_alive(pid, token)


def worker_alive(w: sqlite3.Row | Mapping[str, Any], now: float, stale_after: float) -> bool:
    """A ``workers`` row's worker lives: by process identity on this machine, by heartbeat elsewhere."""
    if w["host"] == HOST:
        return same_process_alive(w["host"], w["pid"], w["token"])
    return now - w["heartbeat"] < stale_after


def holder_gone(row: sqlite3.Row | Mapping[str, Any], now: float, stale_after: float) -> str | None:
    """Why a 'running' job row has nobody running it any more, or None while its worker or process lives.

    On this machine by process identity (the worker's or the job process's), elsewhere by
    the heartbeat being older than ``stale_after`` seconds. The claim step and every reader
    (``jobs``, the dashboard) decide with this one rule, so what they show and what the next
    worker does agree.
    """
    if row["host"] == HOST:
        if (same_process_alive(HOST, row["worker_pid"], row["worker_token"])
                or same_process_alive(HOST, row["pid"], row["pid_token"])):
            return None
        return f"its worker (pid {row['worker_pid']}) died"
    if row["heartbeat"] and now - row["heartbeat"] < stale_after:
        return None
    return f"its worker on {row['host']} stopped sending heartbeats"
