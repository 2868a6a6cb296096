"""Streamlit entrypoint: ``streamlit run dashboard/app.py``."""
from __future__ import annotations

import streamlit as st

from dashboard import services, ui

st.set_page_config(page_title="Emotion recognition lab", page_icon=":material/mood:", layout="wide")


def sign_in_configured() -> bool:
    """True when .streamlit/secrets.toml has an ``[auth]`` (OIDC) section: the lab is then shared."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:  # no secrets file at all: a local lab
        return False


if sign_in_configured():
    # Checked before anything else runs, so a visitor who is not signed in can neither queue work
    # nor start a worker. st.user has no attributes until a provider is configured, hence .get.
    if not st.user.get("is_logged_in"):
        st.title("Emotion recognition lab")
        st.write("This lab is shared with a team: sign in to train, compare and predict.")
        st.button("Sign in", key="sign_in", type="primary", on_click=st.login, icon=":material/login:")
        st.stop()
    who = st.user.get("name") or st.user.get("email") or "signed in"
    st.sidebar.caption(f"Signed in as **{ui.md(who)}**")
    st.sidebar.button("Sign out", key="sign_out", on_click=st.logout, icon=":material/logout:")

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
