"""Accuracy against a cost, with the non-dominated points highlighted (Compare's runs, Evolve's genomes)."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.charts.common import PALETTE, empty_figure, short_label

TIED = PALETTE[1]


def _log_ticks(values: np.ndarray, fmt: Callable[[float], str]) -> dict:
    """Ticks at 1, 2 and 5 times each power of ten that the values span, written by ``fmt`` ("10 TFLOP"):
    plotly's own SI ticks read "10T" and cannot put a unit after the prefix."""
    values = values[np.isfinite(values) & (values > 0)]
    if not len(values):
        return {}
    low, high = np.floor(np.log10(values.min())), np.ceil(np.log10(values.max()))
    ticks = [m * 10 ** e for e in np.arange(low, high + 1) for m in (1, 2, 5)]
    ticks = [t for t in ticks if values.min() / 2.5 <= t <= values.max() * 2.5]
    return dict(tickvals=ticks, ticktext=[fmt(t) for t in ticks])


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
    x_low: str | None = None,
    x_high: str | None = None,
    tied: Sequence[bool] | None = None,
    log_x: bool = False,
    x_format: Callable[[float], str] | None = None,
    y_percent: bool = False,
    colors: Mapping[str, str] | None = None,
) -> go.Figure:
    """Accuracy (``y``, with an optional ``low``-``high`` interval) against a cost (``x``, with an optional
    ``x_low``-``x_high`` interval), every point labelled by ``label`` (abbreviated; the full name on hover);
    the non-dominated points (``front``) highlighted and joined in cost order. Front members flagged in
    ``tied`` cannot be told apart from another member and are drawn as open markers, not joined as a
    trade-off. ``x_format`` writes x values with their unit (hover, and the ticks of a log axis). With
    ``colors`` (label -> colour) each point keeps its configuration's colour and is named in the legend."""
    missing = {x, y, label, *(c for c in (low, high, x_low, x_high) if c)} - set(points.columns)
    if missing:
        raise ValueError(f"points needs columns {sorted(missing)}")
    mask = np.asarray(front, dtype=bool)
    if len(mask) != len(points):
        raise ValueError(f"front: expected one flag per point ({len(points)}). Received {len(mask)}")
    ties = np.zeros(len(points), bool) if tied is None else np.asarray(tied, dtype=bool) & mask
    df = points.assign(_front=mask, _tied=ties).dropna(subset=[x, y])
    if df.empty:
        return empty_figure("No point has both values")
    fmt = x_format or (lambda v: f"{v:.4g}")
    y_hover = "%{y:.1%}" if y_percent else "%{y:.3f}"
    hover = "%{customdata[0]}<br>" + f"{x_title}: " + "%{customdata[1]}<br>" + f"{y_title}: " + y_hover + \
            "<extra></extra>"
    fig = go.Figure()
    kinds = ((False, False, "dominated", "rgba(120, 120, 140, 0.6)", 9, "circle"),
             (True, False, "Pareto front", PALETTE[0], 12, "diamond"),
             (True, True, "tied: not resolved", TIED, 12, "diamond-open"))
    for on_front, is_tied, kind, kind_color, size, symbol in kinds:
        part = df[(df["_front"] == on_front) & (df["_tied"] == is_tied)]
        if part.empty:
            continue
        # With ``colors`` every point is its own legend entry in its configuration's colour (the legend
        # wraps long names, and points close together do not pile their labels on each other); without,
        # one trace per kind with a short label beside each point (Evolve's many genomes).
        groups = [(n, part[part[label] == n]) for n in part[label].astype(str)] if colors else [(kind, part)]
        for name, rows in groups:
            color = colors.get(name, kind_color) if colors else kind_color
            yv, xv = rows[y].to_numpy(dtype=float), rows[x].to_numpy(dtype=float)
            error_y = error_x = None
            if low and high:
                # A t-interval across few seeds can reach past 0 or 1; accuracy cannot, so the bar stops there.
                # np.nan_to_num: a point without an interval draws no bar rather than breaking the trace.
                error_y = dict(type="data", symmetric=False, color=color, thickness=1.2,
                               array=np.nan_to_num(np.clip(rows[high].to_numpy(dtype=float), 0, 1) - yv),
                               arrayminus=np.nan_to_num(yv - np.clip(rows[low].to_numpy(dtype=float), 0, 1)))
            if x_low and x_high:  # a cost is never negative, whatever a t-interval across two seeds says
                error_x = dict(type="data", symmetric=False, color=color, thickness=1.2,
                               array=np.nan_to_num(rows[x_high].to_numpy(dtype=float) - xv),
                               arrayminus=np.nan_to_num(xv - np.maximum(rows[x_low].to_numpy(dtype=float), 0)))
            names = rows[label].astype(str)
            fig.add_trace(go.Scatter(
                x=xv, y=yv, mode="markers" if colors else "markers+text",
                name=f"{name} · {kind}" if colors else kind, legendgroup=kind if not colors else None,
                text=None if colors else [short_label(n) for n in names], textposition="top center",
                customdata=np.stack([names, [fmt(v) for v in xv]], axis=-1), textfont=dict(size=10),
                error_y=error_y, error_x=error_x, cliponaxis=False, hovertemplate=hover,
                marker=dict(color=color, size=size, symbol=symbol, line=dict(width=2, color=color))))
    joined = df[df["_front"] & ~df["_tied"]].sort_values(x)
    if len(joined) > 1:
        fig.add_trace(go.Scatter(x=joined[x], y=joined[y], mode="lines", name="front (joined)", hoverinfo="skip",
                                 line=dict(color=PALETTE[0], width=1.5, dash="dot"), showlegend=False))
    xaxis = dict(title=x_title, type="log" if log_x else "linear")
    if log_x and x_format:
        xaxis.update(_log_ticks(df[x].to_numpy(float), x_format))
    yaxis = dict(title=y_title, tickformat=".0%" if y_percent else None)
    if low and high:  # the intervals stay inside the metric's range: accuracy is a fraction in [0, 1]
        top = min(1.0, float(np.nanmax(df[[y, high]].to_numpy(float))))
        bottom = max(0.0, float(np.nanmin(df[[y, low]].to_numpy(float))))
        pad = 0.08 * max(top - bottom, 0.05)
        yaxis["range"] = [max(0.0, bottom - pad), min(1.0, top + pad) + 0.04]  # room for the labels above
    # The legend above the plot, in rows: at the right, long configuration names squeezed the plot to half
    # the width at 1000 px.
    fig.update_layout(xaxis=xaxis, yaxis=yaxis, legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig
