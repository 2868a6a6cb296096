"""What several figure modules share: the palette, one colour per run, metric labels, the empty figure.

Runs keep one colour across every figure (see ``run_colors``); builders that colour by
run accept an optional ``colors`` mapping so a page can pin colours computed over all
runs in the store rather than over the subset one figure shows (``colors_for``).
"""
from __future__ import annotations

import textwrap
import zlib
from collections.abc import Mapping, Sequence

import plotly.express as px
import plotly.graph_objects as go

from core.configs import ARCHITECTURES
from core.configs.presets import CONFIG_IDS

# Colour-blind-safe qualitative colours: Okabe & Ito's set (without black, and without yellow,
# which vanishes on a light background) followed by Paul Tol's "muted" wine, teal, purple and olive.
# All are mid tones, readable on Streamlit's light and dark themes; no grey, which reads as "disabled".
PALETTE: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
                            "#44AA99", "#AA4499", "#999933", "#882255")
# Each of the ten named configurations (architecture x configuration) owns one palette slot, so it
# keeps its colour on every page and in every subset; the order puts the pairs people compare most
# (scratch-adam against scratch-rmsprop, one architecture against the other) on contrasting hues.
CONFIGURATION_SLOTS: dict[str, int] = {
    f"{arch}/{cid}": a * len(CONFIG_IDS) + c for a, arch in enumerate(ARCHITECTURES) for c, cid in enumerate(CONFIG_IDS)}

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


def configuration_of(label: str) -> str:
    """The configuration part of a run or group label: ``"vgg16/scratch-adam"`` of
    ``"vgg16/scratch-adam · synthetic-small · 1a2b3c"``."""
    return label.split(" · ", 1)[0]


def run_colors(labels: Sequence[str]) -> dict[str, str]:
    """Map run labels to palette colours, deterministically and independent of order.

    A label's preferred slot is its configuration's (``CONFIGURATION_SLOTS``; other
    configurations, e.g. GA variants, a stable CRC32 hash of theirs, not Python's salted
    ``hash``), so a configuration has one colour on every page, grouped or not. Two labels
    of one configuration in one figure (two seeds shown apart) probe to the next free slot,
    visiting labels in sorted order so the result does not depend on the input order.
    Colours repeat only beyond ``len(PALETTE)`` labels.
    """
    unique = sorted(set(labels))
    n = len(PALETTE)
    preferred = {label: CONFIGURATION_SLOTS.get(key, zlib.crc32(key.encode("utf-8"))) % n
                 for label in unique for key in [configuration_of(label)]}
    colors: dict[str, str] = {}
    taken: set[int] = set()
    # First pass: one label per configuration takes its own slot, so a second seed shown apart
    # cannot push another configuration off its colour; the rest probe for free slots after.
    for label in unique:
        if preferred[label] not in taken:
            taken.add(preferred[label])
            colors[label] = PALETTE[preferred[label]]
    for label in unique:
        if label in colors:
            continue
        slot = preferred[label]
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


def short_label(label: str, width: int = 26) -> str:
    """A label that fits beside a point or above a small chart: the configuration alone when the full
    label is longer than ``width``, then cut with an ellipsis. Callers keep the full name for the hover."""
    if len(label) <= width:
        return label
    label = configuration_of(label)
    return label if len(label) <= width else label[:width - 1] + "…"


def wrap_label(label: str, width: int = 30) -> str:
    """``label`` broken into lines of at most ``width`` characters with ``<br>`` (plotly titles do not wrap)."""
    return "<br>".join(textwrap.wrap(label, width, break_on_hyphens=False)) or label


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
