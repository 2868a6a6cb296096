"""Accuracy against cost for the Compare page and the HTML report (``core.pareto`` over the run store)."""
from __future__ import annotations

import pandas as pd

from core.analysis import pareto
from dashboard.services.runstore import report, runs

# Runs that were trained and tested: configurations, retrained best genomes, retrained front members.
TRAINED_KINDS = ("run", "ga-best", "ga-front")


def cost_options() -> dict[str, str]:
    """Cost columns a Pareto chart can use, with their axis labels."""
    return dict(pareto.COSTS)


def accuracy_cost(run_ids: list[str], cost: str, dataset: str) -> tuple[pd.DataFrame, dict | None]:
    """Per configuration (across seeds when repeated) of the finished, trained runs among ``run_ids`` on ``dataset``:
    test accuracy with its interval and the costs, plus a ``front`` column (non-dominated on accuracy
    and ``cost``); and ``core.analysis.pareto.cheapest_within_best``'s verdict (None without data)."""
    table = runs()
    picked = table[table.run_id.isin(run_ids) & (table.status == "FINISHED") & table.kind.isin(TRAINED_KINDS)
                   & table.test_accuracy.notna() & (table.dataset == dataset)]
    intervals = {rid: tuple((report(rid) or {}).get("accuracy_ci") or (float("nan"), float("nan")))
                 for rid in picked.run_id}
    summary = pareto.summarise_configurations(picked, intervals)
    summary["front"] = pareto.accuracy_cost_front(summary.test_accuracy, summary[cost]) if len(summary) else []
    return summary, (pareto.cheapest_within_best(summary, cost) if len(summary) else None)
