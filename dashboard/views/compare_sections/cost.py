"""Compare's "Accuracy against cost" section: one point per configuration (mean across seeds with
intervals on both axes), dominance only where a difference is resolved, ties drawn and named."""
from __future__ import annotations

import math

import streamlit as st

from dashboard import services, ui
from dashboard.charts.common import run_colors
from dashboard.charts.pareto import pareto_figure

PERCENT = st.column_config.NumberColumn(format="percent")


def render(run_ids: list[str], datasets: list[str], key: str = "compare") -> list:
    """The section for the finished runs ``run_ids`` (trained on ``datasets``); returns its report sections."""
    st.subheader("Accuracy against cost")
    cost_names = services.cost_options()
    c1, c2 = st.columns(2)
    cost = c1.selectbox("Cost", list(cost_names), format_func=cost_names.get, key=f"{key}_cost")
    ui.keep_valid(f"{key}_cost_dataset", datasets)
    dataset = c2.selectbox("Dataset", datasets, key=f"{key}_cost_dataset", disabled=len(datasets) < 2)
    points, verdict = services.accuracy_cost(run_ids, cost, dataset)
    if points.empty:
        st.info("None of the selected finished runs was trained and tested on this dataset (GA individuals are "
                "scored on validation, re-evaluations have no training cost of their own).")
        return []
    fig = ui.tight(pareto_figure(
        points, cost, "test_accuracy", points.front, x_title=cost_names[cost], y_title="test accuracy",
        low="ci_low", high="ci_high", x_low=f"{cost}_low", x_high=f"{cost}_high",
        tied=[bool(t) for t in points.tied_with], log_x=cost == "train_flops",
        x_format=lambda v: services.format_cost(cost, v), y_percent=True,
        colors=run_colors(list(points.configuration))))
    st.plotly_chart(fig, key=f"{key}_pareto")
    if verdict:
        st.markdown(f"**{ui.md(verdict['sentence'])}**")
        if verdict["ties"]:
            st.markdown(ui.md(verdict["ties"]))
    seeds = sorted(set(points.n_runs))
    unmeasured = int(points[cost].isna().sum())
    deterministic = cost in services.DETERMINISTIC_COSTS
    st.caption(
        f"Measured on {ui.md(services.measured_on([r for ids in points.run_ids for r in ids]))}; "
        f"{ui.plural(len(points), 'configuration')} with "
        f"{' or '.join(map(str, seeds))} seed(s) each. Vertical bars: 95% interval of test accuracy, a t-interval "
        "across seeds where a configuration was repeated, else a bootstrap over test images. "
        + ("This cost is the same for every seed of a configuration, so any difference in it is real. "
           if deterministic else "Horizontal bars: 95% t-interval of this cost across seeds (a configuration run "
           "once has none: wall-clock costs vary from run to run, so its cost difference is not resolved). ")
        + "A configuration is dominated only when another is better beyond the intervals on one axis and not worse "
          "on the other; diamonds joined by the dotted line form the Pareto front, open diamonds are tied with "
          "another member (neither axis resolved). How each cost is measured: core/analysis/README.md, "
          "\"Accuracy against cost\"."
        + (f" {unmeasured} configuration(s) have no recorded {cost_names[cost]} (trained before costs were recorded) "
           "and are not placed." if unmeasured else ""))
    table = points[points.front].sort_values(cost)
    shown = table[["configuration", "n_runs", "test_accuracy", "ci_low", "ci_high", "interval"]].assign(**{
        label: [_with_interval(c, row) for _, row in table.iterrows()] for c, label in cost_names.items()},
        tied=[", ".join(t) or "no" for t in table.tied_with])
    st.dataframe(shown, hide_index=True, key=f"{key}_front_table", column_config={
        "n_runs": st.column_config.NumberColumn("runs (seeds)"),
        "test_accuracy": PERCENT, "ci_low": st.column_config.NumberColumn("95% CI low", format="percent"),
        "ci_high": st.column_config.NumberColumn("95% CI high", format="percent"),
        "tied": st.column_config.TextColumn("tied with")})
    return [(f"Accuracy against {cost_names[cost]}", fig), ("Pareto front", shown.round(4)),
            *([("Cheapest within the best's interval", verdict["sentence"] + " " + verdict["ties"])]
              if verdict else [])]


def _with_interval(cost: str, row) -> str:
    """A configuration's cost with its unit, and its interval across seeds where it has one."""
    value, low, high = row[cost], row[f"{cost}_low"], row[f"{cost}_high"]
    text = services.format_cost(cost, value)
    if cost not in services.DETERMINISTIC_COSTS and math.isfinite(low) and math.isfinite(high):
        text += f" [{services.format_cost(cost, low)}, {services.format_cost(cost, high)}]"
    return text
