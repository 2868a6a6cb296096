"""Training profiles: how hard the five configurations are trained, as a table.

A profile is the budget (epochs, batch size, input size, data caps) plus the protocol
(augmentation set, learning-rate schedule, early stopping, weight decay, test-time
augmentation). It never changes what a configuration means: the weights source, optimizer,
learning rate and freezing still come from ``core.presets``, and every configuration in
one grid gets the same profile values. The one per-configuration difference a profile
makes is the input size by weights source: ImageNet backbones learned their filters on
224 px objects, so ``paper`` shows them upscaled faces, while networks trained from
scratch keep FER2013's native 48 px (as the published scratch VGG result did).

Each run stores its profile's name in ``train.profile`` (and as the ``profile`` tag), and
every value it set in its config.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from core.configs import presets
from core.configs.choices import AUGMENT_SETS
from core.configs.config import RunConfig


@dataclass(frozen=True)
class Profile:
    """The budget and protocol one profile sets."""

    description: str
    epochs: int
    batch_size: int
    # Configurations trained from scratch (and every configuration when the two sizes are equal).
    input_size: int
    # Configurations that start from ImageNet (or other pretrained) weights.
    pretrained_input_size: int
    max_train: int | None = None
    max_eval: int | None = None
    augment_set: str = "basic"
    augment_strength: float = 1.0
    lr_schedule: str = "constant"
    plateau_factor: float = 0.5
    plateau_patience: int = 3
    warmup_epochs: int = 0
    early_stopping: int = 0
    early_stopping_monitor: str = "val_loss"
    weight_decay: float = 0.0
    tta: str = "none"


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        "a few minutes per run on a laptop CPU: 3 epochs on 2800 training images at 48 px",
        epochs=presets.QUICK["epochs"], batch_size=presets.QUICK["batch_size"],
        input_size=presets.QUICK["input_size"], pretrained_input_size=presets.QUICK["input_size"],
        max_train=presets.QUICK["max_train"], max_eval=presets.QUICK["max_eval"]),
    "standard": Profile(
        "the lab's defaults: 10 epochs at 48 px, constant learning rate, basic augmentation",
        epochs=10, batch_size=32, input_size=48, pretrained_input_size=48),
    # ResidualMaskingNetwork (ResNet50, 224 px, batch 48, up to 50 epochs, stop after 8 flat epochs, TTA)
    # and Khaireddin & Chen 2021 (VGG, 48 px, plateau decay x0.75 after 5 flat epochs, weight decay 1e-4,
    # random-resized-crop/shift/flip/rotation/erasing, ten-crop TTA).
    "paper": Profile(
        "the published FER2013 protocol, for a GPU: pretrained backbones at 224 px, scratch at 48 px, up to "
        "50 epochs with early stopping on validation accuracy, plateau LR decay, weight decay, heavy "
        "augmentation, ten-crop test-time augmentation",
        epochs=50, batch_size=48, input_size=48, pretrained_input_size=224, augment_set="paper",
        lr_schedule="plateau", plateau_factor=0.75, plateau_patience=5, early_stopping=8,
        early_stopping_monitor="val_accuracy", weight_decay=1e-4, tta="ten-crop"),
}
PROFILE_NAMES: tuple[str, ...] = tuple(PROFILES)
DEFAULT_PROFILE = "standard"
# Run options a profile supplies when the user does not (``presets.shared_base`` keywords).
BUDGET_KEYS = ("epochs", "batch_size", "max_train", "max_eval", "early_stopping")


def get(name: str) -> Profile:
    """The named profile; unknown names list the known ones."""
    if name not in PROFILES:
        raise KeyError(f"Unknown profile {name!r}; expected one of {', '.join(PROFILE_NAMES)}")
    return PROFILES[name]


def budget(name: str) -> dict[str, Any]:
    """The profile's run options (``BUDGET_KEYS`` plus ``input_size``) as ``shared_base`` keywords."""
    p = get(name)
    return {**{k: getattr(p, k) for k in BUDGET_KEYS}, "input_size": p.input_size}


def is_pretrained(cfg: RunConfig) -> bool:
    """True when the backbone starts from learned weights (ImageNet or a weights file)."""
    return cfg.model.weights != "none"


def apply(cfg: RunConfig, name: str, *, input_size: int | None = None,
          pretrained_input_size: int | None = None) -> RunConfig:
    """``cfg`` trained under profile ``name``: its protocol values, and the input size for its weights source.

    ``input_size`` (when given) is every configuration's size; ``pretrained_input_size`` (when given)
    overrides it for pretrained ones. Budget values (epochs, batch size, caps) are left as ``cfg`` has them.
    """
    p = get(name)
    if is_pretrained(cfg):
        size = pretrained_input_size or input_size or p.pretrained_input_size
    else:
        size = input_size or p.input_size
    train = replace(cfg.train, profile=name, lr_schedule=p.lr_schedule, plateau_factor=p.plateau_factor,
                    plateau_patience=p.plateau_patience, warmup_epochs=min(p.warmup_epochs, cfg.train.epochs - 1),
                    early_stopping_monitor=p.early_stopping_monitor, tta=p.tta)
    return replace(cfg, train=train,
                   data=replace(cfg.data, augment_set=p.augment_set, augment_strength=p.augment_strength),
                   model=replace(cfg.model, input_size=size),
                   optimizer=replace(cfg.optimizer, weight_decay=p.weight_decay)).validate()


def grid(profile: str, dataset: str, archs: Iterable[str], config_ids: Iterable[str], *,
         input_size: int | None = None, pretrained_input_size: int | None = None, **settings: Any) -> list[RunConfig]:
    """``presets.grid`` under a profile: ``settings`` left out or None come from the profile."""
    p = get(profile)
    filled = {**{k: getattr(p, k) for k in BUDGET_KEYS}, **{k: v for k, v in settings.items() if v is not None}}
    configs = presets.grid(dataset, archs, config_ids, input_size=input_size or p.input_size, **filled)
    return [apply(c, profile, input_size=input_size, pretrained_input_size=pretrained_input_size) for c in configs]


def protocol(cfg: RunConfig) -> dict[str, Any]:
    """What a run's profile set, read from its config: the values Train and Compare show."""
    t = cfg.train
    schedule = {"constant": "constant",
                "plateau": f"x{t.plateau_factor:g} after {t.plateau_patience} flat epochs",
                "cosine": f"cosine, {t.warmup_epochs} warm-up epoch(s)"}[t.lr_schedule]
    return {
        "profile": t.profile,
        "input px": cfg.model.input_size,
        "epochs (max)": t.epochs,
        "batch": t.batch_size,
        "augmentation": (f"{AUGMENT_SETS[cfg.data.augment_set]} (strength {cfg.data.augment_strength:g})"
                         if cfg.data.augment else "off"),
        "LR schedule": schedule,
        "early stopping": (f"{t.early_stopping_patience} epochs on {t.early_stopping_monitor}"
                           if t.early_stopping_patience else "off"),
        "weight decay": cfg.optimizer.weight_decay,
        "TTA": t.tta,
    }

