"""Plotly figure builders for the dashboard.

Every function here is a pure function of data: no Streamlit, no TensorFlow, no file
access. Pages fetch data through ``dashboard.services`` and hand it to these builders,
which keeps the figures unit-testable and reusable in the offline HTML report.

Runs keep one colour across every figure (see ``run_colors``); builders that colour by
run accept an optional ``colors`` mapping so a page can pin colours computed over all
runs in the store rather than over the subset one figure shows.
"""
from __future__ import annotations

import html
import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

# Mid-tone colours only: they must stay readable on Streamlit's light and dark themes,
# which rules out Dark24's near-blacks and Light24's pastels. Bold's grey is dropped
# because grey reads as "disabled".
PALETTE: tuple[str, ...] = tuple(px.colors.qualitative.Plotly) + tuple(px.colors.qualitative.Bold[:10])

_METRIC_LABELS = {
    "accuracy": "Accuracy",
    "loss": "Loss",
    "learning_rate": "Learning rate",
    "epoch_time": "Epoch time (s)",
    "images_per_sec": "Images / s",
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1",
    "macro_f1": "Macro F1",
}

# Preferred order of splits in the dataset chart; unknown split names follow in the
# order they appear.
_SPLIT_ORDER = ("train", "training", "val", "validation", "test")


def metric_label(metric: str) -> str:
    """Human-readable axis label for a metric/column name."""
    return _METRIC_LABELS.get(metric, metric.replace("_", " ").capitalize())


def run_colors(labels: Sequence[str]) -> dict[str, str]:
    """Map run labels to palette colours, deterministically and independent of order.

    Each label's preferred slot comes from a stable hash (CRC32, not Python's salted
    ``hash``), so a run keeps its colour when other runs are added to or removed from a
    figure. Collisions probe to the next free slot, visiting labels in sorted order so
    the result does not depend on the input order. Colours repeat only beyond
    ``len(PALETTE)`` labels.
    """
    unique = sorted(set(labels))
    n = len(PALETTE)
    taken: set[int] = set()
    colors: dict[str, str] = {}
    for label in unique:
        slot = zlib.crc32(label.encode("utf-8")) % n
        if len(taken) < n:
            while slot in taken:
                slot = (slot + 1) % n
            taken.add(slot)
        colors[label] = PALETTE[slot]
    return colors


def _colors_for(labels: Sequence[str], colors: Mapping[str, str] | None) -> dict[str, str]:
    # A pinned mapping may not know every run (e.g. a run created since the page
    # computed it); fall back to the deterministic helper for those.
    resolved = run_colors(labels)
    if colors:
        resolved.update({k: v for k, v in colors.items() if k in resolved})
    return resolved


def _integer_ticks(first: int, count: int) -> dict:
    """Axis ticks on whole numbers only: plotly's automatic ticks fall on halves, which "d" shows as 1, 2, 2, 3."""
    return dict(tick0=first, dtick=max(1, -(-count // 10)), tickformat="d")


def empty_figure(message: str) -> go.Figure:
    """A blank figure that states why there is nothing to plot."""
    fig = go.Figure()
    fig.add_annotation(
        text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font=dict(size=16)
    )
    fig.update_layout(xaxis=dict(visible=False), yaxis=dict(visible=False), height=300)
    return fig


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
    palette = _colors_for(list(histories), colors)
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
        xaxis=dict(title="Epoch", **_integer_ticks(1, n_epochs)),
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
    fig.update_layout(
        title=title or None,
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
    palette = _colors_for(list(by_run), colors)
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


def _ordered_splits(splits: Sequence[str]) -> list[str]:
    known = [s for s in _SPLIT_ORDER if s in splits]
    return known + [s for s in dict.fromkeys(splits) if s not in known]


def dataset_counts_figure(counts: pd.DataFrame) -> go.Figure:
    """Bars of images per class, one colour per split, to show class imbalance."""
    missing = {"split", "class_name", "count"} - set(counts.columns)
    if missing:
        raise ValueError(f"counts needs columns split, class_name, count. Missing: {sorted(missing)}")
    if counts.empty:
        return empty_figure("No dataset counts")
    classes = list(dict.fromkeys(counts["class_name"].astype(str)))
    totals = counts.assign(class_name=counts["class_name"].astype(str), split=counts["split"].astype(str))
    totals = totals.groupby(["split", "class_name"], sort=False)["count"].sum()
    splits = _ordered_splits(list(totals.index.get_level_values("split")))
    palette = run_colors(splits)
    fig = go.Figure()
    for split in splits:
        y = totals.loc[split].reindex(classes, fill_value=0)
        fig.add_trace(
            go.Bar(
                x=classes,
                y=y.to_numpy(),
                name=split,
                marker_color=palette[split],
                text=y.to_numpy(),
                textposition="outside",
                meta=split,
                hovertemplate="%{meta}<br>%{x}: %{y} images<extra></extra>",
            )
        )
    fig.update_layout(
        barmode="group",
        xaxis=dict(title="Class", type="category"),
        yaxis=dict(title="Images"),
        legend=dict(title="Split"),
    )
    return fig


def probability_figure(
    probs: Mapping[str, Sequence[float]],
    class_names: Sequence[str],
    colors: Mapping[str, str] | None = None,
) -> go.Figure:
    """Horizontal grouped bars of one face's class probabilities, one colour per model."""
    names = [str(c) for c in class_names]
    if not probs or not names:
        return empty_figure("No predictions")
    palette = _colors_for(list(probs), colors)
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
        xaxis=dict(title="Generation", **_integer_ticks(int(x.min()), len(x))),
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


def metric_bars_figure(
    table: pd.DataFrame,
    value: str,
    low: str | None = None,
    high: str | None = None,
    label: str = "label",
    higher_is_better: bool = True,
    colors: Mapping[str, str] | None = None,
) -> go.Figure:
    """Horizontal bars of one metric per run, best at the top.

    ``low``/``high`` name the columns of a confidence interval (e.g. a bootstrap 95%
    CI); they become asymmetric error bars. Pass ``higher_is_better=False`` for
    metrics such as loss.
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
    palette = _colors_for(labels, colors)
    error_x = None
    if low is not None and high is not None:
        error_x = dict(
            type="data",
            symmetric=False,
            array=df[high].to_numpy(dtype=float) - values,
            arrayminus=values - df[low].to_numpy(dtype=float),
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


_REPORT_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #222; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3rem; }
h2 { margin-top: 2.5rem; }
table.report-table { border-collapse: collapse; font-size: .9rem; }
table.report-table th, table.report-table td { border: 1px solid #ddd; padding: .3rem .6rem;
       text-align: right; }
table.report-table th { background: #f5f5f5; }
"""


def report_html(
    title: str,
    sections: Sequence[tuple[str, go.Figure | pd.DataFrame | str]],
) -> str:
    """A self-contained HTML report: headings plus figures, tables and text.

    plotly.js is embedded inline once, with the first figure, so the file opens offline
    (no CDN) without carrying several copies of the ~5 MB library. Text and headings
    are HTML-escaped; tables go through pandas' escaping ``to_html``.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_REPORT_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    plotlyjs_embedded = False
    for heading, content in sections:
        parts.append(f"<section><h2>{html.escape(heading)}</h2>")
        if isinstance(content, go.Figure):
            parts.append(
                content.to_html(
                    full_html=False,
                    include_plotlyjs=not plotlyjs_embedded,
                    # A "100%" height (the default) collapses inside an auto-height
                    # section; figures that set their own height keep it.
                    default_height=500,
                    config={"displaylogo": False},
                )
            )
            plotlyjs_embedded = True
        elif isinstance(content, pd.DataFrame):
            # A RangeIndex carries no information; a named index (e.g. run label) does.
            show_index = not isinstance(content.index, pd.RangeIndex)
            parts.append(content.to_html(index=show_index, border=0, classes="report-table", escape=True))
        elif isinstance(content, str):
            for paragraph in content.split("\n\n"):
                if paragraph.strip():
                    parts.append(f"<p>{html.escape(paragraph).replace(chr(10), '<br>')}</p>")
        else:
            raise TypeError(
                "section content must be a plotly Figure, a pandas DataFrame or a str. "
                f"Received: {type(content).__name__} in section {heading!r}"
            )
        parts.append("</section>")
    parts.extend(["</body>", "</html>"])
    return "\n".join(parts)


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


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {alpha})"


def band_figure(bands: pd.DataFrame, x: str, *, x_title: str, y_title: str,
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
                fill="toself", fillcolor=_rgba(color, 0.18), line=dict(width=0), hoverinfo="skip",
                name=f"{name} 95% interval", legendgroup=name, showlegend=False))
        fig.add_trace(go.Scatter(
            x=df[x], y=df["mean"], mode="lines", name=name, legendgroup=name, line=dict(color=color, width=2, shape="hv"),
            customdata=df["n"], hovertemplate="%{y:.3f} (mean of %{customdata} searches)<extra>" + name + "</extra>"))
    fig.update_layout(xaxis=dict(title=x_title), yaxis=dict(title=y_title), hovermode="x unified")
    return fig
