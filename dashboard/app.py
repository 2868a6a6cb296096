"""Streamlit entrypoint: ``streamlit run dashboard/app.py``."""
from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts dashboard/ on sys.path, not the project root that holds `core`.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import streamlit as st  # noqa: E402

from dashboard import services  # noqa: E402

st.set_page_config(page_title="Emotion recognition lab", page_icon=":material/mood:", layout="wide")

if "worker_checked" not in st.session_state:
    # Training never runs in this server process: a detached worker does it, and outlives us.
    services.ensure_worker()
    st.session_state.worker_checked = True

# Page scripts live in views/, not pages/: a pages/ folder next to the entrypoint makes
# Streamlit show its automatic page list on direct links instead of this navigation.
pages = [
    st.Page("views/overview.py", title="Overview", icon=":material/home:", default=True),
    st.Page("views/train.py", title="Train", icon=":material/model_training:"),
    st.Page("views/compare.py", title="Compare", icon=":material/compare:"),
    st.Page("views/evolve.py", title="Evolve", icon=":material/genetics:"),
    st.Page("views/predict.py", title="Predict", icon=":material/face:"),
    st.Page("views/optimizers.py", title="Optimizers", icon=":material/school:"),
]
st.navigation(pages).run()
