"""Accuracy against cost for the Compare page and the HTML report (``core.analysis.pareto`` over the run store)."""
from __future__ import annotations

import pandas as pd

from core.analysis import pareto, units
from dashboard.services.runstore import report, runs

# Runs that were trained and tested: configurations, retrained best genomes, retrained front members.
TRAINED_KINDS = ("run", "ga-best", "ga-front")
DETERMINISTIC_COSTS = pareto.DETERMINISTIC_COSTS
format_cost = units.format_cost
si = units.si


def cost_options() -> dict[str, str]:
    """Cost columns a Pareto chart can use, with their axis labels."""
    return dict(pareto.COSTS)


def accuracy_cost(run_ids: list[str], cost: str, dataset: str) -> tuple[pd.DataFrame, dict | None]:
    """Per configuration (across seeds when repeated) of the finished, trained runs among ``run_ids`` on ``dataset``:
    test accuracy and the costs with their intervals, plus ``front``, ``tied_with`` and ``dominated_by``
    (``core.analysis.pareto.resolved_front``: dominance only where a difference is resolved); and the verdict,
    ``core.analysis.pareto.cheapest_within_best``'s with a ``ties`` sentence (None without data)."""
    table = runs()
    picked = table[table.run_id.isin(run_ids) & (table.status == "FINISHED") & table.kind.isin(TRAINED_KINDS)
                   & table.test_accuracy.notna() & (table.dataset == dataset)]
    intervals = {rid: tuple((report(rid) or {}).get("accuracy_ci") or (float("nan"), float("nan")))
                 for rid in picked.run_id}
    summary = pareto.summarise_configurations(picked, intervals)
    if not len(summary):
        return summary.assign(front=[], tied_with=[], dominated_by=[]), None
    front = pareto.resolved_front(summary, cost)
    summary = summary.join(front)
    verdict = pareto.cheapest_within_best(summary, cost)
    if verdict is not None:
        verdict["ties"] = pareto.ties_sentence(summary, front, cost)
    return summary, verdict
