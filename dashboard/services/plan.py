"""Planning runs from a form: the configuration grid, missing ImageNet weights and time estimates,
over ``core.presets`` and ``core.estimate`` with this machine's cached runs and datasets."""
from __future__ import annotations

from core import estimate, presets
from core.config import RunConfig
from dashboard.services.data import dataset_sizes
from dashboard.services.runstore import runs

build_configs = presets.grid
format_duration = estimate.format_duration


def missing_weights(configs: list[RunConfig]) -> list[str]:
    """Architectures whose ImageNet weights these configs need but this machine lacks."""
    return presets.missing_weights(configs)


def quick_comparison_configs() -> list[RunConfig]:
    """The Overview's one-click comparison: every configuration this machine can run, quickly."""
    return presets.quick_configs()


def estimate_seconds(configs: list[RunConfig]) -> float:
    """Wall time for these runs on this machine, from throughput measured by earlier runs here."""
    sizes = {name: dataset_sizes(name) for name in {c.data.dataset for c in configs}}
    return estimate.estimate_seconds(configs, sizes, estimate.measured_rates(runs()))
