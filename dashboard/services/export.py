"""A finished run exported for download from Compare: the model in one format plus its model card, as a zip
(``core.inference.export``)."""
from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import streamlit as st

from core.configs import ConfigError
from core.inference import export
from core.store import RunNotFound, StoreUnreachable
from dashboard.services.runstore import store

EXPORT_FORMATS: dict[str, str] = dict(export.FORMAT_NOTES)  # --format name -> what it is for


@st.cache_data(max_entries=2, show_spinner=False)  # exports are tens of MB: keep the last two for re-clicks
def export_zip(run_id: str, fmt: str) -> dict:
    """``run_id`` exported as ``fmt`` with MODEL_CARD.md and model_card.json, zipped.

    Returns ``file_name``, ``data`` (bytes), ``max_abs_prob_diff`` and ``images`` (the export's check
    against the Keras model on the test split); or ``error``, a sentence saying why the run cannot be exported.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "export"
        try:
            result = export.export_run(run_id, fmt, out, store=store())
        except (RunNotFound, StoreUnreachable, ConfigError) as exc:
            return {"error": exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)}
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(out.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(out).as_posix())
    check = result.card["check"]
    return {"file_name": f"emotion-{run_id[:8]}-{fmt}.zip", "data": buffer.getvalue(),
            "max_abs_prob_diff": check["max_abs_prob_diff"], "images": check["images"]}
