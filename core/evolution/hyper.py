"""Mode ``hyper``: a genetic (PyGAD) or random search over training hyperparameters.

Fitness is the validation accuracy after a short budget (a multi-objective search adds the
costs it minimises, read from the child run's cost metrics, and selects with NSGA-II); the
search trains on the training split and scores on the validation split, which it also hands
to ``train`` as the "test" split, so the real test split is never seen until the best genome
(or a front member) is retrained with the full budget and evaluated as variant ``ga-<search_id>``
(``ga-<search_id>-<member>``).

PyGAD supplies the variation (tournament selection, elitism, uniform crossover, mutation),
one generation at a time with a seed derived from the search seed and the generation.
The search itself scores every population slot: it trains each distinct genome once (a
cache keyed by genome), logs it as a child run (group = search id), and saves its state
after every evaluation. Generation g is a pure function of generation g-1, the cache and
the seed, so a killed search resumes where it stopped and ends exactly where an
uninterrupted one would. TensorFlow, PyGAD and MLflow are imported only when a search runs.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Callable

import numpy as np

from core.configs import RunConfig
from core.evolution.space import constrain, decode, genome_key, space_from_json
from core.evolution.spec import Budget, Progress, SearchStopped, slots_per_generation
from core.evolution.state import best_entry, cost_metrics, objective_vector, save_state

log = logging.getLogger(__name__)

# Finite (NSGA-II's crowding distance subtracts objectives) and beyond any real cost.
FAILED_COST = 1e300
# About one free gene changes per child; a quarter of the population (at least one)
# survives unchanged so the best genome is never lost.
MUTATION_PROBABILITY = 0.1
TOURNAMENT_SIZE = 3


def run_hyper(state: dict, progress: Callable[[Progress], None] | None,
              should_stop: Callable[[], bool] | None, store=None) -> None:
    """Score the generations ``state`` has not scored yet, then (``retrain_best``) retrain the best genome.

    ``state`` is a saved search state (mode hyper); it is updated and saved as the search
    goes. Raises ``SearchStopped`` when ``should_stop()`` turns true.
    """
    _HyperSearch(state, progress, should_stop, store).run()


def _derive_seed(seed: int, generation: int) -> int:
    return int(np.random.SeedSequence([seed, generation]).generate_state(1)[0])


def _release_graphs() -> None:
    # Dozens of models are built in one process; Keras' global state would otherwise grow
    # with every one (the same reason KerasTuner clears it between trials).
    import keras

    keras.backend.clear_session()


class _HyperSearch:
    """One hyperparameter search, driven from (and persisted to) its state dict."""

    def __init__(self, state: dict, progress, should_stop, store):
        from core.data import datasets
        from core.data.dataset import Dataset
        from core.store import RunStore

        self.state, self.progress_fn, self.should_stop = state, progress, should_stop
        self.store = store or RunStore()
        self.id = state["search_id"]
        self.space = space_from_json(state["space"])
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
        ds = datasets.load_for_run(short.data)
        # train() evaluates on the "test" split at the end: hand it the validation split
        # under that name, so the real test split stays unseen for the whole search.
        self.search_ds = Dataset(ds.name, ds.source, ds.class_names,
                                 {"train": ds.splits["train"], "val": ds.splits["val"], "test": ds.splits["val"]},
                                 ds.skipped, ds.notes)
        self.per_generation = slots_per_generation(self.n, self.budget.long_epochs)
        self.n_long = self.per_generation - self.n
        self.rounds = state["generations"] + 1
        self.metrics = cost_metrics(state)
        pending = [r for r in (state.get("front_retrain") or {}).values() if r["status"] != "FINISHED"]
        self.total = self.rounds * self.per_generation + int(state["retrain_best"]) + len(pending)
        self.done = len(state["history"]) * self.per_generation

    # -- the loop
    def run(self) -> None:
        st = self.state
        self._discard_orphans()
        for g in range(st["generation"] + 1, st["generations"] + 1):
            self._score(g, self._population(g))
        if st["retrain_best"]:
            self._retrain_best()
        self._retrain_front()

    def _discard_orphans(self) -> None:
        """Delete runs of this search that its state never recorded.

        A kill between creating a run and saving the state that names it leaves such a run;
        its genome is trained again under a new run, so one run per genome remains.
        """
        st = self.state
        known = {e["run_id"] for e in st["evaluations"].values()} | {(st["final"] or {}).get("run_id")}
        for run in self.store.find_runs(tags={"search_id": self.id}):
            if run.info.run_id not in known:
                log.info("deleting run %s: opened by an interrupted search before it was recorded", run.info.run_id)
                self.store.delete(run.info.run_id)

    def _population(self, g: int) -> list[list[int]]:
        sizes = [len(gene.choices) for gene in self.space]
        if g == 0 or self.state["strategy"] == "random":
            # Both strategies start from the same draw, so their curves share generation 0.
            rng = np.random.default_rng([self.state["seed"], g])
            drawn = [[int(rng.integers(s)) for s in sizes] for _ in range(self.n)]
        else:
            drawn = self._evolve(g, self.state["history"][-1]["population"])
        return [constrain(genome, self.space) for genome in drawn]

    def _evolve(self, g: int, parents: list[list[int]]) -> list[list[int]]:
        import pygad

        multi = bool(self.metrics)

        def fitness(ga, solution, index):
            # PyGAD scores its offspring at the end of run(); the search scores them itself
            # (train, cache, persist), so unseen genomes get a placeholder that this
            # one-generation GA instance never uses.
            if multi:  # a list: PyGAD's multi-objective mode, every objective maximised
                return self._objectives(solution) if self._known(solution) else [0.0] * (1 + len(self.metrics))
            return self._fitness(solution) if self._known(solution) else 0.0

        # NSGA-II ranks by non-domination then crowding distance; its elitism keeps the best ranks.
        selection = dict(parent_selection_type="nsga2") if multi else dict(
            parent_selection_type="tournament", K_tournament=min(TOURNAMENT_SIZE, self.n))
        ga = pygad.GA(
            num_generations=1, num_parents_mating=max(2, self.n // 2), fitness_func=fitness,
            initial_population=parents, gene_space=[list(range(len(gene.choices))) for gene in self.space],
            gene_type=int, **selection,
            keep_elitism=max(1, self.n // 4), crossover_type="uniform", mutation_type="random",
            mutation_probability=MUTATION_PROBABILITY, random_seed=_derive_seed(self.state["seed"], g),
            suppress_warnings=True, logger=log,
        )
        ga.run()
        return [[int(v) for v in solution] for solution in ga.population]

    def _score(self, g: int, population: list[list[int]]) -> None:
        """Score every slot of generation ``g`` (and promote its best third), then save the generation.

        Progress is reported after every slot; the step that ends the generation is reported
        once the generation is saved, so that report already counts it (and its mean).
        """
        from core import cluster

        if cluster.ray_address():
            self._evaluate_on_ray(g, population)  # the loop below then finds every genome trained
        start = self.done
        seen: set[str] = set()
        cached, failures = [], 0
        for slot, genome in enumerate(population):
            entry = self._evaluate(genome, "short", g, slot)
            key = genome_key(genome)
            # A hit is any slot whose genome was first trained elsewhere (earlier, or in an
            # earlier slot); this depends only on the populations, not on when a kill happened.
            cached.append(key in seen or (entry["generation"], entry["slot"]) != (g, slot))
            seen.add(key)
            failures += entry["status"] == "FAILED"
            last = f"generation {g}: slot {slot + 1}/{self.n}"
            if slot < self.n - 1 or self.n_long:
                self._tick(g, last)
        if failures == len(population):
            errors = [e.get("error", "") for e in self.state["evaluations"].values() if e["status"] == "FAILED"]
            raise RuntimeError(f"every individual of generation {g} failed; last error: {errors[-1]}")
        if self.n_long:
            finished = {genome_key(gn): gn for gn in population if self._entry(gn, "short")["status"] == "FINISHED"}
            ranked = sorted(finished.values(), key=lambda gn: -self._entry(gn, "short")["fitness"])
            promoted = ranked[:self.n_long]
            for i, genome in enumerate(promoted):
                self._evaluate(genome, "long", g, population.index(genome))
                last = f"generation {g}: longer budget for a top genome"
                if i < len(promoted) - 1:
                    self._tick(g, last)
        fitness = [self._fitness(gn) for gn in population]
        st = self.state
        st["history"].append({
            "generation": g, "population": population, "fitness": fitness, "cached": cached,
            # What drew this population: PyGAD's random_seed (GA), else NumPy's default_rng([seed, g]).
            "pygad_seed": _derive_seed(st["seed"], g) if g and st["strategy"] == "ga" else None,
            "run_ids": [self._scoring_entry(gn)["run_id"] for gn in population],
            "best": max(fitness), "mean": float(np.mean(fitness)), "worst": min(fitness),
        })
        st["generation"] = g
        save_state(st)
        # With fewer distinct finished genomes than promotion slots, the slots left over count as scored.
        self._tick(g, last, slots=start + self.per_generation - self.done)

    # -- fitness and the cache
    def _entry(self, genome, fidelity: str) -> dict | None:
        return self.state["evaluations"].get(f"{genome_key(genome)}@{fidelity}")

    def _known(self, genome) -> bool:
        entry = self._entry(genome, "short")
        return entry is not None and entry["status"] in ("FINISHED", "FAILED")

    def _scoring_entry(self, genome) -> dict:
        long = self._entry(genome, "long")
        return long if long is not None and long["status"] == "FINISHED" else self._entry(genome, "short")

    def _fitness(self, genome) -> float:
        return float(self._scoring_entry(genome)["fitness"])

    def _objectives(self, genome) -> list[float]:
        # A failed genome (no costs) ranks below every finished one on every objective.
        vector = objective_vector(self.state, self._scoring_entry(genome))
        return vector if vector is not None else [0.0, *([-FAILED_COST] * len(self.metrics))]

    def _record_costs(self, entry: dict) -> None:
        """Copy the run's cost metrics a multi-objective search minimises into its cache entry."""
        if self.metrics:
            metrics = self.store.get(entry["run_id"]).data.metrics
            entry["costs"] = {m: metrics.get(m) for m in self.metrics}

    def _evaluate(self, genome: list[int], fidelity: str, g: int, slot: int) -> dict:
        """Train ``genome`` at ``fidelity`` unless the cache has it; return its cache entry."""
        from core.train import training

        evaluations = self.state["evaluations"]
        entry = evaluations.get(f"{genome_key(genome)}@{fidelity}")
        if entry is not None and entry["status"] in ("FINISHED", "FAILED"):
            return entry
        if self.should_stop is not None and self.should_stop():
            raise SearchStopped()
        cfg, entry = self._open(genome, fidelity, g, slot)
        t0 = time.perf_counter()
        try:
            # keep_model=False: an individual is judged by its numbers; dozens of 60-90 MB models are not kept.
            result = training.train(cfg, run_id=entry["run_id"], store=self.store, dataset=self.search_ds,
                                    should_stop=self.should_stop, keep_model=False)
        except Exception as exc:  # one broken genome (out of memory, diverged) must not sink the search
            log.warning("genome %s failed: %s", genome_key(genome), exc)
            entry.update(status="FAILED", fitness=0.0, error=f"{type(exc).__name__}: {exc}")
        else:
            if result.status == "KILLED":
                entry["status"] = "KILLED"
                entry["seconds"] += time.perf_counter() - t0
                save_state(self.state)
                raise SearchStopped()
            entry.update(status="FINISHED", fitness=float(result.history["val_accuracy"].iloc[-1]))
            self.store.set_tags(entry["run_id"], {"fitness": entry["fitness"]})
            self._record_costs(entry)
        finally:
            _release_graphs()
        entry["seconds"] += time.perf_counter() - t0
        save_state(self.state)
        return entry

    def _open(self, genome: list[int], fidelity: str, g: int, slot: int) -> tuple[RunConfig, dict]:
        """The config that trains ``genome`` and its cache entry, created (run and all) if new."""
        from core.train import runs

        variant = f"{self.id}-g{g}s{slot}" + ("-long" if fidelity == "long" else "")
        cfg = replace(decode(genome, self.fidelity_base[fidelity], self.space), variant=variant)
        key = f"{genome_key(genome)}@{fidelity}"
        entry = self.state["evaluations"].get(key)
        if entry is None:
            tags = {"kind": "ga-individual", "search_id": self.id, "generation": g, "slot": slot,
                    "genome": genome_key(genome), "fidelity": fidelity, "evaluated_on": "val"}
            run_id = runs.open_run(cfg, self.search_ds, store=self.store, tags=tags)
            entry = {"genome": list(genome), "fidelity": fidelity, "generation": g, "slot": slot,
                     "run_id": run_id, "status": "RUNNING", "fitness": None, "seconds": 0.0}
            self.state["evaluations"][key] = entry
            save_state(self.state)  # a kill from here on resumes this very run instead of opening another
        return cfg, entry

    def _evaluate_on_ray(self, g: int, population: list[list[int]]) -> None:
        """Train the generation's distinct untrained genomes in parallel on the Ray cluster.

        Entries and runs are opened as ``_evaluate`` opens them (first slot of each genome);
        each result is cached and saved as it arrives, so ``_score`` then finds them all.
        """
        from core import cluster

        todo = {genome_key(gn): (slot, gn) for slot, gn in reversed(list(enumerate(population)))
                if not self._known(gn)}
        if not todo:
            return
        if self.should_stop is not None and self.should_stop():
            raise SearchStopped()
        opened = [self._open(gn, "short", g, slot) for slot, gn in sorted(todo.values())]
        entries = [entry for _, entry in opened]

        def on_result(i: int, ev: cluster.Evaluation) -> None:
            entry = entries[i]
            entry["seconds"] += ev.seconds
            if ev.status == "FINISHED":
                entry.update(status="FINISHED", fitness=float(ev.fitness))
                self.store.set_tags(entry["run_id"], {"fitness": entry["fitness"]})
                self._record_costs(entry)
            elif ev.status == "FAILED":
                log.warning("genome %s failed: %s", genome_key(entry["genome"]), ev.error)
                entry.update(status="FAILED", fitness=0.0, error=ev.error)
            else:
                entry["status"] = ev.status  # KILLED: resumed under the same run next time
            save_state(self.state)

        results = cluster.evaluate_configs([cfg for cfg, _ in opened], run_ids=[e["run_id"] for e in entries],
                                            dataset=self.search_ds, store=self.store,
                                            should_stop=self.should_stop, on_result=on_result)
        if any(r.status == "KILLED" for r in results):
            raise SearchStopped()

    def _tick(self, g: int, message: str, slots: int = 1) -> None:
        self.done += slots
        if self.progress_fn is None:
            return
        best = best_entry(self.state)
        history = self.state["history"]
        generations_done = min(self.done // self.per_generation, self.rounds)
        individual = self.done - generations_done * self.per_generation if generations_done < self.rounds else 0
        self.progress_fn(Progress(
            self.id, self.done, self.total, g, best[1] if best else None, message,
            generations_done=generations_done, generations_total=self.rounds, individual=individual,
            individuals=self.per_generation, mean_fitness=history[-1]["mean"] if history else None))

    # -- the final variant
    def _retrain_best(self) -> None:
        from core.data import datasets
        from core.train import runs

        st = self.state
        genome, fitness, run_id = best_entry(st)
        cfg = replace(decode(genome, self.base, self.space), variant=f"ga-{self.id}", group=self.id)
        full = datasets.load_for_run(cfg.data)
        if st["final"] is None:
            tags = {"kind": "ga-best", "search_id": self.id, "genome": genome_key(genome), "strategy": st["strategy"],
                    "search_fitness": f"{fitness:.4f}", "search_run_id": run_id}
            st["final"] = {"run_id": runs.open_run(cfg, full, store=self.store, tags=tags),
                           "genome": list(genome), "search_fitness": fitness, "status": "RUNNING",
                           "test_accuracy": None, "seconds": 0.0}
            save_state(st)
        final = st["final"]
        if final["status"] != "FINISHED":
            self._train_full(cfg, full, final)
        self._tick(st["generation"], f"best genome retrained as ga-{self.id}")

    def _train_full(self, cfg, full, record: dict) -> None:
        """Train ``cfg`` with the full budget into ``record``'s run (resuming it); saved state either way."""
        from core.train import training

        t0 = time.perf_counter()
        result = training.train(cfg, run_id=record["run_id"], store=self.store, dataset=full,
                                should_stop=self.should_stop)
        record["seconds"] += time.perf_counter() - t0
        _release_graphs()
        if result.status == "KILLED":
            save_state(self.state)
            raise SearchStopped()
        record.update(status="FINISHED", test_accuracy=float(result.report["accuracy"]))
        save_state(self.state)

    def _retrain_front(self) -> None:
        """Retrain the final front's members asked for (``enable_front_retrain``) with the full budget,
        each as variant ``ga-<search_id>-<member>``, tested like the five configurations."""
        from core.data import datasets
        from core.train import runs

        st = self.state
        for member, record in sorted((st.get("front_retrain") or {}).items(), key=lambda kv: int(kv[0])):
            if record["status"] == "FINISHED":
                continue
            variant = f"ga-{self.id}-{member}"
            cfg = replace(decode(record["genome"], self.base, self.space), variant=variant, group=self.id)
            full = datasets.load_for_run(cfg.data)
            if record["run_id"] is None:
                tags = {"kind": "ga-front", "search_id": self.id, "genome": genome_key(record["genome"]),
                        "strategy": st["strategy"], "front_member": member, "objectives": ",".join(st["objectives"]),
                        "search_fitness": f"{record['search_fitness']:.4f}", "search_run_id": record["search_run_id"]}
                record.update(run_id=runs.open_run(cfg, full, store=self.store, tags=tags), status="RUNNING")
                save_state(st)
            self._train_full(cfg, full, record)
            self._tick(st["generation"], f"front member {member} retrained as {variant}")
