"""Evolve: search training settings with a genetic algorithm (random search as the baseline), or evolve a
classifier head's weights against Adam and RMSprop; watch a search live and compare its best genome."""
from __future__ import annotations

import json
import math

import pandas as pd
import streamlit as st

from dashboard import services, ui
from dashboard.charts import evolve as evolve_charts
from dashboard.charts import runs as run_charts
from dashboard.charts.pareto import pareto_figure

ACTIVE = services.ACTIVE_STATES
MODES = {"hyper": "Training settings", "head": "A head's weights (GA vs Adam vs RMSprop)"}
STRATEGIES = {"ga": "Genetic algorithm", "random": "Random search (baseline)"}
METHODS = {"ga": "GA (PyGAD)", "adam": "Adam", "rmsprop": "RMSprop"}
COSTS = {"": "Validation accuracy only", "train_time": "Accuracy and training time",
         "latency": "Accuracy and inference latency", "train_flops": "Accuracy and training FLOPs"}
COST_LABELS = {"train_time_s": "training time (s)", "latency_ms_per_face": "inference latency (ms per face)",
               "train_flops": "training FLOPs"}
PIN_DEFAULTS = {"arch": "resnet50", "weights": "none", "input_size": 48}
duration = services.format_duration


def fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def prefill(settings: dict, dataset: str, strategy: str) -> None:
    """Callback: fill the New search form with a finished search's settings (another strategy)."""
    budget = settings["budget"]
    st.session_state.update({
        "evolve_dataset": dataset, "evolve_mode": "hyper", "evolve_strategy": strategy,
        "evolve_population": settings["population"], "evolve_generations": settings["generations"],
        "evolve_seed": settings["seed"], "evolve_epochs": budget["epochs"], "evolve_max_train": budget["max_train"] or 0,
        "evolve_max_eval": budget["max_eval"] or 0, "evolve_long": budget["long_epochs"],
        "evolve_fixed": list(settings["fixed"]), "evolve_prefilled": True,
        **{f"evolve_fix_{k}": v for k, v in settings["fixed"].items()}})


def open_in_compare(run_ids: list[str]) -> None:
    """Select these runs on the Compare page and go there."""
    st.session_state.update({"compare_group": "All runs", "compare_dataset": [], "compare_arch": [],
                             "compare_variant": [], "compare_runs": run_ids})
    st.switch_page("views/compare.py")


st.title("Evolve")
st.caption("A genetic algorithm (PyGAD) breeds training settings: each individual trains briefly and its "
           "validation accuracy is its fitness. Random search with the same budget is the baseline; the best "
           "genome is then retrained with the full budget and tested like the five configurations.")

options = services.search_options()

# ------------------------------------------------------------------ new search
with st.expander("New search", expanded=not options or st.session_state.get("evolve_prefilled", False),
                 icon=":material/add_circle:"):
    names = services.dataset_names()
    c1, c2, c3 = st.columns([2, 3, 3])
    dataset = c1.selectbox("Dataset", names, index=names.index("synthetic") if "synthetic" in names else 0,
                           key="evolve_dataset")
    mode = c2.radio("Evolve", services.search_modes(), format_func=lambda m: MODES.get(m, m), key="evolve_mode",
                    horizontal=True)
    head = mode == "head"
    strategy = c3.radio("Strategy", services.search_strategies(), format_func=lambda s: STRATEGIES.get(s, s),
                        key="evolve_strategy",
                        horizontal=True, disabled=head,
                        help="Random search draws every generation at random with the same budget: it tells "
                             "whether the GA's selection, crossover and mutation beat chance.")
    strategy = "ga" if head else strategy
    c1, c2, c3 = st.columns(3)
    population = int(c1.number_input("Population", 2, 64, 8, key="evolve_population"))
    generations = int(c2.number_input("Generations" + (" (and optimizer epochs)" if head else ""), 1, 1000, 5,
                                      key="evolve_generations"))
    seed = int(c3.number_input("Seed", 0, 2**31 - 1, 42, key="evolve_seed"))

    defaults = services.budget_defaults()
    st.markdown("**Fitness budget**: what each individual may spend; fitness is accuracy on the validation split"
                if not head else "**Data**: images the head is trained and scored on")
    b1, b2, b3, b4 = st.columns(4)
    epochs = int(b1.number_input("Epochs per individual", 1, 100, defaults["epochs"], key="evolve_epochs",
                                 disabled=head))
    max_train = int(b2.number_input("Training images (0 = all)", 0, 1_000_000, defaults["max_train"] or 0, step=100,
                                    key="evolve_max_train"))
    max_eval = int(b3.number_input("Validation images (0 = all)", 0, 1_000_000, defaults["max_eval"] or 0, step=50,
                                   key="evolve_max_eval"))
    long_epochs = int(b4.number_input("Longer run for the top third", 0, 200, defaults["long_epochs"],
                                      key="evolve_long", disabled=head,
                                      help="Epochs (0 = off). Multi-fidelity: the best third of every "
                                           "generation trains this long and is ranked by that longer run."))
    budget = {"epochs": epochs, "max_train": max_train or None, "max_eval": max_eval or None,
              "long_epochs": 0 if head else long_epochs}

    genes = services.gene_choices(mode)
    if head:
        st.markdown("**Backbone**: the head is trained on its pooled features, computed once")
        pinned = list(genes)
    else:
        st.markdown("**Genes**: pin the ones to keep fixed; the others evolve")
        pinned = st.multiselect("Fixed genes", list(genes), default=["arch", "input_size"], key="evolve_fixed")
    fixed = {}
    cols = st.columns(4)
    for i, name in enumerate(pinned):
        choices = list(genes[name])
        default = PIN_DEFAULTS.get(name, choices[0])
        fixed[name] = cols[i % 4].selectbox(name, choices, index=choices.index(default) if default in choices else 0,
                                            format_func=fmt, key=f"evolve_fix_{name}")
    weights = services.weights_status().set_index("architecture").cached
    archs = [fixed["arch"]] if "arch" in fixed else list(genes["arch"])
    missing = [a for a in archs if not weights.get(a, False)]
    if missing and fixed.get("weights") == "imagenet":
        st.warning(f"ImageNet weights are not cached for {', '.join(missing)}: pin weights to `none`, or run "
                   "`python -m core fetch-weights` on a machine with internet.", icon=":material/warning:")
    problem_freeze = ""
    if not head:
        # Without cached ImageNet weights for every candidate architecture the search pins weights to none.
        # Freezing only makes sense for pretrained weights: without them frozen_blocks stays 0 too.
        scratch_only = fixed.get("weights") == "none" or (missing and "weights" not in fixed)
        free = [g for g in genes if g not in fixed and not (g == "weights" and missing)
                and not (g == "frozen_blocks" and scratch_only)]
        size = math.prod(len(genes[g]) for g in free)
        pinned_weights = (f" ImageNet weights are not cached for {', '.join(missing)}, so weights stays `none`."
                          if missing and "weights" not in fixed else "")
        if scratch_only and "frozen_blocks" not in fixed:
            pinned_weights += (" Freezing only makes sense for pretrained weights, so frozen_blocks stays 0 "
                               "(no evaluation is spent on frozen random blocks).")
        if scratch_only and fixed.get("frozen_blocks", 0) != 0:
            problem_freeze = (f"frozen_blocks={fixed['frozen_blocks']} would freeze randomly initialised blocks: "
                              "freezing needs ImageNet weights. Pin frozen_blocks to 0 or leave it free.")
            st.warning(problem_freeze, icon=":material/warning:")
        st.caption((f"Evolving {', '.join(free)}: {size:,} possible genomes." if free else
                    "Every gene is fixed: the search can only train one genome.") + pinned_weights)

    objectives = ("accuracy",)
    if not head:
        goal = st.selectbox("Objectives", ["", *services.objective_costs()], format_func=lambda c: COSTS.get(c, c),
                            key="evolve_objectives",
                            help="With a cost, the GA selects with NSGA-II and evolves a front of genomes that trade "
                                 "validation accuracy against that cost, instead of a single best.")
        objectives = ("accuracy", goal) if goal else objectives
    if head:
        retrain, final_epochs = False, 10
    else:
        r1, r2 = st.columns([3, 1])
        retrain = r1.checkbox("Retrain the best genome with the full budget and test it (variant `ga-<search id>`)",
                              True, key="evolve_retrain")
        final_epochs = int(r2.number_input("Full budget (epochs)", 1, 200, 10, key="evolve_final_epochs",
                                           disabled=not retrain, help="Epochs of the final retrain, on all "
                                                                      "training images, tested on the test split"))
    problem = problem_freeze
    if long_epochs and not head and long_epochs <= epochs:
        problem = f"The longer budget ({long_epochs} epochs) must exceed the short one ({epochs})."
        st.warning(problem, icon=":material/warning:")

    est = services.evolve_estimate(dataset, mode, population, generations, budget, fixed, final_epochs, seed, retrain)
    if head:
        st.caption(f"Estimated time on this machine: about **{duration(est['seconds'])}** for the backbone features "
                   "(computed once, then cached); the GA, Adam and RMSprop then run on them in seconds.")
    else:
        parts = [f"{population} individuals × {generations + 1} generations (0 to {generations}) = up to "
                 f"{est['trainings']} short trainings of about {duration(est['per_training'])} each"]
        if est["long_trainings"]:
            parts.append(f"up to {est['long_trainings']} longer ones")
        if retrain:
            parts.append(f"the final retrain, about {duration(est['final_seconds'])}")
        st.caption(f"Estimated time on this machine: at most **{duration(est['seconds'])}**: {'; '.join(parts)}. "
                   "Genomes seen before are not trained again, so a converging GA costs less.")

    if st.button("Start search", type="primary", key="evolve_start", disabled=bool(problem)):
        # The id is kept until the job is queued: a submission that is retried reuses it (and its job).
        id_key = f"evolve_next_id_{strategy}_{mode}"
        settings = dict(dataset=dataset, population=population, generations=generations, strategy=strategy,
                        mode=mode, budget=budget, fixed=fixed, seed=seed, retrain_best=retrain,
                        final_epochs=final_epochs, objectives=objectives)
        sid = st.session_state.setdefault(id_key, services.new_search_id(strategy, mode))
        try:
            job_id, sid = services.submit_evolve(**settings, search_id=sid,
                                                 key=json.dumps(settings, sort_keys=True, default=str) + sid)
        except (ValueError, FileNotFoundError) as exc:
            st.error(f"Not started: {exc}", icon=":material/error:")
        else:
            st.session_state.pop(id_key)
            st.session_state.evolve_search = sid  # show it below
            st.success(f"Queued search **{sid}** (job #{job_id}); the worker starts it in a moment.",
                       icon=":material/check:")
            options = services.search_options()
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


def describe(sid: str) -> str:
    if sid not in listed.index:
        return f"{sid} · queued"
    r = listed.loc[sid]
    best = f" · best {r.best_fitness:.3f}" if pd.notna(r.best_fitness) else ""
    kind = "head" if r["mode"] == "head" else ("GA" if r.strategy == "ga" else "random")
    return f"{sid} · {kind} · {r.dataset} · {r.status}{best}"


sid = st.selectbox("Search", options, format_func=describe, key="evolve_search")


def latest_job(search_id: str):
    table = services.search_jobs(search_id)
    return table.iloc[0] if len(table) else None


def is_live(search_id: str) -> bool:
    job, state = latest_job(search_id), services.search(search_id)
    return (job is not None and job.state in ACTIVE) or (state is not None and state["status"] == "running")


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


def status_panel(state: dict, job) -> None:
    """Failed, stopped or orphaned searches: why, and a way to continue."""
    sid, status = state["search_id"], state["status"]
    idle = job is None or job.state not in ACTIVE
    if status == "failed":
        st.error(f"The search failed: {state['error'] or 'no error message was recorded'}", icon=":material/error:")
        if job is not None and job.log_tail:
            st.expander("Log tail of its job").code(job.log_tail, language=None)
    elif status == "stopped":
        st.warning(f"Stopped after generation {state['generation']} (cancelled)." if state["generation"] >= 0
                   else "Stopped before generation 0 was complete (cancelled).", icon=":material/pause_circle:")
    elif status == "running" and idle:
        st.warning("Marked running, but no queued job runs it: it runs from the command line, or its process was "
                   f"killed (last saved {listed.loc[sid, 'updated'] if sid in listed.index else 'unknown'}).",
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
        st.caption(f"{STRATEGIES[state['strategy']]} on {state['dataset']}: population {s['population']}, "
                   f"generations 0–{s['generations']}, seed {s['seed']}. Fitness budget: {b['epochs']} epoch(s) on "
                   f"{b['max_train'] or 'all'} training images, scored on {b['max_eval'] or 'all'} validation "
                   f"images{longer}. Fixed genes: {fixed}.")


def gene_table(frame: pd.DataFrame, genes: list[str]) -> pd.DataFrame:
    """Gene columns as ordered categories (search-space order), for tables and parallel coordinates."""
    out = frame.copy()
    space = services.gene_choices()
    for g in genes:
        out[g] = pd.Categorical(out[g].map(fmt), categories=[fmt(c) for c in space[g]], ordered=True)
    return out


def hyper_view(state: dict, job) -> None:
    s, cost, gens = state["settings"], state["cost"], state["generations"]
    best = state["best"]
    c = st.columns(5)
    c[0].metric("Generations scored", f"{len(gens)} / {s['generations'] + 1}")
    c[1].metric("Best fitness", f"{best['fitness']:.3f}" if best else "–", help="Validation accuracy after the "
                                                                               "short budget")
    c[2].metric("Trainings", cost["evaluations"])
    c[3].metric("Cache hits", cost["cache_hits"], help="Slots whose genome was trained before: scored for free")
    c[4].metric("Time spent", duration(cost["seconds"]))
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
        columns = ["generation", "slot", *free, "fitness", *(["fidelity"] if b_long(s) else []), "cached", "run_id"]
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
    sid, cost = state["search_id"], state["cost_metrics"][0]
    label = COST_LABELS.get(cost, cost)
    pop = state["population"]
    st.subheader("Front per generation")
    generations = sorted(set(pop.generation))
    g = st.select_slider("Generation", generations, value=generations[-1], key="evolve_front_generation") \
        if len(generations) > 1 else generations[0]
    shown = pop[pop.generation == g].assign(genome=lambda d: "slot " + d.slot.astype(str))
    st.plotly_chart(ui.tight(pareto_figure(shown, cost, "fitness", shown.on_front, x_title=label,
                                                  y_title="validation accuracy", label="genome",
                                                  log_x=cost == "train_flops")), key="evolve_front_chart")
    st.caption(f"Generation {g}: each individual's validation accuracy after the short budget against its "
               f"{label} (measured on this machine in that short run). Diamonds joined by the dotted line: the "
               "generation's non-dominated individuals, which NSGA-II prefers as parents.")
    st.subheader("Final front")
    front = state["front"]
    if front.empty:
        st.info("The front appears once individuals have finished training.", icon=":material/hourglass_top:")
        return
    table = gene_table(front, free)[["member", *free, "fitness", cost, "retrain_status", "test_accuracy"]]
    st.dataframe(table, hide_index=True, key="evolve_front_table", column_config={
        "fitness": st.column_config.NumberColumn("val accuracy", format="%.3f"),
        cost: st.column_config.NumberColumn(label, format="%.4g"),
        "retrain_status": st.column_config.TextColumn("full-budget retrain"),
        "test_accuracy": st.column_config.NumberColumn("test accuracy", format="percent")})
    st.caption("Non-dominated genomes of everything the search scored, cheapest first: none is beaten by another "
               "on both validation accuracy and cost. Retrain a member with the full budget to test it as "
               f"`ga-{sid}-<member>`; it then appears on Compare's accuracy-against-cost chart.")
    busy = job is not None and job.state in ACTIVE
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


def b_long(settings: dict) -> int:
    return settings["budget"]["long_epochs"]


def best_panel(state: dict, job) -> None:
    sid, best = state["search_id"], state["best"]
    st.subheader("Best genome")
    if best is None:
        st.info("No individual has finished training yet.", icon=":material/hourglass_top:")
        return
    st.dataframe(pd.DataFrame([{k: fmt(v) for k, v in best["genes"].items()}]), hide_index=True, key="evolve_best")
    st.caption(f"Fitness {best['fitness']:.3f} (validation accuracy after the short budget), run {best['run_id']}.")
    retraining = job is not None and job.state in ACTIVE and services.job_action(int(job.id)) == "retrain"
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
        other = "random" if state["strategy"] == "ga" else "ga"
        st.caption(f"No {STRATEGIES[other].lower()} with the same dataset, population, generations and budget yet: "
                   "run one to see whether " + ("the GA beats chance at equal cost." if other == "random"
                                                 else "a GA does better at equal cost."))
        st.button(f"Prefill a {STRATEGIES[other].lower()} with these settings", key="evolve_prefill",
                  on_click=prefill, args=(state["settings"], state["dataset"], other))


def seeds_panel(sid: str, peers: pd.DataFrame) -> None:
    """Best-so-far fitness across seeds, per strategy: is the GA's edge larger than seed noise?"""
    counts = peers.strategy.value_counts()
    st.markdown("**Best so far, across seeds**")
    if counts.max() < 2:
        st.caption("One search per strategy: run several seeds (`python -m core evolve --seeds N ...`) to see the "
                   "spread between searches that differ only by their seed.")
        return
    by_evals, by_time = st.tabs(["Against trainings spent", "Against training time"])
    for tab, x, title in ((by_evals, "evaluations", "trainings spent"), (by_time, "seconds", "training time (s)")):
        tab.plotly_chart(ui.tight(evolve_charts.strategy_band_figure(services.search_seed_bands(sid, x), x, x_title=title,
                                                     y_title="best validation fitness so far", names=STRATEGIES)),
                         key=f"evolve_seed_bands_{x}")
    st.caption("Mean best-so-far validation accuracy of "
               + " and ".join(f"{n} {STRATEGIES[s].lower()} searches" for s, n in counts.items())
               + " that differ only by their seed; the band is a 95% t-interval across those seeds. Cache hits cost "
                 "nothing, so a converging search stops spending before the others.")


def head_view(state: dict) -> None:
    curves = state["curves"]
    if curves.empty:
        st.info("Computing backbone features; the curves appear as soon as the GA's first generation is scored.",
                icon=":material/hourglass_top:")
        return
    last = curves.sort_values("step").groupby("method").tail(1).set_index("method")
    cols = st.columns(4)
    for col, method in zip(cols, METHODS):
        if method in last.index:
            col.metric(f"{METHODS[method]} val accuracy", f"{last.loc[method, 'val_accuracy']:.3f}",
                       help=f"after {int(last.loc[method, 'step'])} steps")
    cols[3].metric("Time spent", duration(float(last.seconds.sum())))
    runs = {METHODS[m]: df.rename(columns={"step": "epoch", "train_loss": "loss"})
            for m, df in curves.groupby("method", sort=False)}
    acc, loss = st.tabs(["Validation accuracy", "Training loss"])
    step = "Step (GA generation / optimizer epoch)"
    acc.plotly_chart(ui.tight(run_charts.curves_figure({k: v[["epoch", "val_accuracy"]] for k, v in runs.items()},
                                                "accuracy")).update_xaxes(title=step), key="evolve_head_accuracy")
    loss.plotly_chart(ui.tight(run_charts.curves_figure({k: v[["epoch", "loss"]] for k, v in runs.items()}, "loss"))
                      .update_xaxes(title=step), key="evolve_head_loss")
    h = state.get("head") or {}
    st.caption(f"The same dense softmax head on {h.get('arch')} features ({h.get('weights')} weights, "
               f"{h.get('input_size')} px, {h.get('feature_dim')} features; {h.get('n_train')} training and "
               f"{h.get('n_val')} validation images), started from zero: evolved by PyGAD (fitness = minus the "
               "training cross-entropy) or trained by Adam and RMSprop.")
    table = last.reset_index()[["method", "step", "val_accuracy", "train_loss", "forward_passes", "seconds"]]
    table["method"] = table.method.map(METHODS)
    three = st.column_config.NumberColumn(format="%.3f")
    st.dataframe(table, hide_index=True, key="evolve_head_table", column_config={
        "val_accuracy": three, "train_loss": three, "seconds": st.column_config.NumberColumn(format="%.1f")})


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
        job_panel(job, state)
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
    status_panel(state, job)
    if state["mode"] == "head":
        head_view(state)
    else:
        hyper_view(state, job)


watch()
