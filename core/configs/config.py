"""Run configuration: frozen dataclasses that round-trip through plain dicts.

An experiment is data. Everything that changes a run's outcome lives here, so the
resolved config saved next to a model is enough to reproduce it.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from core.configs.choices import ARCHITECTURES, AUGMENT_SETS, OPTIMIZERS

WEIGHT_SOURCES = ("imagenet", "none")
TOGGLES = ("auto", "on", "off")
LR_SCHEDULES = ("constant", "plateau", "cosine")
MONITORS = ("val_loss", "val_accuracy")
# Test-time augmentation: views averaged at evaluation, reported beside plain accuracy.
TTA_MODES = ("none", "flip", "ten-crop")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and the value."""


def _check(cond: bool, name: str, value: Any, expected: str) -> None:
    if not cond:
        raise ConfigError(f"{name}: expected {expected}. Received: {name}={value!r}")


@dataclass(frozen=True)
class DataConfig:
    """Which dataset, how to split it, and how to feed it."""

    dataset: str = "synthetic"
    val_fraction: float = 0.1
    # Caps on images per split: quick and smoke runs use a stratified subset.
    max_train: int | None = None
    max_eval: int | None = None
    augment: bool = True
    augment_strength: float = 1.0
    class_weights: bool = False
    # Seeds the validation/test split and the subsets, separately from train.seed: repeats
    # of a configuration with different training seeds are scored on the same images.
    # 42 was the training seed that also drew the split before the two were separated.
    split_seed: int = 42
    augment_set: str = "basic"

    def validate(self) -> None:
        _check(bool(self.dataset), "dataset", self.dataset, "a dataset name or path")
        _check(isinstance(self.split_seed, int), "split_seed", self.split_seed, "an integer")
        _check(0.0 < self.val_fraction < 0.5, "val_fraction", self.val_fraction, "a fraction in (0, 0.5)")
        for name in ("max_train", "max_eval"):
            v = getattr(self, name)
            _check(v is None or (isinstance(v, int) and v > 0), name, v, "a positive integer or None")
        _check(0.0 <= self.augment_strength <= 3.0, "augment_strength", self.augment_strength, "a number in [0, 3]")
        _check(self.augment_set in AUGMENT_SETS, "augment_set", self.augment_set, f"one of {tuple(AUGMENT_SETS)}")


@dataclass(frozen=True)
class ModelConfig:
    """Backbone, its starting weights, input size, freezing and the classifier head."""

    arch: str = "resnet50"
    # "imagenet", "none", or a path to a weights file for the backbone.
    weights: str = "imagenet"
    input_size: int = 48
    # Backbone blocks (counted from the input) kept frozen; 0 trains everything.
    frozen_blocks: int = 0
    dropout: float = 0.3
    dense_units: int = 0

    def validate(self) -> None:
        _check(self.arch in ARCHITECTURES, "arch", self.arch, f"one of {ARCHITECTURES}")
        _check(
            self.weights in WEIGHT_SOURCES or os.path.sep in self.weights or self.weights.endswith(".h5"),
            "weights", self.weights, "'imagenet', 'none' or a path to a .h5 weights file",
        )
        _check(isinstance(self.input_size, int) and 32 <= self.input_size <= 512, "input_size",
               self.input_size, "an integer in [32, 512] (keras.applications needs at least 32)")
        _check(isinstance(self.frozen_blocks, int) and 0 <= self.frozen_blocks <= 5, "frozen_blocks",
               self.frozen_blocks, "an integer in [0, 5]")
        _check(0.0 <= self.dropout < 1.0, "dropout", self.dropout, "a number in [0, 1)")
        _check(isinstance(self.dense_units, int) and 0 <= self.dense_units <= 4096, "dense_units",
               self.dense_units, "an integer in [0, 4096] (0 = no hidden layer)")


@dataclass(frozen=True)
class OptimizerConfig:
    """Optimizers are data: a name and its hyperparameters."""

    name: str = "adam"
    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    momentum: float = 0.9

    def validate(self) -> None:
        _check(self.name in OPTIMIZERS, "optimizer", self.name, f"one of {tuple(OPTIMIZERS)}")
        _check(0.0 < self.learning_rate <= 1.0, "learning_rate", self.learning_rate, "a number in (0, 1]")
        _check(self.weight_decay >= 0.0, "weight_decay", self.weight_decay, "a non-negative number")
        _check(0.0 <= self.momentum < 1.0, "momentum", self.momentum, "a number in [0, 1)")


@dataclass(frozen=True)
class TrainConfig:
    """The training loop's knobs."""

    epochs: int = 10
    batch_size: int = 32
    seed: int = 42
    early_stopping_patience: int = 0
    label_smoothing: float = 0.0
    mixed_precision: str = "auto"
    xla: str = "auto"
    # TensorFlow op determinism: the same seed gives the same run. "auto" turns it on where it
    # is cheap (CPU) and leaves GPUs their faster nondeterministic kernels.
    deterministic: str = "auto"
    # With frozen blocks and no augmentation in front of them, their output never changes:
    # compute it once and train only the rest (same result, a fraction of the compute).
    cache_frozen_features: bool = True
    # The profile (core.profiles) these settings came from; "custom" once edited by hand.
    profile: str = "standard"
    early_stopping_monitor: str = "val_loss"
    lr_schedule: str = "constant"
    # Reduce-on-plateau: multiply the rate by plateau_factor after plateau_patience flat epochs.
    plateau_factor: float = 0.5
    plateau_patience: int = 3
    # Cosine: linear warm-up over warmup_epochs, then cosine decay to 0 at the last epoch.
    warmup_epochs: int = 0
    tta: str = "none"

    def validate(self) -> None:
        _check(isinstance(self.epochs, int) and 1 <= self.epochs <= 1000, "epochs", self.epochs, "an integer in [1, 1000]")
        _check(isinstance(self.batch_size, int) and 1 <= self.batch_size <= 4096, "batch_size",
               self.batch_size, "an integer in [1, 4096]")
        _check(isinstance(self.seed, int), "seed", self.seed, "an integer")
        _check(isinstance(self.early_stopping_patience, int) and self.early_stopping_patience >= 0,
               "early_stopping_patience", self.early_stopping_patience, "a non-negative integer (0 = off)")
        _check(0.0 <= self.label_smoothing < 0.5, "label_smoothing", self.label_smoothing, "a number in [0, 0.5)")
        _check(self.mixed_precision in TOGGLES, "mixed_precision", self.mixed_precision, f"one of {TOGGLES}")
        _check(self.xla in TOGGLES, "xla", self.xla, f"one of {TOGGLES}")
        _check(self.deterministic in TOGGLES, "deterministic", self.deterministic, f"one of {TOGGLES}")
        _check(bool(self.profile), "profile", self.profile, "a profile name")
        _check(self.early_stopping_monitor in MONITORS, "early_stopping_monitor", self.early_stopping_monitor,
               f"one of {MONITORS}")
        _check(self.lr_schedule in LR_SCHEDULES, "lr_schedule", self.lr_schedule, f"one of {LR_SCHEDULES}")
        _check(0.0 < self.plateau_factor < 1.0, "plateau_factor", self.plateau_factor, "a number in (0, 1)")
        _check(isinstance(self.plateau_patience, int) and self.plateau_patience >= 1, "plateau_patience",
               self.plateau_patience, "a positive integer")
        _check(isinstance(self.warmup_epochs, int) and 0 <= self.warmup_epochs < self.epochs, "warmup_epochs",
               self.warmup_epochs, f"an integer in [0, epochs={self.epochs})")
        _check(self.tta in TTA_MODES, "tta", self.tta, f"one of {TTA_MODES}")


@dataclass(frozen=True)
class RunConfig:
    """One training run: a named variant of data + model + optimizer + training settings."""

    variant: str = "custom"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # Runs submitted together (a comparison grid, a GA search) share a group id.
    group: str = ""

    def validate(self) -> RunConfig:
        """Raise ConfigError naming the first bad value; return self for chaining."""
        _check(bool(self.variant), "variant", self.variant, "a non-empty name")
        self.data.validate()
        self.model.validate()
        self.optimizer.validate()
        self.train.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready nested dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Inverse of to_dict; unknown keys are an error so typos do not pass silently."""
        parts = {"data": DataConfig, "model": ModelConfig, "optimizer": OptimizerConfig, "train": TrainConfig}
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            if key in parts:
                known = {f.name for f in dataclasses.fields(parts[key])}
                unknown = set(value) - known
                if unknown:
                    raise ConfigError(f"{key}: unknown field(s) {sorted(unknown)}; expected some of {sorted(known)}")
                kwargs[key] = parts[key](**value)
            elif key in ("variant", "group"):
                kwargs[key] = value
            else:
                raise ConfigError(f"unknown config section {key!r}; expected variant, group, {', '.join(parts)}")
        return cls(**kwargs).validate()

    def flat(self) -> dict[str, Any]:
        """Dotted keys (``model.arch``) for run-store params and tables."""
        out: dict[str, Any] = {"variant": self.variant, "group": self.group}
        for section in ("data", "model", "optimizer", "train"):
            for k, v in dataclasses.asdict(getattr(self, section)).items():
                out[f"{section}.{k}"] = v
        return out
