"""The classroom experiment: Adam vs RMSprop vs SGD on faces, live.

Only a classifier head is trained, on backbone features computed once (``core.features``):
every optimizer starts from the same initial weights and sees the same batches in the same
order, so the curves differ by the optimizer alone. Epochs take a fraction of a second, so
the three curves grow while a class watches. The optimizers are the lab's own
(``core.train.models.make_optimizer``). TensorFlow is imported only when an experiment starts.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from core.configs import ARCHITECTURES, DataConfig, OptimizerConfig
from core.configs.choices import optimizer_label
from core.configs.presets import QUICK

# The three optimizers the lab's configurations and profiles train with, by their registry names.
OPTIMIZERS: tuple[str, ...] = ("adam", "rmsprop", "sgd")
HEAD_LEARNING_RATE = 1e-3  # the lab's head rate (core.evolution.head), shared by all three


@dataclass(frozen=True)
class Setup:
    """What the experiment trains on. Defaults: the quick comparison's data and input size."""

    dataset: str = "synthetic"
    arch: str = "resnet50"  # the lab's default backbone, and its features come faster than VGG16's
    weights: str = "imagenet"
    input_size: int = QUICK["input_size"]
    max_train: int | None = QUICK["max_train"]
    max_eval: int | None = QUICK["max_eval"]
    epochs: int = 15
    batch_size: int = 32
    learning_rate: float = HEAD_LEARNING_RATE
    seed: int = 42

    def validate(self) -> Setup:
        problems = []
        if self.arch not in ARCHITECTURES:
            problems.append(f"arch={self.arch!r} (expected one of {', '.join(ARCHITECTURES)})")
        if self.weights not in ("imagenet", "none"):
            problems.append(f"weights={self.weights!r} (expected 'imagenet' or 'none')")
        if not 1 <= self.epochs <= 200:
            problems.append(f"epochs={self.epochs!r} (expected 1 to 200)")
        if not 1 <= self.batch_size <= 1024:
            problems.append(f"batch_size={self.batch_size!r} (expected 1 to 1024)")
        if not 0 < self.learning_rate <= 1:
            problems.append(f"learning_rate={self.learning_rate!r} (expected a number in (0, 1])")
        if problems:
            raise ValueError("Classroom experiment: " + "; ".join(problems))
        DataConfig(dataset=self.dataset, max_train=self.max_train, max_eval=self.max_eval).validate()
        return self


class Experiment:
    """One classroom experiment: features are ready when it is built; ``epochs()`` trains.

    ``details`` says what is trained (head only, backbone, the weights actually used, data sizes);
    ``initial_weights`` holds each optimizer's head weights as they were before its first step.
    """

    def __init__(self, setup: Setup):
        import keras

        from core.data import datasets
        from core.train import features

        self.setup = setup.validate()
        weights, note = features.available_weights(setup.arch, setup.weights, setup.seed)
        ds = datasets.load_for_run(DataConfig(dataset=setup.dataset, max_train=setup.max_train,
                                              max_eval=setup.max_eval, augment=False))
        self.data = features.standardise(
            features.backbone_features(ds, setup.arch, weights, setup.input_size, setup.seed))
        self.classes = list(ds.class_names)
        self.details = {**asdict(setup), "weights_used": weights, "note": note,
                        "feature_dim": int(self.data["x_train"].shape[1]),
                        "n_train": int(len(self.data["y_train"])), "n_val": int(len(self.data["y_val"]))}
        # One seeded random head; every optimizer trains a copy of it. A seeded initializer rather than
        # a global seed: this may run inside the dashboard's server process.
        init = keras.initializers.GlorotUniform(seed=setup.seed)
        self.head = keras.Sequential([keras.Input((self.details["feature_dim"],), name="features"),
                                      keras.layers.Dense(len(self.classes), activation="softmax",
                                                         kernel_initializer=init, name="head_logits")],
                                     name="head")
        self.initial_weights: dict[str, list[np.ndarray]] = {}

    def _evaluate(self, model, name: str, epoch: int, train: dict | None) -> dict:
        from sklearn.metrics import accuracy_score, log_loss

        row = {"optimizer": optimizer_label(name), "epoch": epoch}
        for split, key in (("train", ""), ("val", "val_")):
            x, y = self.data[f"x_{split}"], self.data[f"y_{split}"]
            if split == "train" and train is not None:
                # During the epoch, as Keras reports it (the weights moved while it was measured).
                row[f"{key}loss"], row[f"{key}accuracy"] = train["loss"][-1], train["accuracy"][-1]
                continue
            probs = np.asarray(model(x, training=False))
            row[f"{key}loss"] = float(log_loss(y, probs, labels=range(len(self.classes))))
            row[f"{key}accuracy"] = float(accuracy_score(y, probs.argmax(axis=1)))
        return row

    def epochs(self) -> Iterator[pd.DataFrame]:
        """Train the three heads one epoch at a time, all three per epoch; after each epoch, yield every
        row so far (``optimizer``, ``epoch``, ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``).
        The first yield is epoch 0: the shared start, before any step."""
        import keras
        import tensorflow as tf

        from core.train import models

        s, x, y = self.setup, self.data["x_train"], self.data["y_train"]
        heads = {}
        for name in OPTIMIZERS:
            model = keras.models.clone_model(self.head)
            model.set_weights(self.head.get_weights())
            # One graph call per epoch: per-step dispatch would cost more than this head's arithmetic.
            model.compile(optimizer=models.make_optimizer(OptimizerConfig(name=name, learning_rate=s.learning_rate)),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                          steps_per_execution=-(-len(y) // s.batch_size))
            self.initial_weights[name] = [w.copy() for w in model.get_weights()]
            heads[name] = model
        rows = [self._evaluate(m, n, 0, None) for n, m in heads.items()]
        yield pd.DataFrame(rows)
        rng = np.random.default_rng(s.seed)
        for epoch in range(1, s.epochs + 1):
            order = rng.permutation(len(y))  # the same batches, in the same order, for every optimizer
            # A tf.data pipeline: Keras' NumPy adapter costs more per epoch than this head's whole epoch.
            batches = tf.data.Dataset.from_tensor_slices((x[order], y[order])).batch(s.batch_size)
            for name, model in heads.items():
                fit = model.fit(batches, epochs=1, shuffle=False, verbose=0)
                rows.append(self._evaluate(model, name, epoch, fit.history))
            yield pd.DataFrame(rows)


def histories(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Rows as yielded by ``Experiment.epochs``, split into one per-epoch history per optimizer."""
    return {name: part.drop(columns="optimizer").reset_index(drop=True)
            for name, part in rows.groupby("optimizer", sort=False)}
