"""Running a search: start one from a validated spec, resume a saved one, record how it ended.

A search's state is saved before it starts and after every step, and its status ends as
``finished``, ``stopped`` (``should_stop()``, or Ctrl-C: resumable) or ``failed`` (with the
error). Both modes run in the calling process; mode hyper trains on Ray when
``core.cluster.ray_address()`` names a cluster.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable, Mapping

from core.configs import ConfigError, RunConfig
from core.evolution.head import run_head
from core.evolution.hyper import run_hyper
from core.evolution.space import GENE_SPACE, resolve_space, space_to_json
from core.evolution.spec import Budget, Progress, SearchSpec, SearchStopped
from core.evolution.state import enable_front_retrain, load_state, new_search_id, save_state, state_path, timestamp

log = logging.getLogger(__name__)


def run_search(dataset: str, population: int = 8, generations: int = 5, strategy: str = "ga",
               mode: str = "hyper", *, budget: Budget | None = None, base: RunConfig | None = None,
               fixed: Mapping[str, Any] | None = None, seed: int = 42, retrain_best: bool = True,
               search_id: str | None = None, progress: Callable[[Progress], None] | None = None,
               should_stop: Callable[[], bool] | None = None, store=None,
               objectives: tuple[str, ...] = ("accuracy",)) -> str:
    """Validate the settings (``SearchSpec.from_payload``), start the search and run it to the end
    (or until ``should_stop()``); return its id.

    ``base`` defaults to ``presets.base_config(dataset=dataset, seed=seed)``; see ``SearchSpec``
    for what every setting means. Both strategies score (generations + 1) x population slots
    with the same cache, so ``random`` spends the same budget.
    """
    spec = SearchSpec.from_payload({
        "search_id": search_id or new_search_id(strategy, mode), "action": "start", "dataset": dataset,
        "strategy": strategy, "mode": mode, "population": population, "generations": generations, "seed": seed,
        "retrain_best": retrain_best, "fixed": dict(fixed or {}),
        "budget": dataclasses.asdict(budget) if isinstance(budget, Budget) else budget,
        "base": base.to_dict() if base is not None else None, "objectives": list(objectives),
    })
    return start_search(spec, progress=progress, should_stop=should_stop, store=store)


def start_search(spec: SearchSpec, *, progress: Callable[[Progress], None] | None = None,
                 should_stop: Callable[[], bool] | None = None, store=None) -> str:
    """Save a new search's state from ``spec`` (action ``start``) and run it; return its id.

    ``progress`` receives a ``Progress`` after every step; ``should_stop`` is polled before
    and during every training; ``store`` is the ``RunStore`` for the child runs.
    """
    if spec.action != "start":
        raise ConfigError(f"start_search starts new searches; use resume_search. Received: action={spec.action!r}")
    if state_path(spec.search_id).exists():
        raise ConfigError(f"search {spec.search_id!r} already exists; resume it with `python -m core evolve "
                          f"--resume {spec.search_id}` or resume_search({spec.search_id!r})")
    if spec.mode == "head":
        space, notes = GENE_SPACE, []
    else:
        space, notes = resolve_space(spec.fixed)
    state = {
        "search_id": spec.search_id, "mode": spec.mode, "strategy": spec.strategy, "dataset": spec.dataset,
        "population": spec.population, "generations": spec.generations, "seed": spec.seed,
        "budget": dataclasses.asdict(spec.budget), "fixed": dict(spec.fixed), "base": spec.base.to_dict(),
        "retrain_best": spec.retrain_best, "space": space_to_json(space), "notes": notes,
        "objectives": list(spec.objectives), "front_retrain": {},
        "status": "running", "error": "", "generation": -1, "history": [], "evaluations": {},
        "final": None, "head": None, "created": timestamp(), "updated": timestamp(),
    }
    save_state(state)
    return _execute(state, progress, should_stop, store)


def resume_search(search_id: str, *, progress: Callable[[Progress], None] | None = None,
                  should_stop: Callable[[], bool] | None = None, store=None) -> str:
    """Continue a stopped, failed or killed search from its last saved state; return its id.

    Genomes already trained are not trained again; a run that was interrupted mid-training
    is resumed under its own run id (from its last epoch checkpoint). A finished search is
    left as it is (``enable_retrain`` first to retrain its best genome).
    """
    state = load_state(search_id)
    if state["status"] == "finished":
        return search_id
    state.update(status="running", error="")
    save_state(state)
    return _execute(state, progress, should_stop, store)


def run_seeded_searches(dataset: str, seeds: int, population: int = 8, generations: int = 5, *, name: str,
                        first_seed: int = 42, strategies: tuple[str, ...] = ("ga", "random"),
                        progress: Callable[[Progress], None] | None = None, **settings) -> list[str]:
    """``seeds`` searches per strategy at the same budget (seeds ``first_seed`` onwards), so GA and random
    search can be compared across seeds rather than on one draw; return their ids.

    Ids are ``<name>-<strategy>-s<seed>``. Running it again resumes the searches that did not
    finish and skips those that did. ``settings`` are ``run_search``'s (budget, base, fixed,
    retrain_best, objectives, ...).
    """
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ConfigError(f"seeds: expected a positive integer. Received: seeds={seeds!r}")
    ids = []
    for seed in range(first_seed, first_seed + seeds):
        for strategy in strategies:
            sid = f"{name}-{strategy}-s{seed}"
            if not state_path(sid).exists():
                run_search(dataset, population, generations, strategy, seed=seed, search_id=sid, progress=progress,
                           **settings)
            elif load_state(sid)["status"] != "finished":
                resume_search(sid, progress=progress)
            ids.append(sid)
    return ids


def retrain_front_member(search_id: str, member: int, *, progress: Callable[[Progress], None] | None = None,
                         should_stop: Callable[[], bool] | None = None, store=None) -> str:
    """Retrain member ``member`` of a multi-objective search's final front with the full budget, as
    variant ``ga-<search_id>-<member>`` (``state.final_front`` numbers the members); return the id."""
    enable_front_retrain(search_id, member)
    return resume_search(search_id, progress=progress, should_stop=should_stop, store=store)


def _execute(state: dict, progress, should_stop, store) -> str:
    try:
        if state["mode"] == "hyper":
            run_hyper(state, progress, should_stop, store)
        else:
            run_head(state, progress, should_stop)
    except SearchStopped:
        state["status"] = "stopped"
        save_state(state)
        log.info("search %s stopped; resume with resume_search(%r)", state["search_id"], state["search_id"])
        return state["search_id"]
    except KeyboardInterrupt:
        state["status"] = "stopped"
        save_state(state)
        raise
    except BaseException as exc:
        state.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        save_state(state)
        raise
    state["status"] = "finished"
    save_state(state)
    return state["search_id"]
