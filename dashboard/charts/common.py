"""What several figure modules share: the palette, one colour per run, metric labels, the empty figure.

Runs keep one colour across every figure (see ``run_colors``); builders that colour by
run accept an optional ``colors`` mapping so a page can pin colours computed over all
runs in the store rather than over the subset one figure shows (``colors_for``).
"""
from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

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


def colors_for(labels: Sequence[str], colors: Mapping[str, str] | None) -> dict[str, str]:
    """``run_colors(labels)``, overridden by ``colors`` (a page's pinned colours) for the labels it knows."""
    # A pinned mapping may not know every run (e.g. a run created since the page
    # computed it); fall back to the deterministic helper for those.
    resolved = run_colors(labels)
    if colors:
        resolved.update({k: v for k, v in colors.items() if k in resolved})
    return resolved


def integer_ticks(first: int, count: int) -> dict:
    """Axis ticks on whole numbers only: plotly's automatic ticks fall on halves, which "d" shows as 1, 2, 2, 3."""
    return dict(tick0=first, dtick=max(1, -(-count // 10)), tickformat="d")


def translucent(color: str, alpha: float) -> str:
    """``color`` (``#rrggbb`` or ``rgb(...)``) as ``rgba(...)`` with opacity ``alpha``, for bands and faint curves."""
    r, g, b = px.colors.hex_to_rgb(color) if color.startswith("#") else px.colors.unlabel_rgb(color)
    return f"rgba({int(r)}, {int(g)}, {int(b)}, {alpha})"


def empty_figure(message: str) -> go.Figure:
    """A blank figure that states why there is nothing to plot."""
    fig = go.Figure()
    fig.add_annotation(
        text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font=dict(size=16)
    )
    fig.update_layout(xaxis=dict(visible=False), yaxis=dict(visible=False), height=300)
    return fig
