"""A search's active job (progress, cancel) and why a search stopped, with a way to continue."""
from __future__ import annotations

import streamlit as st

from dashboard import services, ui
from dashboard.views.evolve_sections.common import fmt


def job_panel(job, state: dict | None) -> None:
    """The search's active job: what it does, its progress and a cancel button."""
    action = services.job_action(int(job.id))
    what = {"start": "search", "resume": "resumed search", "retrain": "retraining the best genome",
            "retrain-front": "retraining a front member"}[action]
    with st.container(border=True):
        ui.job_header(job, f"**Job #{job.id}** ({what})", f"evolve_cancel_{job.id}", job.note or "", rerun=True)
        if job.state in ("queued", "interrupted") and not services.worker_status().get("alive"):
            ui.worker_warning("Waiting for a worker, but none is running.", "evolve_start_worker")
        if job.state != "running":
            return
        eta, p = ui.eta(job), job.progress
        rounds, done, slots, slot = p.total or 0, p.done, p.part_total or 1, p.part_done
        if action == "retrain-front":
            st.progress(1.0, text="retraining a front member with the full budget")
        elif action == "retrain" or (rounds and done >= rounds):
            st.progress(1.0, text=f"retraining the best genome with the full budget as ga-{job.group}")
        elif not rounds:
            st.progress(0.0, text="loading data and starting the first training")
        elif state is not None and state["mode"] == "head":
            st.progress(min(done / rounds, 1.0), text=f"step {done} of {rounds} (GA, then Adam, then RMSprop){eta}")
        else:
            st.progress(min((done + slot / slots) / rounds, 1.0),
                        text=f"generation {done} of 0–{rounds - 1}: {slot}/{slots} individuals scored{eta}")


def status_panel(state: dict, job, last_saved: str) -> None:
    """Failed, stopped or orphaned searches: why, and a way to continue; then the search's notes and settings."""
    sid, status = state["search_id"], state["status"]
    idle = job is None or job.state not in services.ACTIVE_STATES
    if status == "failed":
        st.error(f"The search failed: {state['error'] or 'no error message was recorded'}", icon=":material/error:")
        if job is not None and job.log_tail:
            st.expander("Log tail of its job").code(job.log_tail, language=None)
    elif status == "stopped":
        st.warning(f"Stopped after generation {state['generation']} (cancelled)." if state["generation"] >= 0
                   else "Stopped before generation 0 was complete (cancelled).", icon=":material/pause_circle:")
    elif status == "running" and idle:
        st.warning("Marked running, but no queued job runs it: it runs from the command line, or its process was "
                   f"killed (last saved {last_saved}).",
                   icon=":material/help:")
    if status in ("failed", "stopped") or (status == "running" and idle):
        if idle and st.button("Resume search", key="evolve_resume",
                              help="Continues where it stopped: genomes already trained are not trained again."):
            services.submit_search_action(sid, "resume")
            st.rerun()
    for note in state["notes"]:
        st.info(note, icon=":material/info:")
    s = state["settings"]
    b = s["budget"]
    fixed = ", ".join(f"{k}={fmt(v)}" for k, v in s["fixed"].items()) or "none"
    if state["mode"] == "head":
        st.caption(f"Head weights on {state['dataset']}: population {s['population']}, {s['generations']} "
                   f"generations (Adam and RMSprop: as many epochs), seed {s['seed']}; backbone: {fixed}.")
    else:
        longer = f"; top third retrained for {b['long_epochs']} epochs" if b["long_epochs"] else ""
        strategy = services.search_strategies()[state["strategy"]].full
        st.caption(f"{strategy} on {state['dataset']}: population {s['population']}, "
                   f"generations 0–{s['generations']}, seed {s['seed']}. Fitness budget: {b['epochs']} epoch(s) on "
                   f"{b['max_train'] or 'all'} training images, scored on {b['max_eval'] or 'all'} validation "
                   f"images{longer}. Fixed genes: {fixed}.")
