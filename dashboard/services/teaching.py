"""The Optimizers page's door into ``core.playground`` (2-D surfaces) and ``core.classroom``
(the head-only optimizer race on faces), and the link that opens the page preset to a run.

Neither core module loads TensorFlow until a path or an experiment is computed.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any
from urllib.parse import urlencode

import streamlit as st

from core.configs.choices import optimizer_label
from core.store import RunNotFound
from core.teaching import classroom, playground
from dashboard.services.runstore import run_config

SURFACES = {name: s.title for name, s in playground.SURFACES.items()}
OPTIMIZERS = {name: optimizer_label(name) for name in playground.OPTIMIZERS}
CLASSROOM_LABELS = {name: optimizer_label(name) for name in classroom.OPTIMIZERS}


def format_rate(value: float) -> str:
    """A rate as the Optimizers page shows it and writes it in links: ``0.001``, ``3e-05``."""
    return f"{value:g}"


def parse_rate(text: str | None) -> float | None:
    """A rate from a link, or None when absent or not a positive number."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if 0 < value <= 10 else None


def playground_defaults() -> dict[str, Any]:
    """The lab's optimizer settings (``core.teaching.playground.Settings``) as a dict."""
    return asdict(playground.Settings())


def surface_info(name: str) -> dict[str, Any]:
    """Title, lesson, ranges, default start and minimum of surface ``name``."""
    s = playground.surface(name)
    return {"title": s.title, "lesson": s.lesson, "x_range": s.x_range, "y_range": s.y_range, "start": s.start,
            "minimum": s.minimum, "noise": s.noise}


@st.cache_data(show_spinner=False, max_entries=8)
def surface_grid(name: str) -> tuple:
    """``core.teaching.playground.grid``: the surface's loss on a grid, for the contour plot."""
    return playground.grid(name)


@st.cache_data(show_spinner=False, max_entries=64)
def optimizer_paths(surface: str, settings: dict[str, Any], steps: int, start: tuple[float, float],
                    optimizers: tuple[str, ...], seed: int = 0) -> playground.Paths:
    """``core.teaching.playground.paths``: where each optimizer goes (cached: moving a slider back is free)."""
    return playground.paths(surface, playground.Settings(**settings), steps, start, optimizers, seed)


def optimizers_link(run_config: dict) -> dict[str, str]:
    """Query parameters that open the Optimizers page preset to a run's optimizer and learning rate
    (``run_config`` as ``services.run_config`` returns it)."""
    opt = run_config.get("optimizer", {})
    name = opt.get("name")
    params = {"opt": name if name in playground.OPTIMIZERS else "adam", "lr": format_rate(float(opt.get("learning_rate", 1e-3)))}
    if name == "sgd":
        params["momentum"] = f"{float(opt.get('momentum', 0.9)):g}"
    return params


def optimizers_href(run_id: str) -> str | None:
    """A relative link to the Optimizers page preset to run ``run_id``'s optimizer and learning rate,
    or None for a run without a stored config."""
    try:
        return "optimizers?" + urlencode(optimizers_link(run_config(run_id)))
    except RunNotFound:
        return None


def classroom_defaults() -> dict[str, Any]:
    """The classroom experiment's default setup (``core.teaching.classroom.Setup``) as a dict."""
    return asdict(classroom.Setup())


def classroom_experiment(**setup: Any) -> classroom.Experiment:
    """A classroom experiment with its backbone features ready (one backbone pass, cached on disk);
    iterate ``.epochs()`` to train. Not cached here: each run trains afresh."""
    return classroom.Experiment(classroom.Setup(**setup))


classroom_histories = classroom.histories
