"""The run store: runs, their metrics and artifacts, over MLflow (``core.store.tracking``)."""
from core.store.table import RunTable
from core.store.tracking import (
    EXPERIMENT,
    HISTORY_METRICS,
    RUN_COLUMNS,
    RUN_STATUSES,
    RunNotFound,
    RunStore,
    StoreUnreachable,
    default_uri,
    environment,
    repeat_key,
)

__all__ = ["EXPERIMENT", "HISTORY_METRICS", "RUN_COLUMNS", "RUN_STATUSES", "RunNotFound", "RunStore", "RunTable",
           "StoreUnreachable",
           "default_uri", "environment", "repeat_key"]
