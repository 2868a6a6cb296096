"""Accuracy against a cost, with the non-dominated points highlighted (Compare's runs, Evolve's genomes)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.charts.common import PALETTE, empty_figure


def pareto_figure(
    points: pd.DataFrame,
    x: str,
    y: str,
    front: Sequence[bool],
    *,
    x_title: str,
    y_title: str,
    label: str = "configuration",
    low: str | None = None,
    high: str | None = None,
    log_x: bool = False,
) -> go.Figure:
    """Accuracy (``y``, with an optional ``low``-``high`` interval) against a cost (``x``), every point
    labelled by ``label``; the non-dominated points (``front``) highlighted and joined in cost order."""
    missing = {x, y, label, *(c for c in (low, high) if c)} - set(points.columns)
    if missing:
        raise ValueError(f"points needs columns {sorted(missing)}")
    mask = np.asarray(front, dtype=bool)
    if len(mask) != len(points):
        raise ValueError(f"front: expected one flag per point ({len(points)}). Received {len(mask)}")
    df = points.assign(_front=mask).dropna(subset=[x, y])
    if df.empty:
        return empty_figure("No point has both values")
    fig = go.Figure()
    for on_front, name, color, size in ((False, "dominated", "rgba(120, 120, 140, 0.6)", 9),
                                        (True, "Pareto front", PALETTE[0], 12)):
        part = df[df["_front"] == on_front]
        if part.empty:
            continue
        error = None
        if low and high:
            yv = part[y].to_numpy(dtype=float)
            error = dict(type="data", symmetric=False, color=color, thickness=1.2,
                         array=part[high].to_numpy(dtype=float) - yv, arrayminus=yv - part[low].to_numpy(dtype=float))
        fig.add_trace(go.Scatter(
            x=part[x], y=part[y], mode="markers+text", name=name, text=part[label].astype(str),
            textposition="top center", textfont=dict(size=10), error_y=error,
            marker=dict(color=color, size=size, symbol="diamond" if on_front else "circle"),
            hovertemplate="%{text}<br>" + f"{x_title}: " + "%{x:.4g}<br>" + f"{y_title}: " + "%{y:.3f}<extra></extra>",
        ))
    joined = df[df["_front"]].sort_values(x)
    if len(joined) > 1:
        fig.add_trace(go.Scatter(x=joined[x], y=joined[y], mode="lines", name="front (joined)", hoverinfo="skip",
                                 line=dict(color=PALETTE[0], width=1.5, dash="dot"), showlegend=False))
    fig.update_layout(xaxis=dict(title=x_title, type="log" if log_x else "linear"), yaxis=dict(title=y_title),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02))
    return fig
