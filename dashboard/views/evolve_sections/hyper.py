"""A settings search: fitness per generation, the population, genes against fitness and, with a cost
beside accuracy, its fronts."""
from __future__ import annotations

import streamlit as st

from dashboard import services, ui
from dashboard.charts import evolve as evolve_charts
from dashboard.charts.pareto import pareto_figure
from dashboard.views.evolve_sections.best import best_panel
from dashboard.views.evolve_sections.common import gene_table, open_in_compare


def show(state: dict, job) -> None:
    """A settings search (mode hyper) as far as it got, then its best genome."""
    s, cost, gens = state["settings"], state["cost"], state["generations"]
    best = state["best"]
    # Two rows of three: five tiles in one row cut their labels ("Best fitn…") at 1000 px.
    c = [*st.columns(3), *st.columns(3)[:2]]
    # Populations, not generations: "Generations 1" in the form breeds one generation after the random
    # initial population, so two populations get scored (the caption's "generations 0–1").
    c[0].metric("Populations scored", f"{len(gens)} / {s['generations'] + 1}",
                help="The initial random population (generation 0) and each generation bred after it.")
    c[1].metric("Best fitness", f"{best['fitness']:.3f}" if best else "–", help="Validation accuracy after the "
                                                                               "short budget")
    c[2].metric("Time spent", services.format_duration(cost["seconds"]))
    c[3].metric("Trainings", cost["evaluations"])
    c[4].metric("Cache hits", cost["cache_hits"], help="Slots whose genome was trained before: scored for free")
    free = [g for g in state["genes"] if g not in s["fixed"]]
    evals = state["evaluations"]
    if gens.empty:
        done = int(evals.status.isin(["FINISHED", "FAILED"]).sum())
        if state["status"] == "running":
            st.info(f"Generation 0 is being scored: {done} of {s['population']} individuals trained so far. The "
                    "fitness chart and the population appear when the generation is complete.",
                    icon=":material/hourglass_top:")
        else:
            st.info("No generation was completed.", icon=":material/info:")
        if len(evals):
            st.dataframe(gene_table(evals, free)[[*free, "status", "fitness", "seconds", "run_id"]], hide_index=True,
                         key="evolve_partial")
    else:
        st.subheader("Fitness per generation")
        fig = ui.tight(evolve_charts.fitness_figure(gens), height=380)
        st.plotly_chart(fig, key="evolve_fitness")
        st.caption("Best, mean and worst validation accuracy of each generation's individuals after the short "
                   "budget. With elitism the best never falls; a flat mean means the population has converged.")
        st.subheader("Population")
        pop = gene_table(state["population"], free).sort_values(["generation", "fitness"], ascending=[False, False])
        longer = ["fidelity"] if s["budget"]["long_epochs"] else []
        columns = ["generation", "slot", *free, "fitness", *longer, "cached", "run_id"]
        st.dataframe(pop[columns], hide_index=True, key="evolve_population_table", column_config={
            "fitness": st.column_config.ProgressColumn("fitness", format="%.3f", min_value=0.0, max_value=1.0),
            "cached": st.column_config.CheckboxColumn("cache hit"), "run_id": st.column_config.TextColumn("run")})
        if len(state["objectives"]) > 1:
            front_panel(state, job, free)
        st.subheader("Genes against fitness")
        trained = evals[(evals.status == "FINISHED") & (evals.fidelity == "short")]
        if free and len(trained):
            # The first axis draws its tick labels to its left: room for them.
            fig = evolve_charts.parallel_coordinates_figure(gene_table(trained, free)[[*free, "fitness"]])
            st.plotly_chart(ui.tight(fig).update_layout(margin=dict(l=90, t=50)), key="evolve_parcoords")
            st.caption("One line per trained genome, coloured by fitness. Drag along an axis to pick a range.")
        else:
            st.caption("Every gene is fixed: there is nothing to plot against fitness.")
    best_panel(state, job)


def front_panel(state: dict, job, free: list[str]) -> None:
    """A multi-objective search: each generation's front, and the final front with full-budget retrains."""
    objectives = services.search_objectives()
    sid, cost, accuracy = state["search_id"], state["cost_metrics"][0], objectives["accuracy"].label
    label = objectives[state["objectives"][1]].axis_title
    pop = state["population"]
    st.subheader("Front per generation")
    generations = sorted(set(pop.generation))
    g = st.select_slider("Generation", generations, value=generations[-1], key="evolve_front_generation") \
        if len(generations) > 1 else generations[0]
    shown = pop[pop.generation == g].assign(genome=lambda d: "slot " + d.slot.astype(str))
    st.plotly_chart(ui.tight(pareto_figure(shown, cost, "fitness", shown.on_front, x_title=label, y_title=accuracy,
                                           label="genome", log_x=cost == "train_flops", y_percent=True,
                                           x_format=lambda v: services.format_cost(cost, v))),
                    key="evolve_front_chart")
    st.caption(f"Generation {g}: each individual's validation accuracy after the short budget against its "
               f"{label} (measured on this machine in that short run). Diamonds joined by the dotted line: the "
               "generation's non-dominated individuals, which NSGA-II prefers as parents.")
    st.subheader("Final front")
    front = state["front"]
    if front.empty:
        st.info("The front appears once individuals have finished training.", icon=":material/hourglass_top:")
        return
    table = gene_table(front, free)[["member", *free, "fitness", cost, "retrain_status", "test_accuracy"]]
    # The cost with its unit (SI prefixes, "10.2 TFLOP"); both accuracies in %, one unit per table.
    table[cost] = [services.format_cost(cost, v) for v in table[cost]]
    st.dataframe(table, hide_index=True, key="evolve_front_table", column_config={
        "fitness": st.column_config.NumberColumn("val accuracy", format="percent"),
        cost: st.column_config.TextColumn(label),
        "retrain_status": st.column_config.TextColumn("full-budget retrain"),
        "test_accuracy": st.column_config.NumberColumn("test accuracy", format="percent")})
    st.caption("Non-dominated genomes of everything the search scored, cheapest first: none is beaten by another "
               "on both validation accuracy and cost. Retrain a member with the full budget to test it as "
               f"`ga-{sid}-<member>`; it then appears on Compare's accuracy-against-cost chart.")
    busy = job is not None and job.state in services.ACTIVE_STATES
    if state["status"] != "finished" or busy:
        st.caption("Members can be retrained once the search has finished.")
        return
    c1, c2 = st.columns([1, 3])
    member = c1.selectbox("Member", list(front.member), key="evolve_front_member")
    if c2.button(f"Retrain member {member} with the full budget", key="evolve_front_retrain", type="primary",
                 disabled=front.set_index("member").loc[member, "retrain_status"] == "FINISHED"):
        services.submit_search_action(sid, "retrain-front", member=int(member))
        st.rerun()
    retrained = front[front.retrain_status == "FINISHED"].retrain_run_id.tolist()
    if retrained and st.button("Open retrained members in Compare", icon=":material/compare:",
                               key="evolve_front_compare"):
        open_in_compare(retrained + ([state["final_run_id"]] if state["final_run_id"] else []))

