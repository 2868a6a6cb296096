"""The dashboard's only door into the lab: thin, cached wrappers over ``core``.

Pages call ``services.<name>`` and never touch TensorFlow, MLflow or artifact paths. This
package is the only place with ``st.cache_*``. Its modules, by what they wrap:

- ``runstore``: the run store (runs table, curves, reports), results table, significance, misclassified images
- ``data``: datasets and ImageNet weights on this machine
- ``plan``: configuration grids, the quick profile and time estimates (``core.presets``, ``core.estimate``)
- ``jobs``: the job queue and its worker
- ``predict``: models to predict with, and photos scored by them (``core.inference``)
- ``evolve``: searches (``core.evolution``), their estimates, and comparisons of their best genomes

The choice lists pages offer come from the registries that define them (below and in ``evolve``).
"""
from __future__ import annotations

from core.config import ARCHITECTURES
from core.presets import CONFIG_IDS, DESCRIPTIONS
from dashboard.services.data import dataset_names, dataset_overview, dataset_sizes, weights_status
from dashboard.services.evolve import (
    budget_defaults,
    evolve_base,
    evolve_comparison,
    evolve_estimate,
    gene_choices,
    new_search_id,
    search,
    search_fitness_peers,
    search_jobs,
    search_modes,
    search_options,
    search_strategies,
    searches,
    submit_evolve,
    submit_search_action,
)
from dashboard.services.jobs import ACTIVE_STATES, cancel, ensure_worker, job_action, job_table, submit, worker_status
from dashboard.services.plan import (
    PROFILE_DESCRIPTIONS,
    PROFILE_NAMES,
    build_configs,
    estimate_seconds,
    format_duration,
    missing_weights,
    profile_defaults,
    protocol_caption,
    quick_comparison_configs,
)
from dashboard.services.predict import (
    DEFAULT_PREDICTORS,
    DETECTORS,
    YUNET_ENV,
    agreement,
    analyse_photo,
    default_predictors,
    predictions_table,
    predictors,
    timings_table,
    yunet_model,
)
from dashboard.services.runstore import (
    KIND_NOTES,
    LIVE_TTL,
    history,
    misclassified,
    misclassified_or_error,
    predictions,
    protocol_table,
    report,
    results_table,
    run_config,
    run_labels,
    runs,
    significance,
    split_warning,
    store,
)

__all__ = [
    "ARCHITECTURES", "CONFIG_IDS", "DESCRIPTIONS",
    "dataset_names", "dataset_overview", "dataset_sizes", "weights_status",
    "budget_defaults", "evolve_base", "evolve_comparison", "evolve_estimate", "gene_choices", "new_search_id",
    "search", "search_fitness_peers", "search_jobs", "search_modes", "search_options", "search_strategies",
    "searches", "submit_evolve", "submit_search_action",
    "ACTIVE_STATES", "cancel", "ensure_worker", "job_action", "job_table", "submit", "worker_status",
    "PROFILE_DESCRIPTIONS", "PROFILE_NAMES", "build_configs", "estimate_seconds", "format_duration",
    "missing_weights", "profile_defaults", "protocol_caption", "quick_comparison_configs",
    "DEFAULT_PREDICTORS", "DETECTORS", "YUNET_ENV", "agreement", "analyse_photo", "default_predictors",
    "predictions_table", "predictors", "timings_table", "yunet_model",
    "KIND_NOTES", "LIVE_TTL", "history", "misclassified", "misclassified_or_error", "predictions",
    "protocol_table", "report", "results_table", "run_config", "run_labels", "runs", "significance", "split_warning",
    "store",
]
