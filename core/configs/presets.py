"""The five configurations compared by the lab, as a table of overrides on one shared base,
plus the grids and the quick profile built from them.

Everything a configuration's row does not override (data, split, seed, epochs, input size,
augmentation, head) comes from the base, so differences in results come from the
configuration alone.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from core.configs.config import ConfigError, DataConfig, ModelConfig, OptimizerConfig, RunConfig, TrainConfig
from core.configs.paths import imagenet_weights_cached

# Fine-tuning pretrained features needs small steps or it wrecks them in the first epoch.
PRETRAINED_LR = 1e-4
# Random init has nothing to preserve; 1e-3 is Adam's and RMSprop's standard rate.
SCRATCH_LR = 1e-3

# A comparison that finishes in minutes per run on a laptop CPU and still shows learning:
# a scratch ResNet50 needs about 250 steps to leave chance on the synthetic set, so this is
# all 2800 synthetic training images for 3 epochs, with validation and test capped at 280
# images each.
QUICK: dict[str, int] = dict(epochs=3, max_train=2800, max_eval=280, input_size=48, batch_size=32)


@dataclass(frozen=True)
class Preset:
    """What one configuration overrides on the base, and what it means in words."""

    weights: str
    optimizer: str
    learning_rate: float
    frozen_blocks: int
    description: str


PRESETS: dict[str, Preset] = {
    "imagenet-adam": Preset("imagenet", "adam", PRETRAINED_LR, 0, "ImageNet weights, Adam, all layers trained"),
    "imagenet-rmsprop": Preset("imagenet", "rmsprop", PRETRAINED_LR, 0,
                               "ImageNet weights, RMSprop, all layers trained"),
    "scratch-adam": Preset("none", "adam", SCRATCH_LR, 0, "Random init, Adam, all layers trained"),
    "scratch-rmsprop": Preset("none", "rmsprop", SCRATCH_LR, 0, "Random init, RMSprop, all layers trained"),
    # Four of five blocks: only the most task-specific block adapts to faces.
    "imagenet-frozen-adam": Preset("imagenet", "adam", PRETRAINED_LR, 4,
                                   "ImageNet weights, Adam, first 4 blocks frozen (last block + head trained)"),
}

CONFIG_IDS: tuple[str, ...] = tuple(PRESETS)
DESCRIPTIONS: dict[str, str] = {cid: p.description for cid, p in PRESETS.items()}


def base_config(arch: str = "resnet50", dataset: str = "synthetic", **train_overrides) -> RunConfig:
    """The shared base every configuration is derived from."""
    return RunConfig(
        variant="base",
        data=DataConfig(dataset=dataset),
        model=ModelConfig(arch=arch),
        optimizer=OptimizerConfig(name="adam", learning_rate=PRETRAINED_LR),
        train=replace(TrainConfig(), **train_overrides),
    )


def preset(config_id: str, base: RunConfig | None = None) -> RunConfig:
    """The named configuration applied on top of ``base`` (default: ``base_config()``)."""
    if config_id not in PRESETS:
        raise KeyError(f"Unknown configuration {config_id!r}; expected one of {', '.join(CONFIG_IDS)}")
    row = PRESETS[config_id]
    base = base or base_config()
    model = replace(base.model, weights=row.weights, frozen_blocks=row.frozen_blocks)
    optimizer = replace(base.optimizer, name=row.optimizer, learning_rate=row.learning_rate)
    return replace(base, variant=config_id, model=model, optimizer=optimizer).validate()


def all_presets(base: RunConfig | None = None) -> list[RunConfig]:
    """The five configurations in their canonical order."""
    return [preset(cid, base) for cid in CONFIG_IDS]


def shared_base(arch: str, dataset: str, *, epochs: int, batch_size: int, input_size: int,
                max_train: int | None = None, max_eval: int | None = None, augment: bool = True,
                class_weights: bool = False, early_stopping: int = 0, seed: int = 42, group: str = "") -> RunConfig:
    """The base a form or the command line describes, before any configuration is applied
    (the genetic search's genes override it directly)."""
    base = base_config(arch, dataset, epochs=epochs, batch_size=batch_size, seed=seed,
                       early_stopping_patience=early_stopping)
    return replace(base, group=group,
                   data=replace(base.data, max_train=max_train, max_eval=max_eval, augment=augment,
                                class_weights=class_weights),
                   model=replace(base.model, input_size=input_size))


def grid(dataset: str, archs: Iterable[str], config_ids: Iterable[str], seeds: Iterable[int] | None = None,
         **settings: Any) -> list[RunConfig]:
    """One config per seed x architecture x configuration, everything else shared. ``settings`` are
    ``shared_base``'s keyword arguments; ``seeds`` (default: ``settings``' one seed) repeat the grid
    with different training seeds, seed-major, so a grid cut short still holds whole repeats."""
    archs, config_ids = list(archs), list(config_ids)
    seeds = [settings.pop("seed", 42)] if seeds is None else list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds: expected distinct integers. Received: seeds={seeds!r}")
    return [preset(cid, shared_base(arch, dataset, seed=seed, **settings))
            for seed in seeds for arch in archs for cid in config_ids]


def seed_list(seeds: Sequence[int], start: int = 42) -> list[int]:
    """``--seeds`` as seeds: one number N means N consecutive seeds from ``start``; several are the seeds."""
    seeds = [int(s) for s in seeds]
    if len(seeds) == 1:
        _check_count(seeds[0])
        return list(range(start, start + seeds[0]))
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds: expected distinct integers. Received: seeds={seeds!r}")
    return seeds


MAX_SEEDS = 100


def _check_count(n: int) -> None:
    if not 1 <= n <= MAX_SEEDS:
        raise ConfigError(f"seeds: a single number is how many seeds to run, 1 to {MAX_SEEDS}. Received: seeds={n}")


def _weights_check(has_weights: Callable[[str], bool] | None) -> Callable[[str], bool]:
    if has_weights is not None:
        return has_weights
    return imagenet_weights_cached


def missing_weights(configs: Iterable[RunConfig], has_weights: Callable[[str], bool] | None = None) -> list[str]:
    """Architectures whose ImageNet weights these configs need but ``has_weights`` (default: the
    local Keras cache, ``core.configs.paths.imagenet_weights_cached``) says are absent, sorted."""
    has = _weights_check(has_weights)
    return sorted({c.model.arch for c in configs if c.model.weights == "imagenet" and not has(c.model.arch)})


def quick_configs(has_weights: Callable[[str], bool] | None = None, dataset: str = "synthetic",
                  arch: str = "resnet50", seeds: Iterable[int] | None = None) -> list[RunConfig]:
    """The quick profile: every configuration of ``arch`` with ``QUICK``'s budget on ``dataset`` (once per
    seed in ``seeds``), less the ImageNet ones whose weights ``has_weights`` (default: the local Keras
    cache) says are absent."""
    configs = grid(dataset, [arch], CONFIG_IDS, seeds=seeds, **QUICK)
    missing = set(missing_weights(configs, has_weights))
    return [c for c in configs if not (c.model.weights == "imagenet" and c.model.arch in missing)]
