"""Figures of a dataset: images per class and split."""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from dashboard.charts.common import empty_figure, run_colors

# Preferred order of splits in the dataset chart; unknown split names follow in the
# order they appear.
_SPLIT_ORDER = ("train", "training", "val", "validation", "test")


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
