"""Planning runs from a form: the configuration grid, missing ImageNet weights and time estimates,
over ``core.presets`` and ``core.estimate`` with this machine's cached runs and datasets."""
from __future__ import annotations

from typing import Any

from core.analysis import estimate
from core.configs import RunConfig, presets, profiles
from dashboard.services.data import dataset_sizes
from dashboard.services.runstore import runs

format_duration = estimate.format_duration
PROFILE_NAMES = profiles.PROFILE_NAMES
PROFILE_DESCRIPTIONS = {name: p.description for name, p in profiles.PROFILES.items()}


def build_configs(dataset: str, archs: list[str], config_ids: list[str], profile: str = profiles.DEFAULT_PROFILE,
                  n_seeds: int = 1, **settings: Any) -> list[RunConfig]:
    """The form's grid under ``profile`` (``core.configs.profiles.grid``); ``n_seeds`` repeats it with consecutive
    training seeds from ``settings['seed']``."""
    seeds = presets.seed_list([n_seeds], start=settings.pop("seed", 42))
    return profiles.grid(profile, dataset, archs, config_ids, seeds=seeds, **settings)


def profile_defaults(profile: str) -> dict[str, Any]:
    """What the Train form starts from under ``profile``: its budget and both input sizes."""
    return {**profiles.budget(profile), "pretrained_input_size": profiles.get(profile).pretrained_input_size}


def protocol_caption(configs: list[RunConfig]) -> str:
    """One line: the protocol these configs train under (input size per weights source included)."""
    sizes = {("pretrained" if profiles.is_pretrained(c) else "scratch"): c.model.input_size for c in configs}
    values = {k: v for k, v in profiles.protocol(configs[0]).items() if k != "input px"}
    return ("; ".join(f"{k}: {v}" for k, v in values.items()) + "; input px " +
            ", ".join(f"{k} {v}" for k, v in sorted(sizes.items())))


def missing_weights(configs: list[RunConfig]) -> list[str]:
    """Architectures whose ImageNet weights these configs need but this machine lacks."""
    return presets.missing_weights(configs)


def quick_comparison_configs(n_seeds: int = 1) -> list[RunConfig]:
    """The Overview's one-click comparison: every configuration this machine can run, quickly, with
    ``n_seeds`` consecutive training seeds each (from the usual 42)."""
    return presets.quick_configs(seeds=presets.seed_list([n_seeds]))


def estimate_seconds(configs: list[RunConfig]) -> float:
    """Wall time for these runs on this machine, from throughput measured by earlier runs here."""
    sizes = {name: dataset_sizes(name) for name in {c.data.dataset for c in configs}}
    return estimate.estimate_seconds(configs, sizes, estimate.measured_rates(runs()))
