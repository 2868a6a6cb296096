"""Genetic search with PyGAD: training hyperparameters (mode ``hyper``) or a head's weights (``head``).

Mode ``hyper``: a genome is one index per gene of ``GENE_SPACE``; decoding it over a base
config gives an ordinary ``RunConfig`` that ``core.training.train`` trains like any other
run. Fitness is the validation accuracy after a short budget; the search trains on the
training split and scores on the validation split, which it also hands to ``train`` as the
"test" split, so the real test split is never seen until the best genome is retrained with
the full budget and evaluated as variant ``ga-<search_id>``.

PyGAD supplies the variation (tournament selection, elitism, uniform crossover, mutation),
one generation at a time with a seed derived from the search seed and the generation.
The search itself scores every population slot: it trains each distinct genome once (a
cache keyed by genome), logs it as a child run (group = search id), and writes its state
to ``artifacts/searches/<search_id>/state.json`` after every evaluation. Generation g is a
pure function of generation g-1, the cache and the seed, so a killed search resumes where
it stopped and ends exactly where an uninterrupted one would.

Mode ``head``: backbone features are computed once (and cached); a dense softmax head on
them is trained three ways from the same all-zero start: evolved with ``pygad.kerasga``,
and with Adam and RMSprop. The per-step validation curves are the result.

This module imports only NumPy and pandas at import time, so the dashboard can read
searches (``list_searches``, ``search_state``) without loading TensorFlow or PyGAD.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from core.config import ConfigError, DataConfig, ModelConfig, RunConfig, artifacts_dir

log = logging.getLogger(__name__)

STRATEGIES: tuple[str, ...] = ("ga", "random")
MODES: tuple[str, ...] = ("hyper", "head")

# Mode hyper: GA settings. About one free gene changes per child; a quarter of the
# population (at least one) survives unchanged so the best genome is never lost.
MUTATION_PROBABILITY = 0.1
TOURNAMENT_SIZE = 3

# Mode head. Features are standardised, so one perturbation scale suits every backbone:
# U(-0.05, 0.05) on every weight of a 512-feature head spreads its logits by ~0.65 (std),
# enough to differ, not enough to saturate the softmax. Mutations nudge ~1.5% of weights.
HEAD_MUTATION_RATE = 0.015  # share of weights perturbed in each child
HEAD_MUTATION_SCALE = 0.05
HEAD_LEARNING_RATE = 1e-3  # Adam's and RMSprop's standard step for a linear layer
HEAD_BATCH_SIZE = 32
HEAD_GENES = ("arch", "weights", "input_size")  # what mode head takes from ``fixed``


@dataclass(frozen=True)
class Gene:
    """One searchable choice: its name, the RunConfig field it sets, and its allowed values."""

    name: str
    field: str  # "<section>.<attribute>" of RunConfig
    choices: tuple


# The search space, declared once. Every value is valid for core.config's validation.
GENE_SPACE: tuple[Gene, ...] = (
    Gene("arch", "model.arch", ("resnet50", "vgg16")),
    Gene("weights", "model.weights", ("imagenet", "none")),
    Gene("optimizer", "optimizer.name", ("adam", "rmsprop", "sgd", "adamw")),
    # Half-decade log grid: a learning rate matters by its order of magnitude.
    Gene("learning_rate", "optimizer.learning_rate", (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3)),
    Gene("batch_size", "train.batch_size", (16, 32, 64)),
    Gene("frozen_blocks", "model.frozen_blocks", (0, 1, 2, 3, 4)),
    Gene("dropout", "model.dropout", (0.0, 0.2, 0.35, 0.5)),
    Gene("dense_units", "model.dense_units", (0, 128, 256, 512)),
    Gene("label_smoothing", "train.label_smoothing", (0.0, 0.05, 0.1, 0.2)),
    Gene("augment_strength", "data.augment_strength", (0.0, 0.5, 1.0, 1.5)),
    Gene("input_size", "model.input_size", (32, 48, 64, 96)),
)


@dataclass(frozen=True)
class Budget:
    """What one fitness evaluation may spend. The final retrain uses the base config instead."""

    epochs: int = 2
    max_train: int | None = 1000
    max_eval: int | None = 300
    # Multi-fidelity: > 0 retrains the best third of every generation for this many epochs,
    # and those genomes are ranked by the longer run's validation accuracy.
    long_epochs: int = 0

    def validate(self) -> "Budget":
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise ConfigError(f"budget.epochs: expected a positive integer. Received: epochs={self.epochs!r}")
        if self.long_epochs and self.long_epochs <= self.epochs:
            raise ConfigError(f"budget.long_epochs: expected 0 (off) or more than epochs={self.epochs}. "
                              f"Received: long_epochs={self.long_epochs!r}")
        DataConfig(max_train=self.max_train, max_eval=self.max_eval).validate()
        return self


@dataclass(frozen=True)
class Progress:
    """What a progress callback receives after every scored slot, promotion and final step.

    ``best`` is the best fitness so far; in mode head, the validation accuracy of the method
    at work (``message`` names it) after this step.
    """

    search_id: str
    done: int
    total: int
    generation: int
    best: float | None
    message: str


class SearchNotFound(KeyError):
    """No saved search with that id."""


class _Stopped(Exception):
    """should_stop() asked the search to stop; its state is saved and it can be resumed."""


# ---------------------------------------------------------------- gene space


def resolve_space(fixed: Mapping[str, Any] | None = None,
                  space: Sequence[Gene] = GENE_SPACE) -> tuple[tuple[Gene, ...], list[str]]:
    """The space a search uses: ``fixed`` genes pinned to one value, plus notes for the user.

    The weights gene is pinned to ``'none'`` when ImageNet weights are not cached for every
    candidate architecture (they cannot be downloaded mid-search); pinning it to
    ``'imagenet'`` without them raises ``WeightsMissingError`` before anything trains.
    """
    from core import models

    fixed = dict(fixed or {})
    names = [g.name for g in space]
    unknown = sorted(set(fixed) - set(names))
    if unknown:
        raise ConfigError(f"Unknown gene(s) {unknown}; expected some of {names}")
    genes = [replace(g, choices=(fixed[g.name],)) if g.name in fixed else g for g in space]
    notes: list[str] = []
    by_name = {g.name: g for g in genes}
    weights, arch = by_name.get("weights"), by_name.get("arch")
    if weights is not None and "imagenet" in weights.choices:
        archs = arch.choices if arch is not None else ("resnet50",)
        missing = [a for a in archs if not models.imagenet_weights_cached(a)]
        if missing and weights.choices == ("imagenet",):
            models.resolve_weights(ModelConfig(arch=missing[0], weights="imagenet"))  # raises, naming the file
        if missing:
            genes[names.index("weights")] = replace(weights, choices=("none",))
            notes.append(f"ImageNet weights are not cached for {', '.join(missing)}: the weights gene is fixed "
                         f"to 'none'. Run `python -m core fetch-weights` to search over pretrained starts too.")
            log.warning(notes[-1])
    return tuple(genes), notes


def parse_fixed(items: Sequence[str], space: Sequence[Gene] = GENE_SPACE) -> dict[str, Any]:
    """``["arch=vgg16", "input_size=32"]`` -> ``{"arch": "vgg16", "input_size": 32}`` (CLI values)."""
    genes = {g.name: g for g in space}
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or name not in genes:
            raise ConfigError(f"--fix expects GENE=VALUE with GENE one of {list(genes)}. Received: {item!r}")
        choices = genes[name].choices
        match = [c for c in choices if str(c) == text]
        if match:
            out[name] = match[0]
            continue
        kind = type(choices[0])
        try:
            out[name] = kind(text) if kind is not int else int(text)
        except ValueError:
            raise ConfigError(f"--fix {name}: expected a {kind.__name__} such as {choices[0]!r}. "
                              f"Received: {text!r}") from None
    return out


def decode(genome: Sequence[int], base: RunConfig, space: Sequence[Gene] = GENE_SPACE) -> RunConfig:
    """The run config a genome stands for: ``base`` with every gene's chosen value applied."""
    if len(genome) != len(space):
        raise ConfigError(f"genome: expected {len(space)} genes ({', '.join(g.name for g in space)}). "
                          f"Received: genome={list(genome)!r}")
    sections: dict[str, dict[str, Any]] = {"data": {}, "model": {}, "optimizer": {}, "train": {}}
    for gene, index in zip(space, genome):
        index = int(index)
        if not 0 <= index < len(gene.choices):
            raise ConfigError(f"gene {gene.name}: expected an index in [0, {len(gene.choices) - 1}]. "
                              f"Received: {index}")
        section, attr = gene.field.split(".")
        sections[section][attr] = gene.choices[index]
    if "augment_strength" in sections["data"]:
        sections["data"]["augment"] = sections["data"]["augment_strength"] > 0
    cfg = replace(base, **{s: replace(getattr(base, s), **v) for s, v in sections.items() if v})
    return cfg.validate()


def genome_values(genome: Sequence[int], space: Sequence[Gene]) -> dict[str, Any]:
    """``{gene name: chosen value}`` for tables and reports."""
    return {g.name: g.choices[int(i)] for g, i in zip(space, genome)}


def _key(genome: Sequence[int]) -> str:
    return "-".join(str(int(i)) for i in genome)


def _space_to_json(space: Sequence[Gene]) -> list[dict]:
    return [{"name": g.name, "field": g.field, "choices": list(g.choices)} for g in space]


def _space_from_json(items: list[dict]) -> tuple[Gene, ...]:
    return tuple(Gene(d["name"], d["field"], tuple(d["choices"])) for d in items)


def _derive_seed(seed: int, generation: int) -> int:
    return int(np.random.SeedSequence([seed, generation]).generate_state(1)[0])


# ---------------------------------------------------------------- persistence


def searches_dir() -> Path:
    """Where search states live: ``artifacts/searches/<search_id>/state.json``."""
    return artifacts_dir() / "searches"


def _state_path(search_id: str) -> Path:
    return searches_dir() / search_id / "state.json"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _save(state: dict) -> None:
    path = _state_path(state["search_id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    state["updated"] = _now()
    # Write-then-rename: a kill at any moment leaves the previous complete state.
    tmp = path.with_name("state.tmp.json")
    tmp.write_text(json.dumps(state, indent=1, default=_json_default))
    tmp.replace(path)


def _load(search_id: str) -> dict:
    path = _state_path(search_id)
    if not path.is_file():
        raise SearchNotFound(f"No search {search_id!r} (looked for {path})")
    return json.loads(path.read_text())


def _json_default(o: Any):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def new_search_id(strategy: str = "ga", mode: str = "hyper") -> str:
    """A fresh id such as ``evo-3f9c2a1b`` (``random-...``, ``head-...``)."""
    prefix = "head" if mode == "head" else ("evo" if strategy == "ga" else strategy)
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------- public entry points


def run_search(dataset: str, population: int = 8, generations: int = 5, strategy: str = "ga",
               mode: str = "hyper", *, budget: Budget | None = None, base: RunConfig | None = None,
               fixed: Mapping[str, Any] | None = None, seed: int = 42, retrain_best: bool = True,
               search_id: str | None = None, progress: Callable[[Progress], None] | None = None,
               should_stop: Callable[[], bool] | None = None, store=None) -> str:
    """Start a search and run it to the end (or until ``should_stop()``); return its id.

    ``base`` is the config the five configurations are built from (default
    ``presets.base_config(dataset=dataset)``): genes override it, the fitness budget caps
    its data and epochs, and the best genome is retrained with it unchanged. ``fixed`` pins
    genes to one value (``{"arch": "vgg16"}``). Both strategies score (generations + 1) x
    population slots with the same cache, so ``random`` spends the same budget.
    """
    from core import presets

    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy: expected one of {STRATEGIES}. Received: strategy={strategy!r}")
    if mode not in MODES:
        raise ConfigError(f"mode: expected one of {MODES}. Received: mode={mode!r}")
    if not (isinstance(population, int) and population >= 2):
        raise ConfigError(f"population: expected an integer >= 2 (two parents). Received: population={population!r}")
    if not (isinstance(generations, int) and generations >= 1):
        raise ConfigError(f"generations: expected a positive integer. Received: generations={generations!r}")
    budget = (budget or Budget()).validate()
    base = base or presets.base_config(dataset=dataset, seed=seed)
    base = replace(base, data=replace(base.data, dataset=dataset)).validate()
    search_id = search_id or new_search_id(strategy, mode)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", search_id):
        raise ConfigError(f"search_id: expected letters, digits, '.', '_' or '-' (a folder and tag value). "
                          f"Received: search_id={search_id!r}")
    if _state_path(search_id).exists():
        raise ConfigError(f"search {search_id!r} already exists; resume it with `python -m core evolve --resume "
                          f"{search_id}` or resume_search({search_id!r})")
    if mode == "head":
        if strategy != "ga":
            raise ConfigError(f"mode head evolves weights with the GA only. Received: strategy={strategy!r}")
        unknown = sorted(set(fixed or {}) - set(HEAD_GENES))
        if unknown:
            raise ConfigError(f"mode head: only {HEAD_GENES} can be fixed. Received: {unknown}")
        space, notes = GENE_SPACE, []
    else:
        space, notes = resolve_space(fixed)
    state = {
        "search_id": search_id, "mode": mode, "strategy": strategy, "dataset": dataset,
        "population": population, "generations": generations, "seed": seed,
        "budget": dataclasses.asdict(budget), "fixed": dict(fixed or {}), "base": base.to_dict(),
        "retrain_best": retrain_best, "space": _space_to_json(space), "notes": notes,
        "status": "running", "error": "", "generation": -1, "history": [], "evaluations": {},
        "final": None, "head": None, "created": _now(), "updated": _now(),
    }
    if mode == "hyper":
        decode([0] * len(space), base, space)  # a bad fixed value fails here, before any training
    _save(state)
    return _execute(state, progress, should_stop, store)


def resume_search(search_id: str, *, progress: Callable[[Progress], None] | None = None,
                  should_stop: Callable[[], bool] | None = None, store=None) -> str:
    """Continue a stopped, failed or killed search from its last saved state; return its id.

    Genomes already trained are not trained again; a run that was interrupted mid-training
    is resumed under its own run id (from its last epoch checkpoint).
    """
    state = _load(search_id)
    if state["status"] == "finished":
        return search_id
    state.update(status="running", error="")
    _save(state)
    return _execute(state, progress, should_stop, store)


def _execute(state: dict, progress, should_stop, store) -> str:
    try:
        if state["mode"] == "hyper":
            _HyperSearch(state, progress, should_stop, store).run()
        else:
            _run_head(state, progress, should_stop)
    except _Stopped:
        state["status"] = "stopped"
        _save(state)
        log.info("search %s stopped; resume with resume_search(%r)", state["search_id"], state["search_id"])
        return state["search_id"]
    except KeyboardInterrupt:
        state["status"] = "stopped"
        _save(state)
        raise
    except BaseException as exc:
        state.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        _save(state)
        raise
    state["status"] = "finished"
    _save(state)
    return state["search_id"]


# ---------------------------------------------------------------- mode hyper


class _HyperSearch:
    """One hyperparameter search, driven from (and persisted to) its state dict."""

    def __init__(self, state: dict, progress, should_stop, store):
        from core import datasets, training
        from core.tracking import RunStore

        self.state, self.progress_fn, self.should_stop = state, progress, should_stop
        self.store = store or RunStore()
        self.id = state["search_id"]
        self.space = _space_from_json(state["space"])
        self.n = state["population"]
        self.budget = Budget(**state["budget"])
        self.base = RunConfig.from_dict(state["base"])
        short = replace(self.base, data=replace(self.base.data, max_train=self.budget.max_train,
                                                max_eval=self.budget.max_eval),
                        train=replace(self.base.train, epochs=self.budget.epochs, early_stopping_patience=0),
                        group=self.id)
        self.fidelity_base = {"short": short}
        if self.budget.long_epochs:
            self.fidelity_base["long"] = replace(short, train=replace(short.train, epochs=self.budget.long_epochs))
        ds = datasets.load_for_run(short.data, short.train.seed)
        # train() evaluates on the "test" split at the end: hand it the validation split
        # under that name, so the real test split stays unseen for the whole search.
        self.search_ds = datasets.Dataset(ds.name, ds.source, ds.class_names,
                                          {"train": ds.splits["train"], "val": ds.splits["val"],
                                           "test": ds.splits["val"]}, ds.skipped, ds.notes)
        self.identity = training.dataset_identity(self.search_ds)
        self.n_long = math.ceil(self.n / 3) if self.budget.long_epochs else 0
        self.total = (state["generations"] + 1) * (self.n + self.n_long) + int(state["retrain_best"])
        self.done = len(state["history"]) * (self.n + self.n_long)

    # -- the loop
    def run(self) -> None:
        st = self.state
        self._discard_orphans()
        for g in range(st["generation"] + 1, st["generations"] + 1):
            population = self._population(g)
            st["history"].append(self._score(g, population))
            st["generation"] = g
            _save(st)
        if st["retrain_best"]:
            self._retrain_best()

    def _discard_orphans(self) -> None:
        """Delete runs of this search that its state never recorded.

        A kill between creating a run and saving the state that names it leaves such a run;
        its genome is trained again under a new run, so one run per genome remains.
        """
        st = self.state
        known = {e["run_id"] for e in st["evaluations"].values()} | {(st["final"] or {}).get("run_id")}
        # RunStore has no query by tag; its MLflow client does.
        found = self.store.client.search_runs([self.store.experiment_id], f"tags.search_id = '{self.id}'",
                                              max_results=50000)
        for run in found:
            if run.info.run_id not in known:
                log.info("deleting run %s: opened by an interrupted search before it was recorded", run.info.run_id)
                self.store.delete(run.info.run_id)

    def _population(self, g: int) -> list[list[int]]:
        sizes = [len(gene.choices) for gene in self.space]
        if g == 0 or self.state["strategy"] == "random":
            # Both strategies start from the same draw, so their curves share generation 0.
            rng = np.random.default_rng([self.state["seed"], g])
            return [[int(rng.integers(s)) for s in sizes] for _ in range(self.n)]
        return self._evolve(g, self.state["history"][-1]["population"])

    def _evolve(self, g: int, parents: list[list[int]]) -> list[list[int]]:
        import pygad

        def fitness(ga, solution, index):
            # PyGAD scores its offspring at the end of run(); the search scores them itself
            # (train, cache, persist), so unseen genomes get a placeholder that this
            # one-generation GA instance never uses.
            return self._fitness(solution) if self._known(solution) else 0.0

        ga = pygad.GA(
            num_generations=1, num_parents_mating=max(2, self.n // 2), fitness_func=fitness,
            initial_population=parents, gene_space=[list(range(len(gene.choices))) for gene in self.space],
            gene_type=int, parent_selection_type="tournament", K_tournament=min(TOURNAMENT_SIZE, self.n),
            keep_elitism=max(1, self.n // 4), crossover_type="uniform", mutation_type="random",
            mutation_probability=MUTATION_PROBABILITY, random_seed=_derive_seed(self.state["seed"], g),
            suppress_warnings=True, logger=log,
        )
        ga.run()
        return [[int(v) for v in solution] for solution in ga.population]

    def _score(self, g: int, population: list[list[int]]) -> dict:
        from core import cluster

        if cluster.ray_address():
            self._evaluate_on_ray(g, population)  # the loop below then finds every genome trained
        seen: set[str] = set()
        cached, failures = [], 0
        for slot, genome in enumerate(population):
            entry = self._evaluate(genome, "short", g, slot)
            key = _key(genome)
            # A hit is any slot whose genome was first trained elsewhere (earlier, or in an
            # earlier slot); this depends only on the populations, not on when a kill happened.
            cached.append(key in seen or (entry["generation"], entry["slot"]) != (g, slot))
            seen.add(key)
            failures += entry["status"] == "FAILED"
            self._tick(g, f"generation {g}: slot {slot + 1}/{self.n}")
        if failures == len(population):
            errors = [e.get("error", "") for e in self.state["evaluations"].values() if e["status"] == "FAILED"]
            raise RuntimeError(f"every individual of generation {g} failed; last error: {errors[-1]}")
        if self.n_long:
            finished = {_key(gn): gn for gn in population if self._entry(gn, "short")["status"] == "FINISHED"}
            ranked = sorted(finished.values(), key=lambda gn: -self._entry(gn, "short")["fitness"])
            for genome in ranked[:self.n_long]:
                self._evaluate(genome, "long", g, population.index(genome))
                self._tick(g, f"generation {g}: longer budget for a top genome")
        fitness = [self._fitness(gn) for gn in population]
        return {
            "generation": g, "population": population, "fitness": fitness, "cached": cached,
            # What drew this population: PyGAD's random_seed (GA), else NumPy's default_rng([seed, g]).
            "pygad_seed": _derive_seed(self.state["seed"], g) if g and self.state["strategy"] == "ga" else None,
            "run_ids": [self._scoring_entry(gn)["run_id"] for gn in population],
            "best": max(fitness), "mean": float(np.mean(fitness)), "worst": min(fitness),
        }

    # -- fitness and the cache
    def _entry(self, genome, fidelity: str) -> dict | None:
        return self.state["evaluations"].get(f"{_key(genome)}@{fidelity}")

    def _known(self, genome) -> bool:
        entry = self._entry(genome, "short")
        return entry is not None and entry["status"] in ("FINISHED", "FAILED")

    def _scoring_entry(self, genome) -> dict:
        long = self._entry(genome, "long")
        return long if long is not None and long["status"] == "FINISHED" else self._entry(genome, "short")

    def _fitness(self, genome) -> float:
        return float(self._scoring_entry(genome)["fitness"])

    def _evaluate(self, genome: list[int], fidelity: str, g: int, slot: int) -> dict:
        """Train ``genome`` at ``fidelity`` unless the cache has it; return its cache entry."""
        from core import training

        evaluations = self.state["evaluations"]
        key = f"{_key(genome)}@{fidelity}"
        entry = evaluations.get(key)
        if entry is not None and entry["status"] in ("FINISHED", "FAILED"):
            return entry
        if self.should_stop is not None and self.should_stop():
            raise _Stopped()
        cfg, entry = self._open(genome, fidelity, g, slot)
        t0 = time.perf_counter()
        try:
            # keep_model=False: an individual is judged by its numbers; dozens of 60-90 MB models are not kept.
            result = training.train(cfg, run_id=entry["run_id"], store=self.store, dataset=self.search_ds,
                                    should_stop=self.should_stop, keep_model=False)
        except Exception as exc:  # one broken genome (out of memory, diverged) must not sink the search
            log.warning("genome %s failed: %s", _key(genome), exc)
            entry.update(status="FAILED", fitness=0.0, error=f"{type(exc).__name__}: {exc}")
        else:
            if result.status == "KILLED":
                entry["status"] = "KILLED"
                entry["seconds"] += time.perf_counter() - t0
                _save(self.state)
                raise _Stopped()
            entry.update(status="FINISHED", fitness=float(result.history["val_accuracy"].iloc[-1]))
            self.store.set_tags(entry["run_id"], {"fitness": entry["fitness"]})
        finally:
            _release_graphs()
        entry["seconds"] += time.perf_counter() - t0
        _save(self.state)
        return entry

    def _open(self, genome: list[int], fidelity: str, g: int, slot: int) -> tuple[RunConfig, dict]:
        """The config that trains ``genome`` and its cache entry, created (run and all) if new."""
        variant = f"{self.id}-g{g}s{slot}" + ("-long" if fidelity == "long" else "")
        cfg = replace(decode(genome, self.fidelity_base[fidelity], self.space), variant=variant)
        key = f"{_key(genome)}@{fidelity}"
        entry = self.state["evaluations"].get(key)
        if entry is None:
            tags = {"kind": "ga-individual", "search_id": self.id, "generation": str(g), "slot": str(slot),
                    "genome": _key(genome), "fidelity": fidelity, "evaluated_on": "val"}
            run_id = self.store.create_run(cfg, self.identity, tags)
            entry = {"genome": list(genome), "fidelity": fidelity, "generation": g, "slot": slot,
                     "run_id": run_id, "status": "RUNNING", "fitness": None, "seconds": 0.0}
            self.state["evaluations"][key] = entry
            _save(self.state)  # a kill from here on resumes this very run instead of opening another
        return cfg, entry

    def _evaluate_on_ray(self, g: int, population: list[list[int]]) -> None:
        """Train the generation's distinct untrained genomes in parallel on the Ray cluster.

        Entries and runs are opened as ``_evaluate`` opens them (first slot of each genome);
        each result is cached and saved as it arrives, so ``_score`` then finds them all.
        """
        from core import cluster

        todo = {_key(gn): (slot, gn) for slot, gn in reversed(list(enumerate(population))) if not self._known(gn)}
        if not todo:
            return
        if self.should_stop is not None and self.should_stop():
            raise _Stopped()
        opened = [self._open(gn, "short", g, slot) for slot, gn in sorted(todo.values())]
        entries = [entry for _, entry in opened]

        def on_result(i: int, ev) -> None:
            entry = entries[i]
            entry["seconds"] += ev.seconds
            if ev.status == "FINISHED":
                entry.update(status="FINISHED", fitness=float(ev.fitness))
                self.store.set_tags(entry["run_id"], {"fitness": entry["fitness"]})
            elif ev.status == "FAILED":
                log.warning("genome %s failed: %s", _key(entry["genome"]), ev.error)
                entry.update(status="FAILED", fitness=0.0, error=ev.error)
            else:
                entry["status"] = ev.status  # KILLED: resumed under the same run next time
            _save(self.state)

        results = cluster.evaluate_configs([cfg for cfg, _ in opened], run_ids=[e["run_id"] for e in entries],
                                           dataset=self.search_ds, store=self.store,
                                           should_stop=self.should_stop, on_result=on_result)
        if any(r.status == "KILLED" for r in results):
            raise _Stopped()

    def _tick(self, g: int, message: str) -> None:
        self.done += 1
        if self.progress_fn is not None:
            best = _best_entry(self.state)
            self.progress_fn(Progress(self.id, self.done, self.total, g, best[1] if best else None, message))

    # -- the final variant
    def _retrain_best(self) -> None:
        from core import datasets, training

        st = self.state
        genome, fitness, run_id = _best_entry(st)
        cfg = replace(decode(genome, self.base, self.space), variant=f"ga-{self.id}", group=self.id)
        full = datasets.load_for_run(cfg.data, cfg.train.seed)
        if st["final"] is None:
            tags = {"kind": "ga-best", "search_id": self.id, "genome": _key(genome), "strategy": st["strategy"],
                    "search_fitness": f"{fitness:.4f}", "search_run_id": run_id}
            st["final"] = {"run_id": self.store.create_run(cfg, training.dataset_identity(full), tags),
                           "genome": list(genome), "search_fitness": fitness, "status": "RUNNING",
                           "test_accuracy": None, "seconds": 0.0}
            _save(st)
        final = st["final"]
        if final["status"] != "FINISHED":
            t0 = time.perf_counter()
            result = training.train(cfg, run_id=final["run_id"], store=self.store, dataset=full,
                                    should_stop=self.should_stop)
            final["seconds"] += time.perf_counter() - t0
            _release_graphs()
            if result.status == "KILLED":
                _save(st)
                raise _Stopped()
            final.update(status="FINISHED", test_accuracy=float(result.report["accuracy"]))
            _save(st)
        self._tick(st["generation"], f"best genome retrained as ga-{self.id}")


def _best_entry(state: dict) -> tuple[list[int], float, str] | None:
    """(genome, fitness, run_id) of the best genome, scored as in the search (the longer run
    when there is one); ties go to a genome with a longer run, then to the earlier one."""
    evaluations = state["evaluations"]
    best = None
    for order, entry in enumerate(e for e in evaluations.values() if e["fidelity"] == "short"):
        long = evaluations.get(f"{_key(entry['genome'])}@long")
        scoring = long if long is not None and long["status"] == "FINISHED" else entry
        if scoring["status"] != "FINISHED":
            continue
        rank = (scoring["fitness"], scoring is long, -order)
        if best is None or rank > best[0]:
            best = (rank, scoring)
    if best is None:
        return None
    entry = best[1]
    return entry["genome"], float(entry["fitness"]), entry["run_id"]


def _release_graphs() -> None:
    # Dozens of models are built in one process; Keras' global state would otherwise grow
    # with every one (the same reason KerasTuner clears it between trials).
    import keras

    keras.backend.clear_session()


# ---------------------------------------------------------------- mode head


def _head_features(ds, arch: str, weights: str, input_size: int, seed: int) -> dict[str, np.ndarray]:
    """Pooled backbone features of the train and val splits, computed once per backbone and data."""
    from core import datasets, models

    cache = (artifacts_dir() / "cache" / "features" /
             f"{arch}-{weights}-{input_size}-seed{seed}-{ds.fingerprint()}.npz")
    if cache.is_file():
        with np.load(cache) as z:
            return {k: z[k] for k in z.files}
    import keras

    cfg = ModelConfig(arch=arch, weights=weights, input_size=input_size, frozen_blocks=5, dropout=0.0)
    model = models.build_model(cfg, len(ds.class_names), seed=seed)
    extractor = keras.Model(model.input, model.get_layer("head_pool").output)
    out = {}
    for split in ("train", "val"):
        x, y = ds.splits[split]
        pipe = datasets.make_pipeline(x, y, arch=arch, input_size=input_size, num_classes=len(ds.class_names),
                                      batch_size=64, training=False)
        out[f"x_{split}"] = np.concatenate([np.asarray(extractor.predict_on_batch(b)) for b, _ in pipe])
        out[f"y_{split}"] = y
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + ".tmp.npz")
    np.savez_compressed(tmp, **out)
    tmp.replace(cache)
    _release_graphs()
    return out


def head_probs(solutions: np.ndarray, x: np.ndarray, num_classes: int) -> np.ndarray:
    """Softmax outputs of dense heads given as kerasga weight vectors: (B, n) -> (B, N, classes).

    The layout is ``pygad.kerasga.model_weights_as_vector``'s (kernel row-major, then bias).
    All heads are side by side in one matrix product, which spares a Keras call per genome.
    """
    solutions = np.atleast_2d(np.asarray(solutions, dtype=np.float32))
    b, d = len(solutions), x.shape[1]
    kernels = solutions[:, :d * num_classes].reshape(b, d, num_classes).transpose(1, 0, 2).reshape(d, -1)
    z = (x @ kernels).reshape(len(x), b, num_classes).transpose(1, 0, 2) + solutions[:, None, d * num_classes:]
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _cross_entropy(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    return -np.log(np.clip(probs[:, np.arange(len(y)), y], 1e-7, 1.0)).mean(axis=-1)


def _run_head(state: dict, progress, should_stop) -> None:
    import keras
    import pygad
    import pygad.kerasga
    import tensorflow as tf

    from core import datasets, models
    from core.config import OptimizerConfig

    sid, seed, n, generations = state["search_id"], state["seed"], state["population"], state["generations"]
    base = RunConfig.from_dict(state["base"])
    fixed, budget = state["fixed"], Budget(**state["budget"])
    arch = fixed.get("arch", base.model.arch)
    input_size = int(fixed.get("input_size", base.model.input_size))
    weights = fixed.get("weights", base.model.weights)
    if fixed.get("weights") == "imagenet":
        models.resolve_weights(ModelConfig(arch=arch, weights="imagenet"))  # raises, naming the missing file
    if weights == "imagenet" and not models.imagenet_weights_cached(arch):
        weights = "none"
        note = (f"ImageNet weights for {arch} are not cached: features come from a randomly "
                f"initialised backbone (seed {base.train.seed}).")
        log.warning(note)
        if note not in state["notes"]:  # a resumed comparison starts over
            state["notes"].append(note)
    # Data and backbone are the base config's (seeded like its runs); the search seed drives the GA.
    ds = datasets.load_for_run(replace(base.data, max_train=budget.max_train, max_eval=budget.max_eval),
                               base.train.seed)
    k = len(ds.class_names)
    f = _head_features(ds, arch, weights, input_size, base.train.seed)
    # Standardised with training statistics: one mutation scale then suits every backbone.
    mu, sd = f["x_train"].mean(axis=0), f["x_train"].std(axis=0) + 1e-6
    x_tr, x_va = (f["x_train"] - mu) / sd, (f["x_val"] - mu) / sd
    y_tr, y_va = f["y_train"], f["y_val"]

    keras.utils.set_random_seed(seed)
    # An all-zero head predicts every class equally: all three methods start at chance,
    # not at a lucky or unlucky random draw.
    head = keras.Sequential([keras.Input((x_tr.shape[1],), name="features"),
                             keras.layers.Dense(k, activation="softmax", kernel_initializer="zeros",
                                                name="head_logits")], name="head")
    w0 = pygad.kerasga.model_weights_as_vector(head)
    rows: list[dict] = []
    done, total = 0, 3 * generations

    def record(method: str, step: int, solution: np.ndarray, passes: int, seconds: float) -> None:
        nonlocal done
        train_loss = float(_cross_entropy(head_probs(solution, x_tr, k), y_tr)[0])
        val_acc = float((head_probs(solution, x_va, k)[0].argmax(axis=1) == y_va).mean())
        rows.append({"method": method, "step": step, "val_accuracy": val_acc, "train_loss": train_loss,
                     "forward_passes": passes, "seconds": seconds})
        if step:
            done += 1
            if progress is not None:
                progress(Progress(sid, done, total, step, val_acc, f"{method}: step {step}/{generations}"))

    def save() -> None:
        state["head"] = {"arch": arch, "weights": weights, "input_size": input_size, "feature_dim": int(x_tr.shape[1]),
                         "n_train": int(len(y_tr)), "n_val": int(len(y_va)), "curves": rows}
        _save(state)

    # (a) PyGAD + kerasga: fitness = minus the training cross-entropy of each head.
    saved = np.random.get_state()
    np.random.seed(seed)  # KerasGA draws its initial perturbations from NumPy's global generator
    start = pygad.kerasga.KerasGA(head, n).population_weights
    np.random.set_state(saved)
    # KerasGA perturbs by U(-1, 1), far larger than a head's weights; scaled down to the mutation step.
    initial = [w0 + (p - w0) * HEAD_MUTATION_SCALE for p in start]

    def fitness(ga, solutions, indices):
        return list(-_cross_entropy(head_probs(np.asarray(solutions), x_tr, k), y_tr))

    def mutate(offspring, ga):
        rng = ga.numpy_random_generator  # seeded by PyGAD: the search stays reproducible
        mask = rng.random_sample(offspring.shape) < HEAD_MUTATION_RATE
        return offspring + mask * rng.uniform(-HEAD_MUTATION_SCALE, HEAD_MUTATION_SCALE, offspring.shape)

    t0 = time.perf_counter()

    def on_generation(ga):
        solution, _, _ = ga.best_solution(pop_fitness=ga.last_generation_fitness)
        record("ga", ga.generations_completed, solution, n * (ga.generations_completed + 1), time.perf_counter() - t0)
        if should_stop is not None and should_stop():
            return "stop"

    record("ga", 0, w0, 0, 0.0)
    ga = pygad.GA(num_generations=generations, num_parents_mating=max(2, n // 2), fitness_func=fitness,
                  fitness_batch_size=n, initial_population=initial, parent_selection_type="tournament",
                  K_tournament=min(TOURNAMENT_SIZE, n), keep_elitism=2, crossover_type="uniform",
                  mutation_type=mutate, random_seed=seed, on_generation=on_generation,
                  suppress_warnings=True, logger=log)
    ga.run()
    state["generation"] = ga.generations_completed
    save()
    if ga.generations_completed < generations:
        raise _Stopped()

    # (b, c) the same head, the same start, trained by gradient descent for as many epochs.
    for name in ("adam", "rmsprop"):
        model = keras.models.clone_model(head)
        model.set_weights(head.get_weights())
        model.compile(optimizer=models.make_optimizer(OptimizerConfig(name=name, learning_rate=HEAD_LEARNING_RATE)),
                      loss="sparse_categorical_crossentropy")
        t0 = time.perf_counter()
        record(name, 0, w0, 0, 0.0)

        class _Curve(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                record(name, epoch + 1, pygad.kerasga.model_weights_as_vector(self.model), epoch + 1,
                       time.perf_counter() - t0)
                if should_stop is not None and should_stop():
                    self.model.stop_training = True

        keras.utils.set_random_seed(seed)
        # A tf.data pipeline: Keras' NumPy adapter costs more per epoch than this head's whole epoch.
        batches = tf.data.Dataset.from_tensor_slices((x_tr, y_tr)).shuffle(len(y_tr), seed=seed).batch(HEAD_BATCH_SIZE)
        model.fit(batches, epochs=generations, callbacks=[_Curve()], shuffle=False, verbose=0)
        save()
        if len([r for r in rows if r["method"] == name]) <= generations:
            raise _Stopped()
    save()
    _release_graphs()


# ---------------------------------------------------------------- read API (dashboard)


def list_searches() -> pd.DataFrame:
    """One row per saved search, newest first."""
    cols = ["search_id", "mode", "strategy", "dataset", "status", "generation", "generations", "population",
            "best_fitness", "evaluations", "cache_hits", "seconds", "final_run_id", "final_test_accuracy",
            "created", "updated"]
    rows = []
    root = searches_dir()
    for path in sorted(root.glob("*/state.json")) if root.is_dir() else []:
        try:
            st = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # being replaced right now, or not ours
        cost, best = _cost(st), _best_entry(st)
        if st["mode"] == "head" and st.get("head"):
            ga = [r["val_accuracy"] for r in st["head"]["curves"] if r["method"] == "ga"]
            best = (None, max(ga), None) if ga else None
        final = st.get("final") or {}
        rows.append({
            "search_id": st["search_id"], "mode": st["mode"], "strategy": st["strategy"], "dataset": st["dataset"],
            "status": st["status"], "generation": st["generation"], "generations": st["generations"],
            "population": st["population"], "best_fitness": best[1] if best else None, **cost,
            "final_run_id": final.get("run_id"), "final_test_accuracy": final.get("test_accuracy"),
            "created": st["created"], "updated": st["updated"],
        })
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values("created", ascending=False, kind="stable").reset_index(drop=True)


def _cost(st: dict) -> dict:
    done = [e for e in st["evaluations"].values() if e["status"] in ("FINISHED", "FAILED")]
    seconds = sum(e["seconds"] for e in st["evaluations"].values()) + ((st.get("final") or {}).get("seconds") or 0.0)
    if st["mode"] == "head" and st.get("head"):
        per_method: dict[str, float] = {}
        for r in st["head"]["curves"]:
            per_method[r["method"]] = max(per_method.get(r["method"], 0.0), r["seconds"])
        seconds = sum(per_method.values())
    hits = sum(sum(h["cached"]) for h in st["history"])
    return {"evaluations": len(done), "cache_hits": hits, "seconds": seconds}


def search_state(search_id: str) -> dict:
    """Everything the dashboard shows about one search, as plain values and DataFrames.

    Keys: ``search_id, mode, strategy, dataset, status, error, notes, settings`` (population,
    generations, seed, budget, fixed genes), ``genes`` (names), ``generation`` (last completed),
    ``generations`` (DataFrame: generation, best, mean, worst, evaluations, cache_hits),
    ``population`` (DataFrame: generation, slot, one column per gene, fitness, fidelity,
    run_id, cached), ``evaluations`` (DataFrame: one row per trained genome and fidelity),
    ``cost`` (seconds, evaluations, cache_hits), ``best`` (genes, fitness, run_id; or None),
    ``final_run_id``, ``final_test_accuracy``, and for mode head ``curves`` (DataFrame:
    method, step, val_accuracy, train_loss, forward_passes, seconds) with ``head`` details.
    A step is a generation for the GA (population-many forward passes over the training
    features) and an epoch for Adam and RMSprop (one forward and backward pass);
    ``forward_passes`` counts those passes over the training set.
    """
    st = _load(search_id)
    space = _space_from_json(st["space"])
    names = [g.name for g in space]
    gen_rows, pop_rows = [], []
    for h in st["history"]:
        trained = [c is False for c in h["cached"]]
        gen_rows.append({"generation": h["generation"], "best": h["best"], "mean": h["mean"], "worst": h["worst"],
                         "evaluations": sum(trained), "cache_hits": sum(h["cached"])})
        for slot, (genome, fit, cached, run_id) in enumerate(zip(h["population"], h["fitness"], h["cached"],
                                                                 h["run_ids"])):
            long = st["evaluations"].get(f"{_key(genome)}@long")
            pop_rows.append({"generation": h["generation"], "slot": slot, **genome_values(genome, space),
                             "fitness": fit, "fidelity": "long" if long and long["run_id"] == run_id else "short",
                             "run_id": run_id, "cached": cached})
    eval_rows = [{**genome_values(e["genome"], space), "fidelity": e["fidelity"], "fitness": e["fitness"],
                  "status": e["status"], "run_id": e["run_id"], "generation": e["generation"], "slot": e["slot"],
                  "seconds": e["seconds"]} for e in st["evaluations"].values()]
    best = _best_entry(st)
    final = st.get("final") or {}
    out = {
        "search_id": st["search_id"], "mode": st["mode"], "strategy": st["strategy"], "dataset": st["dataset"],
        "status": st["status"], "error": st.get("error", ""), "notes": list(st["notes"]),
        "settings": {"population": st["population"], "generations": st["generations"], "seed": st["seed"],
                     "budget": st["budget"], "fixed": st["fixed"], "retrain_best": st["retrain_best"]},
        "genes": names, "generation": st["generation"],
        "generations": pd.DataFrame(gen_rows, columns=["generation", "best", "mean", "worst", "evaluations",
                                                       "cache_hits"]),
        "population": pd.DataFrame(pop_rows, columns=["generation", "slot", *names, "fitness", "fidelity",
                                                      "run_id", "cached"]),
        "evaluations": pd.DataFrame(eval_rows, columns=[*names, "fidelity", "fitness", "status", "run_id",
                                                        "generation", "slot", "seconds"]),
        "cost": _cost(st),
        "best": ({"genes": genome_values(best[0], space), "fitness": best[1], "run_id": best[2]} if best else None),
        "final_run_id": final.get("run_id"), "final_test_accuracy": final.get("test_accuracy"),
    }
    if st["mode"] == "head":
        head = st.get("head") or {"curves": []}
        out["curves"] = pd.DataFrame(head["curves"], columns=["method", "step", "val_accuracy", "train_loss",
                                                              "forward_passes", "seconds"])
        out["head"] = {k: v for k, v in head.items() if k != "curves"}
    return out
