"""The dashboard's only door into the lab: thin, cached wrappers over ``core``.

Pages call ``services.<name>`` and never touch TensorFlow, MLflow or artifact paths. This
package is the only place with ``st.cache_*``. Its modules, by what they wrap:

- ``runstore``: the run store (runs table, curves, reports), results table, significance, misclassified images
- ``seeds``: repeats of a configuration over seeds: aggregated results, bands, paired tests (``core.stats``)
- ``data``: datasets and ImageNet weights on this machine
- ``plan``: configuration grids, the quick profile and time estimates (``core.presets``, ``core.estimate``)
- ``jobs``: the job queue and its worker
- ``predict``: models to predict with, and photos scored by them (``core.inference``)
- ``teaching``: the Optimizers page's 2-D surfaces (``core.playground``) and classroom experiment
  (``core.classroom``), and links to that page preset to a run
- ``cost``: accuracy against cost (Pareto front) of finished runs
- ``evolve``: searches (``core.evolution``), their estimates, and comparisons of their best genomes
- ``quiet``: OpenCV's and FFmpeg's C++ log lines kept out of the server log

The choice lists pages offer come from the registries that define them (below and in ``evolve``).
"""
from __future__ import annotations

from core.configs import ARCHITECTURES
from core.configs.presets import CONFIG_IDS, DESCRIPTIONS
from dashboard.services.cost import DETERMINISTIC_COSTS, accuracy_cost, cost_options, format_cost, si
from dashboard.services.data import dataset_names, dataset_overview, dataset_sizes, weights_status
from dashboard.services.evolve import (
    budget_defaults,
    evolve_base,
    evolve_comparison,
    evolve_estimate,
    gene_choices,
    head_methods,
    new_search_id,
    search,
    search_fitness_peers,
    search_jobs,
    search_modes,
    search_objectives,
    search_options,
    search_seed_bands,
    search_space,
    search_strategies,
    searches,
    submit_evolve,
    submit_search_action,
)
from dashboard.services.export import EXPORT_FORMATS, export_zip
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
    MAX_PHOTO_MB,
    MAX_PHOTOS,
    YUNET_ENV,
    agreement,
    analyse_photo,
    analyse_video,
    default_predictors,
    detector_label,
    fetch_reference,
    has_photo_model,
    photo_model_on_offer,
    predictions_table,
    predictors,
    published_reference,
    timings_table,
    track_verdict,
    verdict_label,
    video_limits,
    yunet_model,
)
from dashboard.services.quiet import quiet_native_logs
from dashboard.services.runner import keep_keras_between_runs
from dashboard.services.runstore import (
    KIND_NOTES,
    LIVE_TTL,
    history,
    measured_on,
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
from dashboard.services.seeds import (
    SEED_METRICS,
    SEED_SUMMARIES,
    aggregate_table,
    has_repeats,
    mean_confusion,
    more_seeds_plan,
    pair_verdicts,
    paired_test,
    pairs_table,
    per_class_f1,
    per_seed_table,
    queue_more_seeds,
    repeat_groups,
    seed_bands,
    seed_mcnemar,
    with_summary,
)
from dashboard.services.teaching import (
    CLASSROOM_LABELS,
    OPTIMIZERS,
    SURFACES,
    classroom_defaults,
    classroom_experiment,
    classroom_histories,
    format_rate,
    optimizer_paths,
    optimizers_href,
    optimizers_link,
    parse_rate,
    playground_defaults,
    surface_grid,
    surface_info,
)

# The server log (and the workers it starts) without OpenCV/FFmpeg C++ log lines.
quiet_native_logs()
keep_keras_between_runs()

__all__ = [
    "ARCHITECTURES", "CONFIG_IDS", "DESCRIPTIONS",
    "DETERMINISTIC_COSTS", "accuracy_cost", "cost_options", "format_cost", "si",
    "dataset_names", "dataset_overview", "dataset_sizes", "weights_status",
    "EXPORT_FORMATS", "export_zip",
    "budget_defaults", "evolve_base", "evolve_comparison", "evolve_estimate", "gene_choices", "head_methods",
    "new_search_id", "search", "search_fitness_peers", "search_jobs", "search_modes", "search_objectives",
    "search_options", "search_seed_bands", "search_space", "search_strategies", "searches", "submit_evolve",
    "submit_search_action",
    "ACTIVE_STATES", "cancel", "ensure_worker", "job_action", "job_table", "submit", "worker_status",
    "PROFILE_DESCRIPTIONS", "PROFILE_NAMES", "build_configs", "estimate_seconds", "format_duration",
    "missing_weights", "profile_defaults", "protocol_caption", "quick_comparison_configs",
    "DEFAULT_PREDICTORS", "DETECTORS", "MAX_PHOTO_MB", "MAX_PHOTOS", "YUNET_ENV", "agreement", "track_verdict", "verdict_label", "analyse_photo", "analyse_video", "default_predictors",
    "detector_label",
    "fetch_reference", "has_photo_model", "photo_model_on_offer", "predictions_table", "predictors", "published_reference", "timings_table",
    "video_limits", "yunet_model",
    "KIND_NOTES", "LIVE_TTL", "history", "misclassified", "misclassified_or_error", "predictions",
    "protocol_table", "report", "results_table", "run_config", "run_labels", "runs", "significance", "split_warning",
    "measured_on",
    "store",
    "CLASSROOM_LABELS", "OPTIMIZERS", "SURFACES", "classroom_defaults", "classroom_experiment", "classroom_histories",
    "format_rate", "optimizer_paths", "optimizers_href", "optimizers_link", "parse_rate", "playground_defaults", "surface_grid",
    "surface_info",
    "SEED_METRICS", "SEED_SUMMARIES", "aggregate_table", "has_repeats", "mean_confusion", "more_seeds_plan",
    "pair_verdicts", "paired_test", "pairs_table", "per_class_f1", "per_seed_table", "queue_more_seeds", "repeat_groups",
    "seed_bands", "seed_mcnemar", "with_summary",
]
