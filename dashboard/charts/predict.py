"""Figures of predictions: one face's class probabilities per model, one video face's emotions over time."""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import plotly.graph_objects as go

from dashboard.charts.common import PALETTE, colors_for, empty_figure


def probability_figure(
    probs: Mapping[str, Sequence[float]],
    class_names: Sequence[str],
    colors: Mapping[str, str] | None = None,
) -> go.Figure:
    """Horizontal grouped bars of one face's class probabilities, one colour per model."""
    names = [str(c) for c in class_names]
    if not probs or not names:
        return empty_figure("No predictions")
    palette = colors_for(list(probs), colors)
    fig = go.Figure()
    for model, p in probs.items():
        values = np.asarray(p, dtype=float)
        if values.shape != (len(names),):
            raise ValueError(
                f"probabilities for {model!r} must have one value per class ({len(names)}). "
                f"Received: shape={values.shape}"
            )
        fig.add_trace(
            go.Bar(
                x=values,
                y=names,
                orientation="h",
                name=model,
                marker_color=palette[model],
                meta=model,
                hovertemplate="<b>%{meta}</b><br>%{y}: %{x:.1%}<extra></extra>",
            )
        )
    fig.update_layout(
        barmode="group",
        xaxis=dict(title="Probability", range=[0, 1], tickformat=".0%"),
        # Class order top to bottom, matching the confusion matrix's y axis.
        yaxis=dict(type="category", autorange="reversed"),
        legend=dict(title="Model"),
    )
    return fig


def emotion_timeline_figure(
    times: Sequence[float],
    probs: npt.ArrayLike,
    class_names: Sequence[str],
    title: str = "",
) -> go.Figure:
    """One tracked face under one model: each class's probability (lines) over the video's time."""
    values = np.asarray(probs, dtype=float)
    names = [str(c) for c in class_names]
    if values.size == 0 or not names:
        return empty_figure("No frames with this face")
    if values.shape != (len(times), len(names)):
        raise ValueError(
            f"probabilities must be one row per time and one column per class ({len(times)}, {len(names)}). "
            f"Received: shape={values.shape}"
        )
    fig = go.Figure()
    for k, name in enumerate(names):
        fig.add_trace(
            go.Scatter(
                x=list(times),
                y=values[:, k],
                mode="lines+markers" if len(times) < 40 else "lines",
                name=name,
                line=dict(color=PALETTE[k % len(PALETTE)], width=2),
                hovertemplate=f"<b>{html.escape(name)}</b><br>%{{x:.2f}} s: %{{y:.1%}}<extra></extra>",
            )
        )
    fig.update_layout(
        title=title or None,
        xaxis_title="time in the video (s)",
        yaxis=dict(title="probability", range=[0, 1], tickformat=".0%"),
        hovermode="x unified",
    )
    return fig
