"""The dashboard's server settings and its sign-in gate: what a person exposing the lab relies on."""
from __future__ import annotations

import tomllib
from pathlib import Path

from conftest import texts
from streamlit.testing.v1 import AppTest

from core.inference import faces, video

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboard" / "app.py")


def test_server_listens_on_loopback_and_refuses_oversize_uploads_itself():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    # Streamlit's default (200 MB) would hold the bytes in memory before the app's own check.
    largest = max(faces.MAX_BYTES, video.MAX_VIDEO_BYTES)
    assert config["server"]["maxUploadSize"] == largest // (1024 * 1024)


def test_with_sign_in_configured_a_visitor_sees_only_the_sign_in(no_worker):
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                          "client_id": "lab", "client_secret": "s",
                          "server_metadata_url": "https://id.example.org/.well-known/openid-configuration"}
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in"]
    assert "sign in to train, compare and predict" in texts(at)
    assert "Start quick comparison" not in texts(at)  # no page ran
    assert no_worker == []  # and no worker was started for the visitor


def test_without_sign_in_the_local_lab_opens_directly(no_worker):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert "Sign in" not in [b.label for b in at.button]
    assert "No runs yet" in texts(at)  # the Overview page ran


def test_page_runs_leave_keras_and_full_garbage_collections_alone(no_worker):
    """Streamlit's defaults reset Keras and collect all garbage after every page run of every session:
    with TensorFlow loaded that was most of the server's busy time under load (load_check.py --profile)."""
    from keras.src.backend.common import global_state

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
    global_state.set_global_attribute("lab_probe", "kept")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert global_state.get_global_attribute("lab_probe") == "kept"  # clear_session() would have dropped it
