"""Genetic search with PyGAD: training hyperparameters (mode ``hyper``) or a head's weights (``head``).

- ``space``: the genes, pinning genes (``fixed``), decoding a genome into a ``RunConfig``.
- ``spec``: ``SearchSpec`` (a search's settings, validated once), ``Budget``, ``Progress``.
- ``state``: saved searches (``artifacts/searches/<search_id>/state.json``) and the read API.
- ``hyper``: the hyperparameter search (PyGAD or random, cached, resumable, multi-fidelity).
- ``head``: a dense head on frozen features, evolved with ``pygad.kerasga`` beside Adam and RMSprop.
- ``search``: ``run_search``, ``start_search``, ``resume_search``.

Importing this package loads only NumPy and pandas, so the dashboard can read searches
(``list_searches``, ``search_state``) without loading TensorFlow, PyGAD or MLflow.
"""
from core.evolution.head import HEAD_METHODS, head_probs
from core.evolution.search import resume_search, retrain_front_member, run_search, run_seeded_searches, start_search
from core.evolution.space import (
    GENE_SPACE,
    HEAD_GENES,
    Gene,
    constrain,
    decode,
    genome_key,
    genome_values,
    parse_fixed,
    plan_space,
    resolve_space,
    space_from_json,
    space_to_json,
)
from core.evolution.spec import (
    ACTIONS,
    MODE_LABELS,
    MODES,
    STRATEGIES,
    STRATEGY_LABELS,
    Budget,
    Label,
    Progress,
    SearchSpec,
    SearchStopped,
    slots_per_generation,
)
from core.evolution.state import (
    OBJECTIVES,
    Objective,
    SearchNotFound,
    best_entry,
    best_so_far,
    enable_front_retrain,
    enable_retrain,
    final_front,
    list_searches,
    load_state,
    new_search_id,
    save_state,
    search_exists,
    search_state,
    searches_dir,
    state_path,
    strategy_bands,
    timestamp,
)

__all__ = [
    "ACTIONS", "Budget", "GENE_SPACE", "Gene", "HEAD_GENES", "HEAD_METHODS", "Label", "MODES", "MODE_LABELS",
    "OBJECTIVES", "Objective", "Progress", "STRATEGIES", "STRATEGY_LABELS",
    "SearchNotFound", "SearchSpec", "SearchStopped", "best_entry", "best_so_far", "constrain", "decode",
    "enable_front_retrain", "enable_retrain", "final_front", "genome_key", "genome_values", "head_probs",
    "list_searches", "load_state", "new_search_id", "parse_fixed", "plan_space", "resolve_space", "resume_search",
    "retrain_front_member", "run_search", "run_seeded_searches", "save_state", "search_exists", "search_state",
    "searches_dir", "slots_per_generation", "space_from_json", "space_to_json", "start_search", "state_path",
    "strategy_bands", "timestamp",
]
