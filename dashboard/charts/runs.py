"""Figures of runs: training curves, the confusion matrix, per-class metrics and one metric per run."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
import plotly.graph_objects as go

from dashboard.charts.common import colors_for, empty_figure, integer_ticks, metric_label, wrap_label


def _finite_any(series: pd.Series) -> bool:
    return bool(pd.to_numeric(series, errors="coerce").notna().any())


def curves_figure(
    histories: Mapping[str, pd.DataFrame],
    metric: str = "accuracy",
    colors: Mapping[str, str] | None = None,
) -> go.Figure:
    """Overlay per-epoch curves of ``metric`` for several runs.

    Colour identifies the run; solid lines are training, dashed lines validation
    (``val_<metric>``). Runs with no logged values for the metric are skipped, so a
    just-started run does not break the chart.
    """
    val_metric = f"val_{metric}"
    palette = colors_for(list(histories), colors)
    fig = go.Figure()
    for run, df in histories.items():
        if df is None or len(df) == 0:
            continue
        df = df.sort_values("epoch") if "epoch" in df.columns else df
        epochs = df["epoch"].to_numpy() if "epoch" in df.columns else np.arange(1, len(df) + 1)
        first = True
        for column, split, dash in ((metric, "train", "solid"), (val_metric, "validation", "dash")):
            if column not in df.columns or not _finite_any(df[column]):
                continue
            fig.add_trace(
                go.Scatter(
                    x=epochs,
                    y=pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float),
                    name=split,
                    mode="lines+markers",
                    line=dict(color=palette[run], dash=dash),
                    marker=dict(size=5),
                    legendgroup=run,
                    # The group title labels the run once; entries inside say train/val.
                    legendgrouptitle_text=run if first else None,
                    # The run label travels in meta rather than inside the template, so a
                    # label containing '%{' cannot corrupt the hover text.
                    meta=run,
                    hovertemplate=(
                        f"<b>%{{meta}}</b> · {split}<br>epoch %{{x}}<br>"
                        f"{metric_label(metric)} %{{y:.4f}}<extra></extra>"
                    ),
                )
            )
            first = False
    if not fig.data:
        return empty_figure("No epochs logged yet")
    n_epochs = max((len(df) for df in histories.values() if df is not None), default=1)
    fig.update_layout(
        xaxis=dict(title="Epoch", **integer_ticks(1, n_epochs)),
        yaxis=dict(title=metric_label(metric)),
        legend=dict(groupclick="togglegroup"),
        hovermode="closest",
    )
    return fig


def _normalize_rows(cm: np.ndarray) -> np.ndarray:
    # Rows with zero support (a class absent from the test split) become zeros, not
    # NaN: NaN would render as a blank cell and break the colour scale.
    sums = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, sums, out=np.zeros_like(cm, dtype=float), where=sums > 0)


def confusion_figure(
    cm: npt.ArrayLike,
    class_names: Sequence[str],
    normalize: bool = False,
    title: str = "",
) -> go.Figure:
    """Confusion-matrix heatmap: true class on y (top to bottom), predicted on x.

    With ``normalize`` each row is divided by its support, so cells read as recall
    fractions; the raw count is kept in the hover text either way.
    """
    counts = np.asarray(cm, dtype=float)
    names = [str(c) for c in class_names]
    if counts.size == 0 or not names:
        return empty_figure("No confusion matrix yet")
    if counts.shape != (len(names), len(names)):
        raise ValueError(
            f"confusion matrix must be square and match class_names ({len(names)} classes). "
            f"Received: cm.shape={counts.shape}"
        )
    z = _normalize_rows(counts) if normalize else counts
    if normalize:
        text = [[f"{v:.2f}" for v in row] for row in z]
    else:
        text = [[f"{v:.0f}" if float(v).is_integer() else f"{v:g}" for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=names,
            y=names,
            text=text,
            texttemplate="%{text}",
            customdata=counts,
            colorscale="Blues",
            zmin=0,
            zmax=1 if normalize else max(float(counts.max()), 1.0),
            colorbar=dict(title="Fraction" if normalize else "Count"),
            hovertemplate=(
                "True %{y}<br>Predicted %{x}<br>Count %{customdata:.0f}"
                + ("<br>Row fraction %{z:.2f}" if normalize else "")
                + "<extra></extra>"
            ),
        )
    )
    # Three matrices share a row, about 300 px each at 1000 px: a long run name wraps rather than
    # running past the figure's edge (the full name stays in the title's text, just broken).
    title = wrap_label(title, 34) if title else ""
    fig.update_layout(
        title=dict(text=title, font=dict(size=13)) if title else None,
        margin=dict(t=30 + 18 * (title.count("<br>") + 1)) if title else None,
        xaxis=dict(title="Predicted", type="category", side="bottom"),
        # Reversed so the first class sits at the top, as in a printed matrix.
        yaxis=dict(title="True", type="category", autorange="reversed"),
    )
    return fig


def _class_values(report: Mapping, metric: str) -> dict[str, float]:
    per_class = report.get("per_class") or {}
    values = per_class.get(metric) or []
    return {str(c): float(v) for c, v in zip(report.get("class_names") or [], values)}


def per_class_figure(
    reports: Mapping[str, dict],
    metric: str = "f1",
    colors: Mapping[str, str] | None = None,
) -> go.Figure:
    """Grouped bars of a per-class metric (precision/recall/f1): x = class, bars = runs."""
    if metric not in ("precision", "recall", "f1"):
        raise ValueError(f"metric must be one of 'precision', 'recall', 'f1'. Received: metric={metric!r}")
    by_run = {run: _class_values(r, metric) for run, r in reports.items() if r}
    by_run = {run: v for run, v in by_run.items() if v}
    if not by_run:
        return empty_figure("No test reports yet")
    # Union of class names in first-seen order: runs on different datasets may differ,
    # and a class a run never saw shows as a missing bar rather than a misaligned one.
    classes: list[str] = []
    for values in by_run.values():
        classes.extend(c for c in values if c not in classes)
    palette = colors_for(list(by_run), colors)
    fig = go.Figure()
    for run, values in by_run.items():
        fig.add_trace(
            go.Bar(
                x=classes,
                y=[values.get(c, np.nan) for c in classes],
                name=run,
                marker_color=palette[run],
                meta=run,
                hovertemplate=f"<b>%{{meta}}</b><br>%{{x}}<br>{metric_label(metric)} %{{y:.3f}}<extra></extra>",
            )
        )
    fig.update_layout(
        barmode="group",
        xaxis=dict(title="Class", type="category"),
        yaxis=dict(title=metric_label(metric), range=[0, 1]),
    )
    return fig


def metric_bars_figure(
    table: pd.DataFrame,
    value: str,
    low: str | None = None,
    high: str | None = None,
    label: str = "label",
    higher_is_better: bool = True,
    colors: Mapping[str, str] | None = None,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> go.Figure:
    """Horizontal bars of one metric per run, best at the top.

    ``low``/``high`` name the columns of a confidence interval (e.g. a bootstrap 95%
    CI); they become asymmetric error bars. Pass ``higher_is_better=False`` for
    metrics such as loss, and ``bounds=(0, np.inf)`` for a metric that is not a fraction.
    """
    if (low is None) != (high is None):
        raise ValueError(f"give both low and high, or neither. Received: low={low!r}, high={high!r}")
    needed = [c for c in (label, value, low, high) if c is not None]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ValueError(f"table is missing columns {missing}. Received: columns={list(table.columns)}")
    if table.empty:
        return empty_figure("No runs to compare")
    df = table.sort_values(value, ascending=not higher_is_better, na_position="last", kind="stable")
    labels = df[label].astype(str).tolist()
    values = df[value].to_numpy(dtype=float)
    palette = colors_for(labels, colors)
    error_x = None
    if low is not None and high is not None:
        error_x = dict(
            type="data",
            symmetric=False,
            # An interval never reaches past the metric's range (a fraction's bootstrap cannot, a t-interval can).
            array=np.clip(df[high].to_numpy(dtype=float), *bounds) - values,
            arrayminus=values - np.clip(df[low].to_numpy(dtype=float), *bounds),
        )
    fig = go.Figure(
        go.Bar(
            x=values,
            y=labels,
            orientation="h",
            marker_color=[palette[lbl] for lbl in labels],
            error_x=error_x,
            texttemplate="%{x:.3f}",
            textposition="inside",
            insidetextanchor="start",
            hovertemplate="<b>%{y}</b><br>" + metric_label(value) + " %{x:.4f}<extra></extra>",
        )
    )
    fig.update_layout(
        xaxis=dict(title=metric_label(value)),
        # Data is sorted best first; reversing the axis puts the first row at the top.
        yaxis=dict(type="category", autorange="reversed"),
        showlegend=False,
        height=max(250, 40 * len(labels) + 120),
    )
    return fig
