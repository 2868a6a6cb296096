"""The Evolve page's New search form, and prefilling it from a finished search's settings."""
from __future__ import annotations

import json
import math

import streamlit as st

from dashboard import services
from dashboard.views.evolve_sections.common import fmt

PIN_DEFAULTS = {"arch": "resnet50", "weights": "none", "input_size": 48}
duration = services.format_duration


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


def new_search(options: list[str]) -> list[str]:
    """The New search form, open when there is no search yet; returns the search ids to offer (``options``,
    with the one it queued)."""
    with st.expander("New search", expanded=not options or st.session_state.get("evolve_prefilled", False),
                     icon=":material/add_circle:"):
        names = services.dataset_names()
        modes, strategies = services.search_modes(), services.search_strategies()
        c1, c2, c3 = st.columns([2, 3, 3])
        dataset = c1.selectbox("Dataset", names, index=names.index("synthetic") if "synthetic" in names else 0,
                               key="evolve_dataset")
        mode = c2.radio("Evolve", list(modes), format_func=lambda m: modes[m].full, key="evolve_mode", horizontal=True)
        head = mode == "head"
        strategy = c3.radio("Strategy", list(strategies), format_func=lambda s: strategies[s].full,
                            key="evolve_strategy", horizontal=True, disabled=head,
                            help="Random search draws every generation at random with the same budget: it tells "
                                 "whether the GA's selection, crossover and mutation beat chance.")
        strategy = "ga" if head else strategy
        c1, c2, c3 = st.columns(3)
        population = int(c1.number_input("Population", 2, 64, 8, key="evolve_population"))
        generations = int(c2.number_input("Generations" + (" (and optimizer epochs)" if head else ""), 1, 1000, 5,
                                          key="evolve_generations",
                                          help="Generations bred after the initial random population "
                                               "(generation 0), so 5 means populations 0 to 5."))
        seed = int(c3.number_input("Seed", 0, 2**31 - 1, 42, key="evolve_seed"))

        budget = budget_inputs(head)
        fixed, problem = gene_inputs(mode)
        objectives = ("accuracy",)
        if not head:
            known = services.search_objectives()
            goal = st.selectbox("Objectives", ["", *list(known)[1:]], key="evolve_objectives",
                                format_func=lambda c: f"Accuracy and {known[c].label}" if c
                                else f"{known['accuracy'].label.capitalize()} only",
                                help="With a cost, the GA selects with NSGA-II and evolves a front of genomes that "
                                     "trade validation accuracy against that cost, instead of a single best.")
            objectives = ("accuracy", goal) if goal else objectives
        if head:
            retrain, final_epochs = False, 10
        else:
            r1, r2 = st.columns([3, 1])
            # A short label: a checkbox label does not wrap, and at 1000 px the longer one was cut.
            retrain = r1.checkbox("Retrain the best genome with the full budget and test it", True,
                                  key="evolve_retrain", help="The retrained genome appears on Compare as variant "
                                                             "`ga-<search id>`.")
            final_epochs = int(r2.number_input("Full budget (epochs)", 1, 200, 10, key="evolve_final_epochs",
                                               disabled=not retrain, help="Epochs of the final retrain, on all "
                                                                          "training images, tested on the test split"))
        epochs, long_epochs = budget["epochs"], budget["long_epochs"]
        if long_epochs and long_epochs <= epochs:
            problem = f"The longer budget ({long_epochs} epochs) must exceed the short one ({epochs})."
            st.warning(problem, icon=":material/warning:")

        estimate_caption(services.evolve_estimate(dataset, mode, population, generations, budget, fixed,
                                                  final_epochs, seed, retrain), head, population, generations, retrain)
        if st.button("Start search", type="primary", key="evolve_start", disabled=bool(problem)):
            settings = dict(dataset=dataset, population=population, generations=generations, strategy=strategy,
                            mode=mode, budget=budget, fixed=fixed, seed=seed, retrain_best=retrain,
                            final_epochs=final_epochs, objectives=objectives)
            if submit(settings):
                options = services.search_options()
    return options


def budget_inputs(head: bool) -> dict:
    """What each individual may spend (mode hyper) or the images a head is trained and scored on (mode head)."""
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
    return {"epochs": epochs, "max_train": max_train or None, "max_eval": max_eval or None,
            "long_epochs": 0 if head else long_epochs}


def gene_inputs(mode: str) -> tuple[dict, str]:
    """The pinned genes, with what the search space makes of them; returns them and why the search cannot
    start ("" when it can)."""
    head = mode == "head"
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
    space, notes, problem = services.search_space(fixed)
    if problem:
        st.warning(problem, icon=":material/warning:")
    if not head:
        free = [g for g, choices in space.items() if len(choices) > 1]
        size = math.prod(len(choices) for choices in space.values())
        st.caption((f"Evolving {', '.join(free)}: {size:,} possible genomes." if free else
                    "Every gene is fixed: the search can only train one genome.") + "".join(f" {n}" for n in notes))
    return fixed, problem or ""


def estimate_caption(est: dict, head: bool, population: int, generations: int, retrain: bool) -> None:
    """How long the search would take on this machine (``services.evolve_estimate``)."""
    if head:
        st.caption(f"Estimated time on this machine: about **{duration(est['seconds'])}** for the backbone features "
                   "(computed once, then cached); the GA, Adam and RMSprop then run on them in seconds.")
        return
    # The field counts generations bred after the random start; the trainings count that start too.
    parts = [f"{population} individuals × ({generations} generations + the initial population) = up to "
             f"{est['trainings']} short trainings of about {duration(est['per_training'])} each"]
    if est["long_trainings"]:
        parts.append(f"up to {est['long_trainings']} longer ones")
    if retrain:
        parts.append(f"the final retrain, about {duration(est['final_seconds'])}")
    st.caption(f"Estimated time on this machine: at most **{duration(est['seconds'])}**: {'; '.join(parts)}. "
               "Genomes seen before are not trained again, so a converging GA costs less.")


def submit(settings: dict) -> bool:
    """Queue the search ``settings`` describe and say so; True when it was queued."""
    strategy, mode = settings["strategy"], settings["mode"]
    # The id is kept until the job is queued: a submission that is retried reuses it (and its job).
    id_key = f"evolve_next_id_{strategy}_{mode}"
    sid = st.session_state.setdefault(id_key, services.new_search_id(strategy, mode))
    try:
        job_id, sid = services.submit_evolve(**settings, search_id=sid,
                                             key=json.dumps(settings, sort_keys=True, default=str) + sid)
    except (ValueError, FileNotFoundError) as exc:
        st.error(f"Not started: {exc}", icon=":material/error:")
        return False
    st.session_state.pop(id_key)
    st.session_state.evolve_search = sid  # show it below
    st.success(f"Queued search **{sid}** (job #{job_id}); the worker starts it in a moment.", icon=":material/check:")
    return True
