"""The Evolve page's door into ``core.evolution`` and the queue: search choices and defaults, saved
searches, submitting and resuming searches, their time estimate, and how a search's best genome
compares with the five configurations and with other searches at the same cost.

``core.evolution`` loads TensorFlow and PyGAD only when a search runs: reading searches here
stays light.
"""
from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

import pandas as pd
import streamlit as st

from core import evolution, jobs
from core.analysis import estimate
from core.configs import RunConfig, presets
from dashboard.services.data import dataset_sizes, weights_status
from dashboard.services.jobs import job_table
from dashboard.services.runstore import LIVE_TTL, report, runs


def search_modes() -> dict[str, evolution.Label]:
    """What a search can evolve, with what people read for it: ``hyper`` (training settings) or ``head``
    (a head's weights)."""
    return dict(evolution.MODE_LABELS)


def search_strategies() -> dict[str, evolution.Label]:
    """How a settings search proposes genomes, with what people read for it: ``ga`` or ``random`` (the baseline)."""
    return dict(evolution.STRATEGY_LABELS)


def search_objectives() -> dict[str, evolution.Objective]:
    """What a search can optimise: ``accuracy`` (always, first), then the costs a multi-objective search
    can minimise beside it."""
    return dict(evolution.OBJECTIVES)


def head_methods() -> dict[str, str]:
    """How mode head trains the head (the GA, then each optimizer), with what people read for each."""
    return dict(evolution.HEAD_METHODS)


def gene_choices(mode: str = "hyper") -> dict[str, tuple]:
    """The genes a search of ``mode`` can pin, each with its allowed values in the search space's order."""
    genes = {g.name: g.choices for g in evolution.GENE_SPACE}
    return genes if mode == "hyper" else {name: genes[name] for name in evolution.HEAD_GENES}


def search_space(fixed: dict[str, Any]) -> tuple[dict[str, tuple], list[str], str | None]:
    """The genes a search pinning ``fixed`` evolves on this machine, each with the values left to it; notes
    on what else is pinned and why; and why it cannot start, or None (``core.evolution.plan_space``)."""
    status = weights_status()
    genes, notes, problem = evolution.plan_space(fixed, status.architecture[status.cached].tolist())
    return {g.name: g.choices for g in genes}, notes, problem


def budget_defaults() -> dict[str, Any]:
    """The fitness budget a search gets unless told otherwise (epochs, max_train, max_eval, long_epochs)."""
    return asdict(evolution.Budget())


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def searches() -> pd.DataFrame:
    """Saved searches, newest first (``core.evolution.list_searches``)."""
    return evolution.list_searches()


@st.cache_data(ttl=1, show_spinner=False)
def search(search_id: str) -> dict | None:
    """``core.evolution.search_state``, or None while its job has not started it yet."""
    try:
        return evolution.search_state(search_id)
    except evolution.SearchNotFound:
        return None


def search_options() -> list[str]:
    """Search ids to offer: queued ones (no saved state yet) first, then saved searches, newest first."""
    saved = searches().search_id.tolist()
    table = job_table()
    queued = [g for g in table[table.kind == "evolve"].group if g and g not in saved]
    return list(dict.fromkeys(queued + saved))


def search_jobs(search_id: str) -> pd.DataFrame:
    """The queue's jobs for one search (start, resume, retrain), newest first."""
    table = job_table()
    return table[(table.kind == "evolve") & (table.group == search_id)]


def evolve_base(dataset: str, epochs: int, seed: int) -> RunConfig:
    """The full budget: what the best genome is retrained with (genes override it)."""
    return presets.base_config("resnet50", dataset, epochs=epochs, seed=seed)


def evolve_estimate(dataset: str, mode: str, population: int, generations: int, budget: dict[str, Any],
                    fixed: dict[str, Any], final_epochs: int, seed: int = 42, retrain_best: bool = True) -> dict:
    """``core.analysis.estimate.evolve_estimate`` with this machine's measured rates and the dataset's sizes."""
    slots = evolution.slots_per_generation(population, budget.get("long_epochs") or 0)
    return estimate.evolve_estimate(evolve_base(dataset, final_epochs, seed), mode, population, generations, slots,
                                    budget, fixed, gene_choices(), {dataset: dataset_sizes(dataset)},
                                    estimate.measured_rates(runs()), retrain_best)


def new_search_id(strategy: str, mode: str) -> str:
    """A fresh search id (``evo-...``, ``random-...``, ``head-...``)."""
    return evolution.new_search_id(strategy, mode)


def submit_evolve(dataset: str, *, population: int, generations: int, strategy: str, mode: str,
                  budget: dict[str, Any], fixed: dict[str, Any], seed: int, retrain_best: bool,
                  final_epochs: int, search_id: str | None = None, key: str | None = None,
                  objectives: tuple[str, ...] = ("accuracy",)) -> tuple[int, str]:
    """Queue a search and make sure a worker runs it; return ``(job_id, search_id)``."""
    job_id, search_id = jobs.submit_evolve(
        dataset, population=population, generations=generations, strategy=strategy, mode=mode, budget=budget,
        fixed=fixed, seed=seed, retrain_best=retrain_best, base=evolve_base(dataset, final_epochs, seed),
        search_id=search_id, key=key, objectives=objectives)
    jobs.ensure_worker()
    job_table.clear()
    return job_id, search_id


def submit_search_action(search_id: str, action: str, key: str | None = None, member: int | None = None) -> int:
    """Queue ``resume``, ``retrain`` (the best genome, full budget) or ``retrain-front`` (front member
    ``member``, full budget) for a saved search; start a worker."""
    job_id = jobs.submit_search_action(search_id, action, key=key, member=member)
    jobs.ensure_worker()
    job_table.clear()
    search.clear()
    return job_id


def evolve_comparison(search_id: str) -> pd.DataFrame:
    """Test accuracy (with its 95% CI) of the search's retrained best genome beside the latest finished
    run of each architecture x configuration and the other searches' retrained best genomes, all on
    the search's dataset. Columns: label, kind, test_accuracy, CI low, CI high, epochs, run_id."""
    state = search(search_id)
    table = runs()
    done = table[(table.status == "FINISHED") & table.test_accuracy.notna() & (table.dataset == state["dataset"])]
    picked: list[tuple[str, str, str]] = []  # (run_id, label, kind)
    if state["final_run_id"] in set(done.run_id):
        picked.append((state["final_run_id"], f"ga-{search_id} (this search)", "this search"))
    latest = done[done.variant.isin(presets.CONFIG_IDS)].drop_duplicates(["arch", "variant"])  # newest first
    picked += [(r.run_id, f"{r.arch}/{r.variant} · {r.run_id[:6]}", "configuration") for r in latest.itertuples()]
    others = searches()
    others = others[(others.search_id != search_id) & (others["mode"] == "hyper") & (others.dataset == state["dataset"])
                    & others.final_run_id.isin(set(done.run_id))]
    for r in others.itertuples():
        kind = f"{evolution.STRATEGY_LABELS[r.strategy].short} search"
        picked.append((r.final_run_id, f"ga-{r.search_id} ({kind})", kind))
    rows = []
    by_id = done.set_index("run_id")
    for run_id, label, kind in picked:
        ci = (report(run_id) or {}).get("accuracy_ci") or [math.nan, math.nan]
        rows.append({"label": label, "kind": kind, "test_accuracy": by_id.loc[run_id, "test_accuracy"],
                     "CI low": ci[0], "CI high": ci[1], "epochs": by_id.loc[run_id, "epochs"], "run_id": run_id})
    return pd.DataFrame(rows, columns=["label", "kind", "test_accuracy", "CI low", "CI high", "epochs", "run_id"])


def search_fitness_peers(search_id: str) -> pd.DataFrame:
    """Best fitness of this search and of every search it can be compared with fairly: same dataset,
    mode hyper, population, generations and fitness budget (so GA and random spent the same).
    Columns: label, strategy, best_fitness, evaluations, status, search_id."""
    state = search(search_id)
    rows = []
    for r in searches().itertuples():
        other = state if r.search_id == search_id else search(r.search_id)
        if other is None or other["mode"] != "hyper" or other["dataset"] != state["dataset"]:
            continue
        same = all(other["settings"][k] == state["settings"][k] for k in ("population", "generations", "budget"))
        if not same or pd.isna(r.best_fitness):
            continue
        strategy = evolution.STRATEGY_LABELS[r.strategy].short
        rows.append({"label": f"{r.search_id} ({strategy}{', this search' if r.search_id == search_id else ''})",
                     "strategy": r.strategy, "best_fitness": r.best_fitness, "evaluations": r.evaluations,
                     "status": r.status, "search_id": r.search_id})
    return pd.DataFrame(rows, columns=["label", "strategy", "best_fitness", "evaluations", "status", "search_id"])


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def search_seed_bands(search_id: str, x: str) -> pd.DataFrame:
    """Best-so-far validation fitness of this search and its fair peers (``search_fitness_peers``), as
    mean with a 95% t-interval across seeds per strategy, against ``x`` (``evaluations`` or ``seconds``)."""
    return evolution.strategy_bands(search_fitness_peers(search_id).search_id.tolist(), x)
