"""Planning runs from a form: the configuration grid, missing ImageNet weights and time estimates,
over ``core.presets`` and ``core.estimate`` with this machine's cached runs and datasets."""
from __future__ import annotations

from core import estimate, presets
from core.config import RunConfig
from dashboard.services.data import dataset_sizes
from dashboard.services.runstore import runs

format_duration = estimate.format_duration


def build_configs(dataset: str, archs: list[str], config_ids: list[str], n_seeds: int = 1, **settings) -> list[RunConfig]:
    """The grid a form describes; ``n_seeds`` repeats it with consecutive training seeds from ``settings['seed']``."""
    seeds = presets.seed_list([n_seeds], start=settings.pop("seed", 42))
    return presets.grid(dataset, archs, config_ids, seeds=seeds, **settings)


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
