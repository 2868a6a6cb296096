"""What several Evolve sections share: value formatting, gene tables and the jump to Compare."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import services


def fmt(value) -> str:
    """A gene value as tables, pickers and captions show it: floats in short form (``3e-05``, ``0.35``)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def gene_table(frame: pd.DataFrame, genes: list[str]) -> pd.DataFrame:
    """Gene columns as ordered categories (search-space order), for tables and parallel coordinates."""
    out = frame.copy()
    space = services.gene_choices()
    for g in genes:
        out[g] = pd.Categorical(out[g].map(fmt), categories=[fmt(c) for c in space[g]], ordered=True)
    return out


def open_in_compare(run_ids: list[str]) -> None:
    """Select these runs on the Compare page and go there."""
    st.session_state.update({"compare_group": "All runs", "compare_dataset": [], "compare_arch": [],
                             "compare_variant": [], "compare_runs": run_ids})
    st.switch_page("views/compare.py")
