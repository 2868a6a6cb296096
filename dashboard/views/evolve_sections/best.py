"""A settings search's best genome: retraining it, against the five configurations, and against other
strategies at equal cost across seeds."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import services, ui
from dashboard.charts import evolve as evolve_charts
from dashboard.charts import runs as run_charts
from dashboard.views.evolve_sections.common import fmt, open_in_compare
from dashboard.views.evolve_sections.form import prefill


def best_panel(state: dict, job) -> None:
    """The best genome so far, its full-budget retrain, and how it compares."""
    sid, best = state["search_id"], state["best"]
    st.subheader("Best genome")
    if best is None:
        st.info("No individual has finished training yet.", icon=":material/hourglass_top:")
        return
    st.dataframe(pd.DataFrame([{k: fmt(v) for k, v in best["genes"].items()}]), hide_index=True, key="evolve_best")
    st.caption(f"Fitness {best['fitness']:.3f} (validation accuracy after the short budget), run {best['run_id']}.")
    retraining = job is not None and job.state in services.ACTIVE_STATES and services.job_action(int(job.id)) == "retrain"
    if state["final_test_accuracy"] is not None:
        st.success(f"Retrained with the full budget as **ga-{sid}**: test accuracy "
                   f"**{state['final_test_accuracy']:.1%}** on the real test split, which the search never saw.",
                   icon=":material/trophy:")
    elif retraining or (state["final_run_id"] and state["status"] == "running"):
        st.info(f"Retraining the best genome with the full budget as ga-{sid}…", icon=":material/hourglass_top:")
    elif state["status"] == "finished":
        st.info("The best genome has not been retrained with the full budget yet: retrain it to test it beside the "
                "five configurations.", icon=":material/info:")
        if st.button("Retrain best genome", type="primary", key="evolve_retrain_best"):
            services.submit_search_action(sid, "retrain")
            st.rerun()
    elif state["settings"]["retrain_best"]:
        st.caption(f"When the search ends, this genome (or a better one) is retrained with the full budget as ga-{sid}.")
    compare_panel(state)


def compare_panel(state: dict) -> None:
    """The retrained best genome against the five configurations, and this search against other strategies."""
    sid = state["search_id"]
    st.subheader("Against the five configurations and random search")
    comp = services.evolve_comparison(sid)
    if comp.empty:
        st.info(f"No finished runs on {state['dataset']} have test results yet. Train the five configurations on "
                "the **Train** page (same dataset) to see this genome beside them.", icon=":material/info:")
    else:
        st.plotly_chart(ui.tight(run_charts.metric_bars_figure(comp, "test_accuracy", "CI low", "CI high")),
                        key="evolve_compare_bars")
        st.caption(f"Test accuracy on {state['dataset']}'s test split with bootstrap 95% CIs: this search's best "
                   "genome retrained with the full budget, the latest finished run of each configuration, and other "
                   "searches' best genomes. Runs trained for different epochs are not a fair match:")
        st.dataframe(comp.drop(columns=["CI low", "CI high"]), hide_index=True, key="evolve_compare_table",
                     column_config={"test_accuracy": st.column_config.NumberColumn("test accuracy", format="percent"),
                                    "run_id": st.column_config.TextColumn("run")})
        if (comp.kind == "this search").any():
            if st.button("Open these runs in Compare", icon=":material/compare:", key="evolve_open_compare",
                         help="Curves, confusion matrices, per-class metrics and a significance test side by side"):
                open_in_compare(comp.run_id.tolist())
        else:
            st.caption("Retrain this search's best genome to see it here and on **Compare** (variant "
                       f"`ga-{sid}`) beside the configurations.")
    peers = services.search_fitness_peers(sid)
    st.markdown("**GA against random search at the same cost**")
    if len(peers) > 1:
        st.plotly_chart(ui.tight(run_charts.metric_bars_figure(peers, "best_fitness")), key="evolve_peer_bars")
        st.caption("Best fitness of searches with the same dataset, population, generations and fitness budget: "
                   "GA and random search spent the same, so the difference is the GA's.")
        seeds_panel(sid, peers)
    else:
        strategies = services.search_strategies()
        others = [s for s in strategies if s != state["strategy"]]
        st.caption(f"No {' or '.join(strategies[s].full.lower() for s in others)} with the same dataset, population, "
                   "generations and budget yet: run one to see whether " + (
                       "the GA beats chance at equal cost." if state["strategy"] == "ga"
                       else "a GA does better at equal cost."))
        for i, other in enumerate(others):
            st.button(f"Prefill a {strategies[other].full.lower()} with these settings",
                      key="evolve_prefill" + (f"_{other}" if i else ""), on_click=prefill,
                      args=(state["settings"], state["dataset"], other))


def seeds_panel(sid: str, peers: pd.DataFrame) -> None:
    """Best-so-far fitness across seeds, per strategy: is the GA's edge larger than seed noise?"""
    counts = peers.strategy.value_counts()
    st.markdown("**Best so far, across seeds**")
    if counts.max() < 2:
        st.caption("One search per strategy: run several seeds (`python -m core evolve --seeds N ...`) to see the "
                   "spread between searches that differ only by their seed.")
        return
    names = {s: label.full for s, label in services.search_strategies().items()}
    by_evals, by_time = st.tabs(["Against trainings spent", "Against training time"])
    for tab, x, title in ((by_evals, "evaluations", "trainings spent"), (by_time, "seconds", "training time (s)")):
        fig = evolve_charts.strategy_band_figure(services.search_seed_bands(sid, x), x, x_title=title,
                                                 y_title="best validation fitness so far", names=names)
        tab.plotly_chart(ui.tight(fig), key=f"evolve_seed_bands_{x}")
    st.caption("Mean best-so-far validation accuracy of "
               + " and ".join(f"{n} {names[s].lower()} searches" for s, n in counts.items())
               + " that differ only by their seed; the band is a 95% t-interval across those seeds. Cache hits cost "
                 "nothing, so a converging search stops spending before the others.")
