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


# ------------------------------------------------------------------ optimizer playground
def _log_loss_levels(z: np.ndarray) -> np.ndarray:
    # Rosenbrock and Beale span several orders of magnitude: linear contours would show
    # only the walls. The offset keeps the minimum finite, and works for negative losses.
    z = np.asarray(z, dtype=float)
    return np.log10(z - np.nanmin(z) + 1e-6 * (np.nanmax(z) - np.nanmin(z) + 1e-12))


def _optimizer_colors(labels: Sequence[str]) -> dict[str, str]:
    # A handful of optimizers, always shown together: distinct palette slots beat stable hashes here.
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def optimizer_paths_figure(
    xs: npt.ArrayLike,
    ys: npt.ArrayLike,
    z: npt.ArrayLike,
    paths: Mapping[str, npt.ArrayLike],
    *,
    minimum: tuple[float, float] | None = None,
    max_frames: int = 100,
    frame_ms: int = 60,
    font_size: int | None = None,
) -> go.Figure:
    """Contour plot of a loss surface with each optimizer's path, animated in sync.

    ``z[i, j]`` is the loss at ``(xs[j], ys[i])``; ``paths`` maps a label to its (steps+1, 2) positions.
    Every frame shows each path up to the same step (at most ``max_frames`` frames, evenly spaced);
    play/pause buttons and a step slider drive the animation.
    """
    if not paths:
        return empty_figure("No optimizer selected")
    palette = _optimizer_colors(list(paths))
    arrays = {k: np.asarray(v, dtype=float) for k, v in paths.items()}
    steps = max(len(a) for a in arrays.values()) - 1
    shown = np.unique(np.linspace(0, steps, min(max_frames, steps + 1)).round().astype(int))
    fig = go.Figure(go.Contour(x=xs, y=ys, z=_log_loss_levels(z), colorscale="Viridis", ncontours=30,
                               showscale=False, hoverinfo="skip", line=dict(width=0.5), opacity=0.8,
                               name="surface"))
    if minimum is not None:
        fig.add_trace(go.Scatter(x=[minimum[0]], y=[minimum[1]], mode="markers", name="minimum",
                                 marker=dict(symbol="star", size=14, color="white", line=dict(color="black", width=1))))
    first = len(fig.data)

    def trail(label: str, step: int) -> go.Scatter:
        a = arrays[label][: step + 1]
        sizes = np.zeros(len(a))
        sizes[-1] = 11  # only the current position gets a marker
        return go.Scatter(x=a[:, 0], y=a[:, 1], mode="lines+markers", name=label, meta=label,
                          line=dict(color=palette[label], width=2.5),
                          marker=dict(size=sizes, color=palette[label], line=dict(color="white", width=1)),
                          hovertemplate="<b>%{meta}</b><br>x %{x:.4f}<br>y %{y:.4f}<extra></extra>")

    for label in arrays:
        fig.add_trace(trail(label, 0))
    indices = list(range(first, first + len(arrays)))
    fig.frames = [go.Frame(name=str(s), traces=indices, data=[trail(label, s) for label in arrays]) for s in shown]
    # redraw=True: without it plotly.js drops the contour trace on the first animated frame.
    play = dict(frame=dict(duration=frame_ms, redraw=True), transition=dict(duration=0), fromcurrent=True,
                mode="immediate")
    pause = dict(frame=dict(duration=0, redraw=True), transition=dict(duration=0), mode="immediate")
    fig.update_layout(
        xaxis=dict(title="x", range=[float(np.min(xs)), float(np.max(xs))]),
        yaxis=dict(title="y", range=[float(np.min(ys)), float(np.max(ys))]),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
        # Under the plot, clear of plotly's toolbar above it.
        updatemenus=[dict(type="buttons", direction="left", x=0, y=-0.12, xanchor="left", yanchor="top",
                          showactive=False,
                          buttons=[dict(label="▶ Play", method="animate", args=[None, play]),
                                   dict(label="❚❚ Pause", method="animate", args=[[None], pause])])],
        sliders=[dict(active=0, x=0.35, len=0.65, y=-0.1, yanchor="top", pad=dict(t=0, b=0),
                      currentvalue=dict(prefix="step ", xanchor="right", font=dict(size=font_size or 14)),
                      steps=[dict(label=str(s), method="animate", args=[[str(s)], pause]) for s in shown])],
        hovermode="closest", margin=dict(b=130 if font_size else 110),
    )
    if font_size:
        fig.update_layout(font=dict(size=font_size))
    return fig


def optimizer_loss_figure(losses: Mapping[str, npt.ArrayLike], *, font_size: int | None = None) -> go.Figure:
    """Loss against step for each optimizer (step 0 is the shared start); log scale when every loss is positive."""
    if not losses:
        return empty_figure("No optimizer selected")
    palette = _optimizer_colors(list(losses))
    fig = go.Figure()
    positive = True
    for label, values in losses.items():
        y = np.asarray(values, dtype=float)
        positive &= bool((y > 0).all())
        fig.add_trace(go.Scatter(x=np.arange(len(y)), y=y, mode="lines", name=label, meta=label,
                                 line=dict(color=palette[label], width=2.5),
                                 hovertemplate="<b>%{meta}</b><br>step %{x}<br>loss %{y:.3g}<extra></extra>"))
    fig.update_layout(xaxis=dict(title="Step"), yaxis=dict(title="Loss", type="log" if positive else "linear"),
                      hovermode="x unified")
    if font_size:
        fig.update_layout(font=dict(size=font_size))
    return fig


def step_size_figure(step_sizes: Mapping[str, npt.ArrayLike], *, font_size: int | None = None) -> go.Figure:
    """Effective per-parameter step size ``|Δθ_i| / |g_i|`` against step, one panel per coordinate.

    ``step_sizes`` maps a label to a (steps, 2) array. Plain SGD draws the same flat line in both
    panels (its learning rate); adaptive optimizers draw different lines per coordinate.
    """
    from plotly.subplots import make_subplots

    if not step_sizes:
        return empty_figure("No optimizer selected")
    palette = _optimizer_colors(list(step_sizes))
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=("parameter x", "parameter y"))
    for label, values in step_sizes.items():
        a = np.asarray(values, dtype=float)
        for col in (0, 1):
            fig.add_trace(go.Scatter(x=np.arange(1, len(a) + 1), y=a[:, col], mode="lines", name=label, meta=label,
                                     legendgroup=label, showlegend=col == 0, line=dict(color=palette[label], width=2),
                                     hovertemplate="<b>%{meta}</b><br>step %{x}<br>|Δθ|/|g| %{y:.3g}<extra></extra>"),
                          row=1, col=col + 1)
    fig.update_xaxes(title_text="Step", nticks=4)
    fig.update_yaxes(type="log", exponentformat="power", title_text="|Δθ| / |gradient|", row=1, col=1)
    fig.update_yaxes(type="log", exponentformat="power", row=1, col=2)
    fig.update_layout(hovermode="closest")
    if font_size:
        fig.update_layout(font=dict(size=font_size))
        fig.update_annotations(font_size=font_size)
    return fig


# ---------------------------------------------------------------- repeated seeds (grouped Compare view)


def _translucent(color: str, alpha: float) -> str:
    r, g, b = px.colors.hex_to_rgb(color) if color.startswith("#") else px.colors.unlabel_rgb(color)
    return f"rgba({int(r)}, {int(g)}, {int(b)}, {alpha})"


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
    palette = _colors_for(list(bands), colors)
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
                                         line=dict(color=_translucent(color, 0.25), width=1, dash=dash),
                                         legendgroup=name, hoverinfo="skip", meta=f"{name} seed"))
            raw = entry.get(f"{split}_raw")
            if raw is not None and len(raw) and not np.allclose(raw["mean"], band["mean"], equal_nan=True):
                fig.add_trace(go.Scatter(x=raw["x"], y=raw["mean"], mode="lines", showlegend=False, legendgroup=name,
                                         line=dict(color=_translucent(color, 0.4), width=1, dash=dash),
                                         hoverinfo="skip", meta=f"{name} raw"))
            has_band = np.isfinite(band["low"].to_numpy(float)).any()
            if has_band:
                fig.add_trace(go.Scatter(x=x, y=band["high"], mode="lines", line=dict(width=0), showlegend=False,
                                         legendgroup=name, hoverinfo="skip", meta=f"{name} band"))
                fig.add_trace(go.Scatter(x=x, y=band["low"], mode="lines", line=dict(width=0), fill="tonexty",
                                         fillcolor=_translucent(color, 0.18), showlegend=False, legendgroup=name,
                                         hoverinfo="skip", meta=f"{name} band"))
            fig.add_trace(go.Scatter(
                x=x, y=band["mean"], name=label, mode="lines+markers", line=dict(color=color, dash=dash, width=2.5),
                marker=dict(size=5), legendgroup=name, legendgrouptitle_text=name if first else None, meta=name,
                customdata=np.stack([band["low"], band["high"], band["n"]], axis=-1),
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
    palette = _colors_for(names, colors)
    fig = go.Figure()
    for name in names:
        g = per_seed[per_seed.configuration == name]
        row = aggregate[aggregate.configuration == name].iloc[0]
        mean = float(row[metric])
        fig.add_trace(go.Scatter(
            x=[mean], y=[name], mode="markers", name=f"{name} mean", showlegend=False, meta=name,
            marker=dict(symbol="line-ns", size=22, line=dict(width=3, color=palette[name])),
            error_x=dict(type="data", symmetric=False, array=[float(row[f"{metric} CI high"]) - mean],
                         arrayminus=[mean - float(row[f"{metric} CI low"])], color=palette[name], thickness=2),
            hovertemplate=f"<b>%{{meta}}</b><br>mean {metric} %{{x:.4f}}<extra></extra>"))
        fig.add_trace(go.Scatter(
            x=g[metric].to_numpy(float), y=[name] * len(g), mode="markers", name=f"{name} seeds", showlegend=False,
            meta=name, customdata=g["seed"].to_numpy(), marker=dict(size=10, color=palette[name], opacity=0.7,
                                                                    line=dict(width=1, color="white")),
            hovertemplate=f"<b>%{{meta}}</b><br>seed %{{customdata}}: {metric} %{{x:.4f}}<extra></extra>"))
    fig.update_layout(xaxis=dict(title=f"{metric} (dots: seeds; bar: mean with 95% CI)"),
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
    palette = _colors_for(list(per_class), colors)
    fig = go.Figure()
    for name, v in per_class.items():
        mean, low, high = (np.asarray(v[k], float) for k in ("mean", "low", "high"))
        fig.add_trace(go.Bar(
            x=list(v["class_names"]), y=mean, name=name, marker_color=palette[name], meta=name,
            error_y=dict(type="data", symmetric=False, array=np.nan_to_num(high - mean),
                         arrayminus=np.nan_to_num(mean - low)),
            hovertemplate="<b>%{meta}</b><br>%{x}<br>mean F1 %{y:.3f}<extra></extra>"))
    fig.update_layout(barmode="group", xaxis=dict(title="Class", type="category"),
                      yaxis=dict(title="F1 (mean across seeds)", range=[0, 1.05]))
    return fig


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
                fill="toself", fillcolor=_translucent(color, 0.18), line=dict(width=0), hoverinfo="skip",
                name=f"{name} 95% interval", legendgroup=name, showlegend=False))
        fig.add_trace(go.Scatter(
            x=df[x], y=df["mean"], mode="lines", name=name, legendgroup=name, line=dict(color=color, width=2, shape="hv"),
            customdata=df["n"], hovertemplate="%{y:.3f} (mean of %{customdata} searches)<extra>" + name + "</extra>"))
    fig.update_layout(xaxis=dict(title=x_title), yaxis=dict(title=y_title), hovermode="x unified")
    return fig
