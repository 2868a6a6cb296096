"""Figures of the optimizer playground: paths over a loss surface, loss per step, effective step sizes."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import plotly.graph_objects as go

from dashboard.charts.common import PALETTE, empty_figure


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
        # "x" sits at the axis' right end, as in a maths figure: under the axis, where titles go, it met
        # the Play row whenever the legend wrapped and shrank the plot (presentation mode at 1000 px).
        xaxis=dict(range=[float(np.min(xs)), float(np.max(xs))]),
        yaxis=dict(title="y", range=[float(np.min(ys)), float(np.max(ys))]),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
        # Under the plot, clear of plotly's toolbar above it.
        # Play/Pause and the slider sit below the x-axis title (y in plot fractions, clear of it at every
        # width and in presentation mode's larger font), with room under the slider for its step labels.
        updatemenus=[dict(type="buttons", direction="left", x=0, y=-0.2 if font_size else -0.15, xanchor="left",
                          yanchor="top",
                          showactive=False,
                          buttons=[dict(label="▶ Play", method="animate", args=[None, play]),
                                   dict(label="❚❚ Pause", method="animate", args=[[None], pause])])],
        sliders=[dict(active=0, x=0.35, len=0.65, y=-0.18 if font_size else -0.13, yanchor="top", pad=dict(t=0, b=0),
                      currentvalue=dict(prefix="step ", xanchor="right", font=dict(size=font_size or 14)),
                      steps=[dict(label=str(s), method="animate", args=[[str(s)], pause]) for s in shown])],
        hovermode="closest", margin=dict(b=200 if font_size else 150, r=40),
        annotations=[dict(text="x", x=1, y=0, xref="paper", yref="paper", xanchor="left", yanchor="middle",
                          xshift=10, showarrow=False, font=dict(size=(font_size or 14) + 2))],
    )
    if font_size:
        fig.update_layout(font=dict(size=font_size))
    return fig


DIVERGED_FACTOR = 1e3  # loss growth past the worst start that counts as divergence on the loss chart


def optimizer_loss_figure(losses: Mapping[str, npt.ArrayLike], *, font_size: int | None = None) -> go.Figure:
    """Loss against step for each optimizer (step 0 is the shared start); log scale when every loss is positive.
    A diverged curve stops at a cut-off (``DIVERGED_FACTOR`` x the largest start) with a cross there."""
    if not losses:
        return empty_figure("No optimizer selected")
    palette = _optimizer_colors(list(losses))
    fig = go.Figure()
    series = {label: np.asarray(values, dtype=float) for label, values in losses.items()}
    starts = [y[0] for y in series.values() if len(y) and np.isfinite(y[0])]
    # A diverging path reaches 1e68 or overflows; drawn as it is, it flattens every other curve. Each curve
    # stops where it passes DIVERGED_FACTOR x the largest starting loss, marked with a cross at the cut-off.
    cutoff = DIVERGED_FACTOR * max(starts) if starts and max(starts) > 0 else np.inf
    positive = True
    for label, y in series.items():
        over = np.flatnonzero(~np.isfinite(y) | (y > cutoff))
        shown = y[:over[0]] if len(over) else y
        positive &= bool((shown > 0).all())
        fig.add_trace(go.Scatter(x=np.arange(len(shown)), y=shown, mode="lines", name=label, meta=label,
                                 line=dict(color=palette[label], width=2.5),
                                 hovertemplate="<b>%{meta}</b><br>step %{x}<br>loss %{y:.3g}<extra></extra>"))
        if len(over):
            fig.add_trace(go.Scatter(x=[int(over[0])], y=[cutoff], mode="markers", name=f"{label} diverged",
                                     meta=label, marker=dict(symbol="x", size=12, color=palette[label]),
                                     hovertemplate=f"<b>%{{meta}}</b> diverged at step %{{x}} (loss above "
                                                   f"{cutoff:.3g})<extra></extra>"))
    # No legend: the paths figure beside it names the same colours, and a legend here left the plot
    # a sliver in the side column at 1000 px.
    fig.update_layout(xaxis=dict(title="Step"), yaxis=dict(title="Loss", type="log" if positive else "linear"),
                      hovermode="x unified", showlegend=False)
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
    # Stacked, without a legend (the loss chart beside it names the same colours): side by side in the
    # narrow side column the two panels' titles ran together.
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.16,
                        subplot_titles=("parameter x", "parameter y"))
    for label, values in step_sizes.items():
        a = np.asarray(values, dtype=float)
        for col in (0, 1):
            fig.add_trace(go.Scatter(x=np.arange(1, len(a) + 1), y=a[:, col], mode="lines", name=label, meta=label,
                                     legendgroup=label, showlegend=False, line=dict(color=palette[label], width=2),
                                     hovertemplate="<b>%{meta}</b><br>step %{x}<br>|Δθ|/|g| %{y:.3g}<extra></extra>"),
                          row=col + 1, col=1)
    fig.update_xaxes(title_text="Step", row=2, col=1)
    # Decades only: presentation mode's larger font made the 2 and 5 minor labels run into the powers of ten.
    fig.update_yaxes(type="log", exponentformat="power", dtick=1, title_text="|Δθ| / |g|")
    fig.update_layout(hovermode="closest")
    if font_size:
        fig.update_layout(font=dict(size=font_size))
        fig.update_annotations(font_size=font_size)
    return fig
