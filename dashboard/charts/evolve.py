"""Figures of searches: fitness per generation, genes against fitness, and strategies across seeds."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.charts.common import PALETTE, empty_figure, integer_ticks, translucent


def fitness_figure(generations: pd.DataFrame) -> go.Figure:
    """GA fitness per generation: best/mean/worst lines with the worst-best range shaded."""
    missing = {"generation", "best", "mean", "worst"} - set(generations.columns)
    if missing:
        raise ValueError(f"generations needs columns generation, best, mean, worst. Missing: {sorted(missing)}")
    if generations.empty:
        return empty_figure("No generations yet")
    df = generations.sort_values("generation")
    x = df["generation"].to_numpy()
    band = PALETTE[0]
    fig = go.Figure()
    # Worst is drawn first so best can fill down to it ("tonexty" fills to the
    # previous trace); mean goes last so the fill does not attach to it.
    fig.add_trace(
        go.Scatter(
            x=x, y=df["worst"].to_numpy(dtype=float), name="worst", mode="lines",
            line=dict(color=band, width=1, dash="dot"),
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x, y=df["best"].to_numpy(dtype=float), name="best", mode="lines+markers",
            line=dict(color=band, width=2), fill="tonexty", fillcolor="rgba(99, 110, 250, 0.15)",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x, y=df["mean"].to_numpy(dtype=float), name="mean", mode="lines",
            line=dict(color=PALETTE[1], width=2, dash="dash"),
        )
    )
    fig.update_layout(
        xaxis=dict(title="Generation", **integer_ticks(int(x.min()), len(x))),
        yaxis=dict(title="Fitness"),
        hovermode="x unified",
    )
    return fig


def _parcoords_dimension(name: str, column: pd.Series) -> dict:
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if numeric:
        return dict(label=name, values=column.to_numpy(dtype=float))
    # Parcoords only draws numbers: encode categories as integer codes and put the
    # names back as tick labels. Missing values get an explicit category so they are
    # visible rather than silently dropped.
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = [str(c) for c in column.cat.categories]
        as_text = column.astype(object).map(lambda v: "(none)" if pd.isna(v) else str(v))
        if as_text.eq("(none)").any():
            categories.append("(none)")
    else:
        as_text = column.map(lambda v: "(none)" if pd.isna(v) else str(v))
        categories = sorted(as_text.unique())
    codes = as_text.map({c: i for i, c in enumerate(categories)}).to_numpy(dtype=float)
    return dict(
        label=name,
        values=codes,
        tickvals=list(range(len(categories))),
        ticktext=categories,
        range=[0, max(len(categories) - 1, 1)],
    )


def parallel_coordinates_figure(population: pd.DataFrame, fitness_col: str = "fitness") -> go.Figure:
    """Parallel coordinates of GA genes with fitness as the last axis and the line colour."""
    if fitness_col not in population.columns:
        raise ValueError(
            f"population has no fitness column. Received: fitness_col={fitness_col!r}, "
            f"columns={list(population.columns)}"
        )
    if population.empty:
        return empty_figure("No population yet")
    genes = [c for c in population.columns if c != fitness_col]
    dimensions = [_parcoords_dimension(str(c), population[c]) for c in genes]
    fitness = population[fitness_col].to_numpy(dtype=float)
    dimensions.append(dict(label=str(fitness_col), values=fitness))
    fig = go.Figure(
        go.Parcoords(
            dimensions=dimensions,
            line=dict(color=fitness, colorscale="Viridis", showscale=True, colorbar=dict(title=str(fitness_col))),
        )
    )
    return fig


def strategy_band_figure(bands: pd.DataFrame, x: str, *, x_title: str, y_title: str,
                         names: Mapping[str, str] | None = None) -> go.Figure:
    """One mean line per ``strategy`` with its ``low``-``high`` band shaded (where it is defined)."""
    missing = {"strategy", x, "mean", "low", "high", "n"} - set(bands.columns)
    if missing:
        raise ValueError(f"bands needs columns {sorted(missing)}")
    if bands.empty:
        return empty_figure("No finished trainings yet")
    fig = go.Figure()
    for i, (strategy, df) in enumerate(bands.groupby("strategy", sort=False)):
        color, name = PALETTE[i % len(PALETTE)], (names or {}).get(strategy, strategy)
        df = df.sort_values(x)
        banded = df.dropna(subset=["low", "high"])
        if len(banded):
            fig.add_trace(go.Scatter(
                x=np.concatenate([banded[x], banded[x][::-1]]), y=np.concatenate([banded["high"], banded["low"][::-1]]),
                fill="toself", fillcolor=translucent(color, 0.18), line=dict(width=0), hoverinfo="skip",
                name=f"{name} 95% interval", legendgroup=name, showlegend=False))
        fig.add_trace(go.Scatter(
            x=df[x], y=df["mean"], mode="lines", name=name, legendgroup=name, line=dict(color=color, width=2, shape="hv"),
            customdata=df["n"], hovertemplate="%{y:.3f} (mean of %{customdata} searches)<extra>" + name + "</extra>"))
    fig.update_layout(xaxis=dict(title=x_title), yaxis=dict(title=y_title), hovermode="x unified")
    return fig
