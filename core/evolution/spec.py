"""What a search is asked to do, checked once, and what it reports while it runs.

``SearchSpec.from_payload`` is the one place a search's settings are validated (the job
queue at submit, ``run_search`` for the CLI and Python callers); everything downstream
trusts the spec. ``Progress`` is what a search hands its progress callback.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, replace
from typing import Any, Mapping

from core.configs import ConfigError, DataConfig, RunConfig, presets
from core.evolution.space import GENE_SPACE, HEAD_GENES, decode, resolve_space
from core.evolution.state import OBJECTIVES, SearchNotFound, best_entry, final_front, load_state, state_path
from core.train import models


@dataclass(frozen=True)
class Label:
    """What people read for a strategy or a mode: in full (forms, captions) and in brief (lists, tables)."""

    full: str
    short: str


# How a settings search proposes genomes, and what a search evolves: one entry each, read by
# validation, the CLI's choices and the Evolve page.
STRATEGY_LABELS: dict[str, Label] = {"ga": Label("Genetic algorithm", "GA"),
                                     "random": Label("Random search (baseline)", "random")}
MODE_LABELS: dict[str, Label] = {"hyper": Label("Training settings", "settings"),
                                 "head": Label("A head's weights (GA vs Adam vs RMSprop)", "head")}
STRATEGIES: tuple[str, ...] = tuple(STRATEGY_LABELS)
MODES: tuple[str, ...] = tuple(MODE_LABELS)
ACTIONS: tuple[str, ...] = ("start", "resume", "retrain", "retrain-front")


# A search id names a folder under artifacts/searches and a run tag: no separators, no "..".
_SEARCH_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def slots_per_generation(population: int, long_epochs: int) -> int:
    """Trainings a generation may cost: every slot, plus (multi-fidelity) the best third retrained longer."""
    return population + (math.ceil(population / 3) if long_epochs else 0)


@dataclass(frozen=True)
class Budget:
    """What one fitness evaluation may spend. The final retrain uses the base config instead."""

    epochs: int = 2
    max_train: int | None = 1000
    max_eval: int | None = 300
    # Multi-fidelity: > 0 retrains the best third of every generation for this many epochs,
    # and those genomes are ranked by the longer run's validation accuracy.
    long_epochs: int = 0

    def validate(self) -> Budget:
        """Raise ``ConfigError`` naming the bad value; return self."""
        if not (isinstance(self.epochs, int) and not isinstance(self.epochs, bool) and self.epochs >= 1):
            raise ConfigError(f"budget.epochs: expected a positive integer. Received: epochs={self.epochs!r}")
        long_ok = isinstance(self.long_epochs, int) and not isinstance(self.long_epochs, bool)
        if not long_ok or (self.long_epochs and self.long_epochs <= self.epochs) or self.long_epochs < 0:
            raise ConfigError(f"budget.long_epochs: expected 0 (off) or more than epochs={self.epochs}. "
                              f"Received: long_epochs={self.long_epochs!r}")
        DataConfig(max_train=self.max_train, max_eval=self.max_eval).validate()
        return self


@dataclass(frozen=True)
class Progress:
    """What a progress callback receives after every scored slot, promotion and final step.

    ``done`` of ``total`` counts every step of the search. ``best`` is the best fitness so
    far; in mode head, the validation accuracy of the method at work (``message`` names it)
    after this step. Mode hyper: ``generations_done`` of ``generations_total`` (generation 0
    counts) are fully scored, ``individual`` of ``individuals`` slots (promotions to the
    longer budget included) of the generation in progress are, and ``mean_fitness`` is the
    mean of the latest fully scored generation. Mode head: a generation is one step of one
    method (``generations_done == done``), with one individual and no mean.
    """

    search_id: str
    done: int
    total: int
    generation: int
    best: float | None
    message: str
    generations_done: int
    generations_total: int
    individual: int
    individuals: int
    mean_fitness: float | None


class SearchStopped(Exception):
    """should_stop() asked the search to stop; its state is saved and it can be resumed."""


@dataclass(frozen=True)
class SearchSpec:
    """A search's settings, validated by ``from_payload``.

    ``action`` is ``start`` (a new search with these settings), ``resume`` (continue a
    stopped, failed or killed search) or ``retrain`` (retrain a finished search's best
    genome with the full budget) or ``retrain-front`` (retrain member ``member`` of a finished
    multi-objective search's front as ``ga-<search_id>-<member>``). For those the settings are
    the saved search's own. ``objectives`` is ``("accuracy",)`` or accuracy and costs
    (``OBJECTIVES``): several make a multi-objective (NSGA-II) search that evolves a front. ``base`` is the config the five configurations are built from: genes
    override it, ``budget`` caps its data and epochs for the fitness runs, and the best
    genome is retrained with it unchanged. ``fixed`` pins genes to one value.
    """

    search_id: str
    action: str
    dataset: str
    strategy: str
    mode: str
    population: int
    generations: int
    seed: int
    retrain_best: bool
    fixed: Mapping[str, Any]
    budget: Budget
    base: RunConfig
    objectives: tuple[str, ...] = ("accuracy",)
    member: int | None = None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> SearchSpec:
        """The spec a payload asks for (``to_payload``'s form); ``ConfigError`` naming any bad value.

        A start payload needs ``search_id`` and ``dataset``; ``strategy`` (ga), ``mode`` (hyper),
        ``population`` (8), ``generations`` (5), ``seed`` (42), ``retrain_best`` (True), ``fixed``
        ({}), ``budget`` (``Budget``'s fields) and ``base`` (a ``RunConfig.to_dict()``; default
        ``presets.base_config(dataset=dataset, seed=seed)``) are optional. Resume and retrain
        payloads name only ``search_id`` and ``action``. A start payload whose search is
        already saved is refused: a caller retrying it should resume the search instead.
        """
        if not isinstance(payload, Mapping):
            raise ConfigError(f"search settings: expected a dict. Received: payload={payload!r}")
        sid, action = payload.get("search_id"), payload.get("action", "start")
        if not (isinstance(sid, str) and sid and set(sid) <= _SEARCH_ID_CHARS and not sid.startswith(".")):
            raise ConfigError(f"search_id: expected letters, digits, '-', '_' or '.' (not first). "
                              f"Received: search_id={sid!r}")
        if action not in ACTIONS:
            raise ConfigError(f"action: expected one of {ACTIONS}. Received: action={action!r}")
        if action != "start":
            return cls._saved(sid, action, payload.get("member"))
        if state_path(sid).exists():
            raise ConfigError(f"search {sid!r} already exists; resume it instead (action='resume', "
                              f"`python -m core evolve --resume {sid}`)")
        return cls._new(sid, payload)

    @classmethod
    def _saved(cls, sid: str, action: str, member: Any = None) -> SearchSpec:
        try:
            st = load_state(sid)
        except SearchNotFound:
            raise ConfigError(f"search_id: no saved search {sid!r} to {action}") from None
        if action == "retrain" and st["mode"] != "hyper":
            raise ConfigError(f"search {sid!r} evolves a head's weights: it has no genome to retrain")
        if action == "retrain" and best_entry(st) is None:
            raise ConfigError(f"search {sid!r} has no finished genome to retrain yet")
        objectives = tuple(st.get("objectives", ("accuracy",)))
        if action == "retrain-front":
            front = final_front(st) if len(objectives) > 1 and st["status"] in ("finished", "stopped") else []
            if not front:
                raise ConfigError(f"search {sid!r} has no front to retrain from: it must be a multi-objective "
                                  f"search whose generations are all scored (objectives {list(objectives)}, "
                                  f"status {st['status']!r})")
            if not isinstance(member, int) or isinstance(member, bool) or not 0 <= member < len(front):
                raise ConfigError(f"member: expected a front member 0 to {len(front) - 1} of search {sid!r}. "
                                  f"Received: member={member!r}")
        else:
            member = None
        return cls(search_id=sid, action=action, dataset=st["dataset"], strategy=st["strategy"], mode=st["mode"],
                   population=st["population"], generations=st["generations"], seed=st["seed"],
                   retrain_best=st["retrain_best"] or action == "retrain", fixed=dict(st["fixed"]),
                   budget=Budget(**st["budget"]), base=RunConfig.from_dict(st["base"]), objectives=objectives,
                   member=member)

    @classmethod
    def _new(cls, sid: str, payload: Mapping[str, Any]) -> SearchSpec:
        dataset, strategy, mode = payload.get("dataset"), payload.get("strategy", "ga"), payload.get("mode", "hyper")
        population, generations = payload.get("population", 8), payload.get("generations", 5)
        seed, retrain_best = payload.get("seed", 42), payload.get("retrain_best", True)
        fixed = payload.get("fixed") or {}
        objectives = payload.get("objectives") or ("accuracy",)
        if isinstance(objectives, str):
            objectives = tuple(o.strip() for o in objectives.split(","))
        if (not isinstance(objectives, (list, tuple)) or not objectives or objectives[0] != "accuracy"
                or not set(objectives) <= set(OBJECTIVES) or len(set(objectives)) != len(objectives)):
            raise ConfigError(f"objectives: expected 'accuracy' first, then optionally costs from "
                              f"{list(OBJECTIVES)[1:]} (e.g. accuracy,train_time). Received: objectives={objectives!r}")
        if len(objectives) > 1 and mode != "hyper":
            raise ConfigError(f"objectives: a multi-objective search evolves training settings (mode hyper). "
                              f"Received: mode={mode!r}, objectives={list(objectives)}")
        if not isinstance(dataset, str) or not dataset:
            raise ConfigError(f"dataset: expected a dataset name. Received: dataset={dataset!r}")
        if strategy not in STRATEGIES:
            raise ConfigError(f"strategy: expected one of {STRATEGIES}. Received: strategy={strategy!r}")
        if mode not in MODES:
            raise ConfigError(f"mode: expected one of {MODES}. Received: mode={mode!r}")
        for name, value, least in (("population", population, 2), ("generations", generations, 1), ("seed", seed, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ConfigError(f"{name}: expected an integer >= {least}. Received: {name}={value!r}")
        if not isinstance(retrain_best, bool):
            raise ConfigError(f"retrain_best: expected True or False. Received: retrain_best={retrain_best!r}")
        if not isinstance(fixed, Mapping):
            raise ConfigError(f"fixed: expected a dict of gene values. Received: fixed={fixed!r}")
        try:
            budget = Budget(**(payload.get("budget") or {})).validate()
        except TypeError as exc:
            raise ConfigError(f"budget: expected some of {[f.name for f in dataclasses.fields(Budget)]}. "
                              f"{exc}") from None
        base = payload.get("base")
        base = RunConfig.from_dict(base) if base else presets.base_config(dataset=dataset, seed=seed)
        base = replace(base, data=replace(base.data, dataset=dataset)).validate()
        _check_fixed(fixed, mode, strategy, base)
        return cls(search_id=sid, action="start", dataset=dataset, strategy=strategy, mode=mode,
                   population=population, generations=generations, seed=seed,
                   retrain_best=retrain_best and mode == "hyper", fixed=dict(fixed), budget=budget, base=base,
                   objectives=tuple(objectives))

    def to_payload(self) -> dict:
        """JSON-able settings that ``from_payload`` turns back into this spec."""
        if self.action == "retrain-front":
            return {"search_id": self.search_id, "action": self.action, "member": self.member}
        if self.action != "start":
            return {"search_id": self.search_id, "action": self.action}
        return {"search_id": self.search_id, "action": "start", "dataset": self.dataset, "strategy": self.strategy,
                "mode": self.mode, "population": self.population, "generations": self.generations,
                "seed": self.seed, "retrain_best": self.retrain_best, "fixed": dict(self.fixed),
                "budget": dataclasses.asdict(self.budget), "base": self.base.to_dict(),
                "objectives": list(self.objectives)}

    def label(self) -> str:
        """A one-line description for job lists."""
        if self.action == "retrain":
            return f"retrain best of {self.search_id}"
        if self.action == "retrain-front":
            return f"retrain front member {self.member} of {self.search_id} as ga-{self.search_id}-{self.member}"
        if self.action == "resume":
            return f"resume search {self.search_id}"
        what = "head weights" if self.mode == "head" else ("GA" if self.strategy == "ga" else "random search")
        goal = f", objectives {', '.join(self.objectives)}" if len(self.objectives) > 1 else ""
        return (f"{what} {self.search_id} on {self.dataset}: population {self.population}, "
                f"{self.generations} generation{'s' if self.generations != 1 else ''}{goal}")


def _check_fixed(fixed: Mapping[str, Any], mode: str, strategy: str, base: RunConfig) -> None:
    """Pinned genes take values of the space, and what they pin can be built before anything trains."""
    genes = {g.name: g for g in GENE_SPACE}
    for name, value in fixed.items():
        if name not in genes or value not in genes[name].choices:
            raise ConfigError(f"fixed gene {name}={value!r} is not in the search space "
                              f"({ {g: list(v.choices) for g, v in genes.items()} })")
    if mode == "head" and (strategy != "ga" or not set(fixed) <= set(HEAD_GENES)):
        raise ConfigError(f"mode head evolves a head's weights with the GA and can fix only {HEAD_GENES}. "
                          f"Received: strategy={strategy!r}, fixed={sorted(fixed)}")
    try:  # ImageNet weights pinned but not on this machine, or a pinned value the base cannot take
        if mode == "head" and fixed.get("weights") == "imagenet":
            models.resolve_weights(replace(base.model, arch=fixed.get("arch", base.model.arch), weights="imagenet"))
        elif mode == "hyper":
            space, _ = resolve_space(fixed)
            decode([0] * len(space), base, space)
    except models.WeightsMissingError as exc:
        raise ConfigError(str(exc)) from None
