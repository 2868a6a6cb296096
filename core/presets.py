"""The five configurations compared by the lab, built from one shared base.

Everything not named by a configuration's id (data, split, seed, epochs, input size,
augmentation, head) comes from the base, so differences in results come from the
configuration alone.
"""
from __future__ import annotations

from dataclasses import replace

from core.config import DataConfig, ModelConfig, OptimizerConfig, RunConfig, TrainConfig

# Fine-tuning pretrained features needs small steps or it wrecks them in the first epoch.
PRETRAINED_LR = 1e-4
# Random init has nothing to preserve; 1e-3 is Adam's and RMSprop's standard rate.
SCRATCH_LR = 1e-3

# A comparison that finishes in minutes per run on a laptop CPU and still shows learning:
# a scratch ResNet50 needs about 250 steps to leave chance on the synthetic set, so this is
# all 2800 synthetic training images for 3 epochs (~4 min per run on a 2-core CPU), with
# validation and test capped at 280 images each.
QUICK: dict[str, int] = dict(epochs=3, max_train=2800, max_eval=280, input_size=48, batch_size=32)

CONFIG_IDS: tuple[str, ...] = (
    "imagenet-adam",
    "imagenet-rmsprop",
    "scratch-adam",
    "scratch-rmsprop",
    "imagenet-frozen-adam",
)

DESCRIPTIONS: dict[str, str] = {
    "imagenet-adam": "ImageNet weights, Adam, all layers trained",
    "imagenet-rmsprop": "ImageNet weights, RMSprop, all layers trained",
    "scratch-adam": "Random init, Adam, all layers trained",
    "scratch-rmsprop": "Random init, RMSprop, all layers trained",
    "imagenet-frozen-adam": "ImageNet weights, Adam, first 4 blocks frozen (last block + head trained)",
}


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
    if config_id not in CONFIG_IDS:
        raise KeyError(f"Unknown configuration {config_id!r}; expected one of {', '.join(CONFIG_IDS)}")
    base = base or base_config()
    pretrained = config_id.startswith("imagenet")
    model = replace(
        base.model,
        weights="imagenet" if pretrained else "none",
        # Four of five blocks: only the most task-specific block adapts to faces.
        frozen_blocks=4 if "frozen" in config_id else 0,
    )
    optimizer = replace(
        base.optimizer,
        name="rmsprop" if config_id.endswith("rmsprop") else "adam",
        learning_rate=PRETRAINED_LR if pretrained else SCRATCH_LR,
    )
    return replace(base, variant=config_id, model=model, optimizer=optimizer).validate()


def all_presets(base: RunConfig | None = None) -> list[RunConfig]:
    """The five configurations in their canonical order."""
    return [preset(cid, base) for cid in CONFIG_IDS]
