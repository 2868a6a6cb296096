"""Mode ``head``: a dense softmax head on frozen backbone features, evolved with ``pygad.kerasga``.

Backbone features are computed once (and cached); the head is trained three ways from the
same all-zero start: evolved with ``pygad.kerasga``, and with Adam and RMSprop. The
per-step validation curves are the result. TensorFlow and PyGAD are imported only when a
comparison runs.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Callable

import numpy as np

from core.configs import ModelConfig, RunConfig
from core.evolution.spec import Budget, Progress, SearchStopped
from core.evolution.state import save_state

log = logging.getLogger(__name__)

# Features are standardised, so one perturbation scale suits every backbone:
# U(-0.05, 0.05) on every weight of a 512-feature head spreads its logits by ~0.65 (std),
# enough to differ, not enough to saturate the softmax. Mutations nudge ~1.5% of weights.
HEAD_MUTATION_RATE = 0.015  # share of weights perturbed in each child
HEAD_MUTATION_SCALE = 0.05
HEAD_LEARNING_RATE = 1e-3  # Adam's and RMSprop's standard step for a linear layer
HEAD_BATCH_SIZE = 32
HEAD_TOURNAMENT_SIZE = 3  # as in mode hyper: mild selection pressure
# How the head is trained, in this order, and what people read for each: the GA, then each optimizer
# (a core.configs optimizer name) from the same start.
HEAD_METHODS: dict[str, str] = {"ga": "GA (PyGAD)", "adam": "Adam", "rmsprop": "RMSprop"}


def _release_graphs() -> None:
    # The backbone and the heads' clones would otherwise stay in Keras' global state.
    import keras

    keras.backend.clear_session()


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


def _features(state: dict) -> tuple[dict, dict]:
    """Standardised train/val features for the state's backbone, and the head's details."""
    from core.data import datasets
    from core.train import features, models

    base = RunConfig.from_dict(state["base"])
    fixed, budget = state["fixed"], Budget(**state["budget"])
    arch = fixed.get("arch", base.model.arch)
    input_size = int(fixed.get("input_size", base.model.input_size))
    weights = fixed.get("weights", base.model.weights)
    if fixed.get("weights") == "imagenet":
        models.resolve_weights(ModelConfig(arch=arch, weights="imagenet"))  # raises, naming the missing file
    weights, note = features.available_weights(arch, weights, base.train.seed)
    if note and note not in state["notes"]:  # a resumed comparison starts over
        state["notes"].append(note)
    # Data and backbone are the base config's (seeded like its runs); the search seed drives the GA.
    ds = datasets.load_for_run(replace(base.data, max_train=budget.max_train, max_eval=budget.max_eval))
    f = features.backbone_features(ds, arch, weights, input_size, base.train.seed)
    _release_graphs()  # the backbone's graph is no longer needed
    # Standardised with training statistics: one mutation scale then suits every backbone.
    data = {**features.standardise(f), "num_classes": len(ds.class_names)}
    details = {"arch": arch, "weights": weights, "input_size": input_size,
               "feature_dim": int(data["x_train"].shape[1]), "n_train": int(len(f["y_train"])),
               "n_val": int(len(f["y_val"]))}
    return data, details


class _HeadComparison:
    """The three ways of training one head, recording a curve row (and a progress report) per step."""

    def __init__(self, state: dict, progress, should_stop):
        import keras
        import pygad.kerasga

        self.state, self.progress_fn, self.should_stop = state, progress, should_stop
        self.seed, self.n, self.generations = state["seed"], state["population"], state["generations"]
        self.data, self.details = _features(state)
        keras.utils.set_random_seed(self.seed)
        # An all-zero head predicts every class equally: all three methods start at chance,
        # not at a lucky or unlucky random draw.
        self.head = keras.Sequential([keras.Input((self.data["x_train"].shape[1],), name="features"),
                                      keras.layers.Dense(self.data["num_classes"], activation="softmax",
                                                         kernel_initializer="zeros", name="head_logits")],
                                     name="head")
        self.w0 = pygad.kerasga.model_weights_as_vector(self.head)
        self.rows: list[dict] = []
        self.done, self.total = 0, 3 * self.generations

    def stopping(self) -> bool:
        return self.should_stop is not None and self.should_stop()

    def record(self, method: str, step: int, solution: np.ndarray, passes: int, seconds: float) -> None:
        d, k = self.data, self.data["num_classes"]
        train_loss = float(_cross_entropy(head_probs(solution, d["x_train"], k), d["y_train"])[0])
        val_acc = float((head_probs(solution, d["x_val"], k)[0].argmax(axis=1) == d["y_val"]).mean())
        self.rows.append({"method": method, "step": step, "val_accuracy": val_acc, "train_loss": train_loss,
                          "forward_passes": passes, "seconds": seconds})
        if step:
            self.done += 1
            if self.progress_fn is not None:
                self.progress_fn(Progress(
                    self.state["search_id"], self.done, self.total, step, val_acc,
                    f"{method}: step {step}/{self.generations}", generations_done=self.done,
                    generations_total=self.total, individual=0, individuals=1, mean_fitness=None))

    def save(self) -> None:
        self.state["head"] = {**self.details, "curves": self.rows}
        save_state(self.state)

    def evolve(self) -> None:
        """(a) PyGAD + kerasga: fitness = minus the training cross-entropy of each head."""
        import pygad
        import pygad.kerasga

        n, seed, w0, d, k = self.n, self.seed, self.w0, self.data, self.data["num_classes"]
        saved = np.random.get_state()
        np.random.seed(seed)  # KerasGA draws its initial perturbations from NumPy's global generator
        start = pygad.kerasga.KerasGA(self.head, n).population_weights
        np.random.set_state(saved)
        # KerasGA perturbs by U(-1, 1), far larger than a head's weights; scaled down to the mutation step.
        initial = [w0 + (p - w0) * HEAD_MUTATION_SCALE for p in start]

        def fitness(ga, solutions, indices):
            return list(-_cross_entropy(head_probs(np.asarray(solutions), d["x_train"], k), d["y_train"]))

        def mutate(offspring, ga):
            rng = ga.numpy_random_generator  # seeded by PyGAD: the search stays reproducible
            mask = rng.random_sample(offspring.shape) < HEAD_MUTATION_RATE
            return offspring + mask * rng.uniform(-HEAD_MUTATION_SCALE, HEAD_MUTATION_SCALE, offspring.shape)

        t0 = time.perf_counter()

        def on_generation(ga):
            solution, _, _ = ga.best_solution(pop_fitness=ga.last_generation_fitness)
            self.record("ga", ga.generations_completed, solution, n * (ga.generations_completed + 1),
                        time.perf_counter() - t0)
            if self.stopping():
                return "stop"

        self.record("ga", 0, w0, 0, 0.0)
        ga = pygad.GA(num_generations=self.generations, num_parents_mating=max(2, n // 2), fitness_func=fitness,
                      fitness_batch_size=n, initial_population=initial, parent_selection_type="tournament",
                      K_tournament=min(HEAD_TOURNAMENT_SIZE, n), keep_elitism=2, crossover_type="uniform",
                      mutation_type=mutate, random_seed=seed, on_generation=on_generation,
                      suppress_warnings=True, logger=log)
        ga.run()
        self.state["generation"] = ga.generations_completed
        self.save()
        if ga.generations_completed < self.generations:
            raise SearchStopped()

    def descend(self, name: str) -> None:
        """(b, c) the same head, the same start, trained by gradient descent for as many epochs."""
        import keras
        import pygad.kerasga
        import tensorflow as tf

        from core.configs import OptimizerConfig
        from core.train import models

        model = keras.models.clone_model(self.head)
        model.set_weights(self.head.get_weights())
        model.compile(optimizer=models.make_optimizer(OptimizerConfig(name=name, learning_rate=HEAD_LEARNING_RATE)),
                      loss="sparse_categorical_crossentropy")
        t0 = time.perf_counter()
        self.record(name, 0, self.w0, 0, 0.0)
        comparison = self

        class _Curve(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                comparison.record(name, epoch + 1, pygad.kerasga.model_weights_as_vector(self.model), epoch + 1,
                                  time.perf_counter() - t0)
                if comparison.stopping():
                    self.model.stop_training = True

        keras.utils.set_random_seed(self.seed)
        x, y = self.data["x_train"], self.data["y_train"]
        # A tf.data pipeline: Keras' NumPy adapter costs more per epoch than this head's whole epoch.
        batches = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y), seed=self.seed).batch(HEAD_BATCH_SIZE)
        model.fit(batches, epochs=self.generations, callbacks=[_Curve()], shuffle=False, verbose=0)
        self.save()
        if len([r for r in self.rows if r["method"] == name]) <= self.generations:
            raise SearchStopped()


def run_head(state: dict, progress: Callable[[Progress], None] | None,
             should_stop: Callable[[], bool] | None) -> None:
    """Run the three-way head comparison of a saved search state (mode head), from its start.

    The curves are saved into ``state["head"]``; raises ``SearchStopped`` when ``should_stop()``
    turns true (a resumed comparison starts over: it takes seconds once features are cached).
    """
    comparison = _HeadComparison(state, progress, should_stop)
    comparison.evolve()
    for name in HEAD_METHODS:
        if name != "ga":
            comparison.descend(name)
    comparison.save()
    _release_graphs()
