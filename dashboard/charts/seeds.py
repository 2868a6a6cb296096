"""Figures of runs repeated over seeds (Compare's grouped view): mean curves with their band across
seeds, each seed's result beside the mean, per-class F1 with its interval."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.charts.common import colors_for, empty_figure, metric_label, translucent

# The range each plotted metric can take: a t-interval across few seeds can reach past it, the metric cannot.
RANGES = {"accuracy": (0.0, 1.0), "loss": (0.0, np.inf)}


def clip(values, metric: str) -> np.ndarray:
    """``values`` clipped to ``metric``'s range (``RANGES``; fractions in [0, 1] when not listed)."""
    return np.clip(np.asarray(values, dtype=float), *RANGES.get(metric, (0.0, 1.0)))


def band_figure(
    bands: Mapping[str, Mapping[str, pd.DataFrame | Sequence[pd.DataFrame]]],
    metric: str = "accuracy",
    colors: Mapping[str, str] | None = None,
    x_title: str = "Epoch",
) -> go.Figure:
    """Mean curve per configuration with its 95% band across seeds, each seed's curve faint behind it.

    ``bands[name]`` holds ``train``/``val`` (columns x, mean, low, high, n: the smoothed mean),
    ``train_raw``/``val_raw`` (the unsmoothed mean, drawn faded) and ``train_seeds``/``val_seeds``
    (one frame per seed). Solid lines are training, dashed validation, as in ``curves_figure``.
    """
    palette = colors_for(list(bands), colors)
    fig = go.Figure()
    for name, entry in bands.items():
        color, first = palette[name], True
        for split, label, dash in (("train", "train", "solid"), ("val", "validation", "dash")):
            band = entry.get(split)
            if band is None or not len(band) or not np.isfinite(band["mean"].to_numpy(float)).any():
                continue
            x = band["x"].to_numpy(float)
            for seed_curve in entry.get(f"{split}_seeds", ()):
                fig.add_trace(go.Scatter(x=seed_curve["x"], y=seed_curve["mean"], mode="lines", showlegend=False,
                                         line=dict(color=translucent(color, 0.25), width=1, dash=dash),
                                         legendgroup=name, hoverinfo="skip", meta=f"{name} seed"))
            raw = entry.get(f"{split}_raw")
            if raw is not None and len(raw) and not np.allclose(raw["mean"], band["mean"], equal_nan=True):
                fig.add_trace(go.Scatter(x=raw["x"], y=raw["mean"], mode="lines", showlegend=False, legendgroup=name,
                                         line=dict(color=translucent(color, 0.4), width=1, dash=dash),
                                         hoverinfo="skip", meta=f"{name} raw"))
            has_band = np.isfinite(band["low"].to_numpy(float)).any()
            low, high = clip(band["low"], metric), clip(band["high"], metric)
            if has_band:
                fig.add_trace(go.Scatter(x=x, y=high, mode="lines", line=dict(width=0), showlegend=False,
                                         legendgroup=name, hoverinfo="skip", meta=f"{name} band"))
                fig.add_trace(go.Scatter(x=x, y=low, mode="lines", line=dict(width=0), fill="tonexty",
                                         fillcolor=translucent(color, 0.18), showlegend=False, legendgroup=name,
                                         hoverinfo="skip", meta=f"{name} band"))
            fig.add_trace(go.Scatter(
                x=x, y=band["mean"], name=label, mode="lines+markers", line=dict(color=color, dash=dash, width=2.5),
                marker=dict(size=5), legendgroup=name, legendgrouptitle_text=name if first else None, meta=name,
                customdata=np.stack([low, high, band["n"]], axis=-1),
                hovertemplate=(f"<b>%{{meta}}</b> · {label}<br>{x_title} %{{x:.4g}}<br>mean {metric_label(metric)} "
                               "%{y:.4f}<br>95% band %{customdata[0]:.4f} – %{customdata[1]:.4f} "
                               "(%{customdata[2]} seeds)<extra></extra>")))
            first = False
    if not fig.data:
        return empty_figure("No epochs logged yet")
    fig.update_layout(xaxis=dict(title=x_title), yaxis=dict(title=metric_label(metric)),
                      legend=dict(groupclick="togglegroup"), hovermode="closest")
    return fig


def seed_strip_figure(
    per_seed: pd.DataFrame,
    aggregate: pd.DataFrame,
    metric: str,
    colors: Mapping[str, str] | None = None,
) -> go.Figure:
    """Per configuration: each seed's ``metric`` as a dot and the mean with its 95% CI as a bar.

    ``per_seed`` has columns configuration, seed, ``metric``; ``aggregate`` has configuration,
    ``metric``, ``{metric} CI low`` and ``{metric} CI high``.
    """
    if per_seed.empty:
        return empty_figure("No finished runs")
    names = aggregate["configuration"].astype(str).tolist()
    palette = colors_for(names, colors)
    fig = go.Figure()
    for name in names:
        g = per_seed[per_seed.configuration == name]
        row = aggregate[aggregate.configuration == name].iloc[0]
        mean = float(row[metric])
        fig.add_trace(go.Scatter(
            x=[mean], y=[name], mode="markers", name=f"{name} mean", showlegend=False, meta=name,
            marker=dict(symbol="line-ns", size=22, line=dict(width=3, color=palette[name])),
            error_x=dict(type="data", symmetric=False, color=palette[name], thickness=2,
                         array=np.nan_to_num(clip([row[f"{metric} CI high"]], metric) - mean),
                         arrayminus=np.nan_to_num(mean - clip([row[f"{metric} CI low"]], metric))),
            hovertemplate=f"<b>%{{meta}}</b><br>mean {metric} %{{x:.1%}}<extra></extra>"))
        fig.add_trace(go.Scatter(
            x=g[metric].to_numpy(float), y=[name] * len(g), mode="markers", name=f"{name} seeds", showlegend=False,
            meta=name, customdata=g["seed"].to_numpy(), marker=dict(size=10, color=palette[name], opacity=0.7,
                                                                    line=dict(width=1, color="white")),
            hovertemplate=f"<b>%{{meta}}</b><br>seed %{{customdata}}: {metric} %{{x:.1%}}<extra></extra>"))
    # In %, like the table above it (every metric here is a fraction of test or validation images).
    fig.update_layout(xaxis=dict(title=f"{metric} (dots: seeds; bar: mean with 95% CI)", tickformat=".0%"),
                      yaxis=dict(type="category", autorange="reversed"), height=max(250, 60 * len(names) + 120))
    return fig


def per_class_band_figure(
    per_class: Mapping[str, Mapping],
    colors: Mapping[str, str] | None = None,
) -> go.Figure:
    """Grouped bars of per-class F1, mean across seeds with 95% CI error bars: x = class, bars = configurations.

    ``per_class[name]`` has ``class_names`` and arrays ``mean``, ``low``, ``high``.
    """
    if not per_class:
        return empty_figure("No test reports yet")
    palette = colors_for(list(per_class), colors)
    fig = go.Figure()
    for name, v in per_class.items():
        mean, low, high = (np.asarray(v[k], float) for k in ("mean", "low", "high"))
        fig.add_trace(go.Bar(
            x=list(v["class_names"]), y=mean, name=name, marker_color=palette[name], meta=name,
            error_y=dict(type="data", symmetric=False, array=np.nan_to_num(clip(high, "f1") - mean),
                         arrayminus=np.nan_to_num(mean - clip(low, "f1"))),
            hovertemplate="<b>%{meta}</b><br>%{x}<br>mean F1 %{y:.3f}<extra></extra>"))
    fig.update_layout(barmode="group", xaxis=dict(title="Class", type="category"),
                      yaxis=dict(title="F1 (mean across seeds)", range=[0, 1.05]))
    return fig
