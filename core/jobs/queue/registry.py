"""The registry of job kinds: each kind's payload check, executor and progress units.

The kinds themselves (train, evaluate, evolve) register in ``core.jobs.kinds``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from core.jobs.queue.errors import JobError

Units = tuple[str, str, str, str]  # unit, units, part, parts: ("epoch", "epochs", "batch", "batches")


@dataclass(frozen=True)
class JobKind:
    """A kind of job: how to check its payload, and which function runs it."""

    name: str
    executor: str  # "core.module:function", imported in the job's own process
    validate: Callable[[Any], tuple[dict, str]]  # payload -> (normalised payload, label)
    units: Units = ("epoch", "epochs", "batch", "batches")  # what its progress counts


_KINDS: dict[str, JobKind] = {}


def register_kind(name: str, executor: Callable | str, validate: Callable[[Any], tuple[dict, str]] | None = None,
                  units: Units = ("epoch", "epochs", "batch", "batches")) -> None:
    """Add a kind of job. ``executor(ctx: JobContext) -> dict | None`` runs it; its result is stored.

    The executor is recorded on each job by import path and imported in the job's own
    process, so it must be a module-level function of the ``core`` package (a row in the
    database can then never make the worker import anything else).
    """
    path = executor if isinstance(executor, str) else f"{executor.__module__}:{executor.__qualname__}"
    if not allowed_executor(path):
        raise JobError(f"executor must be a module-level function of the core package. Received: executor={path!r}")
    _KINDS[name] = JobKind(name, path, validate or _validate_mapping, units)


def kind_names() -> list[str]:
    """Names of the registered job kinds."""
    return sorted(_KINDS)


def get_kind(name: str) -> JobKind:
    """The registered kind ``name``; JobError naming the known kinds if there is none."""
    spec = _KINDS.get(name)
    if spec is None:
        raise JobError(f"Unknown job kind {name!r}; expected one of {kind_names()}")
    return spec


def units(kind: str) -> Units:
    """What a job of ``kind`` counts its progress in: unit, units, part, parts (``epoch, epochs, batch, batches``)."""
    spec = _KINDS.get(kind)
    return spec.units if spec is not None else ("step", "steps", "part", "parts")


def allowed_executor(path: str) -> bool:
    """True for a module-level function path of the core package (``core.module:function``)."""
    module, _, attr = path.partition(":")
    return module.startswith("core.") and bool(attr) and "<" not in attr


def _validate_mapping(payload: Any) -> tuple[dict, str]:
    if not isinstance(payload, dict):
        raise JobError(f"payload: expected a dict. Received: payload={payload!r}")
    return payload, ""
