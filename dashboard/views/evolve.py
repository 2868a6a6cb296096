"""Evolve: search training settings with a genetic algorithm (random search as the baseline), or evolve a
classifier head's weights against Adam and RMSprop; watch a search live and compare its best genome.

The sections live in ``dashboard.views.evolve_sections``; this script lays them out and picks the search."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import services
from dashboard.views.evolve_sections import form, head, hyper, status

ACTIVE = services.ACTIVE_STATES

st.title("Evolve")
st.caption("A genetic algorithm (PyGAD) breeds training settings: each individual trains briefly and its "
           "validation accuracy is its fitness. Random search with the same budget is the baseline; the best "
           "genome is then retrained with the full budget and tested like the five configurations.")

options = form.new_search(services.search_options())
st.session_state.pop("evolve_prefilled", None)

# ------------------------------------------------------------------ watch a search
st.subheader("Searches")
if not options:
    st.info("No searches yet. Open **New search** above, choose what to evolve and press **Start search**. "
            "Searches run in the background worker: you can close this tab and come back.",
            icon=":material/info:")
    st.stop()

listed = services.searches().set_index("search_id")
wanted = st.query_params.get("search")
if wanted in options and "evolve_search" not in st.session_state:
    st.session_state.evolve_search = wanted
if st.session_state.get("evolve_search") not in options:
    st.session_state.pop("evolve_search", None)
modes, strategies = services.search_modes(), services.search_strategies()


def describe(sid: str) -> str:
    if sid not in listed.index:
        return f"{sid} · queued"
    r = listed.loc[sid]
    best = f" · best {r.best_fitness:.3f}" if pd.notna(r.best_fitness) else ""
    kind = strategies[r.strategy].short if r["mode"] == "hyper" else modes[r["mode"]].short
    return f"{sid} · {kind} · {r.dataset} · {r.status}{best}"


sid = st.selectbox("Search", options, format_func=describe, key="evolve_search")


def latest_job(search_id: str):
    table = services.search_jobs(search_id)
    return table.iloc[0] if len(table) else None


def is_live(search_id: str) -> bool:
    job, state = latest_job(search_id), services.search(search_id)
    return (job is not None and job.state in ACTIVE) or (state is not None and state["status"] == "running")


live = is_live(sid)


@st.fragment(run_every=2 if live else None)
def watch() -> None:
    # Only this part polls while the search runs; when it starts or ends the whole page reruns,
    # as it does after "Prefill" (a callback here) so the form above shows the new values.
    if is_live(sid) != live or st.session_state.get("evolve_prefilled"):
        services.searches.clear()  # the picker shows the new status at once
        st.rerun()
    job, state = latest_job(sid), services.search(sid)
    if job is not None and job.state in ACTIVE:
        status.job_panel(job, state)
    if state is None:
        if job is None:
            st.warning("This search has neither a saved state nor a job.", icon=":material/help:")
        elif job.state in ACTIVE:
            st.info("Queued: the worker starts this search in a moment; its generations appear here as they are "
                    "scored.", icon=":material/schedule:")
        elif job.state == "failed":
            st.error(f"The search failed before it started: {job.error}", icon=":material/error:")
        else:
            st.warning(f"Its job was {job.state} before the search started.", icon=":material/cancel:")
        return
    status.status_panel(state, job, listed.loc[sid, "updated"] if sid in listed.index else "unknown")
    if state["mode"] == "head":
        head.show(state)
    else:
        hyper.show(state, job)


watch()
