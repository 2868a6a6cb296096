"""Compare's "Take a model out of the lab" section: one selected run exported (SavedModel, ONNX, LiteRT or
Keras) with its model card, as a zip to download."""
from __future__ import annotations

import streamlit as st

from dashboard import services, ui


def render(run_ids: list[str], labels: dict[str, str], key: str = "compare_export") -> None:
    """Export one of the finished runs ``run_ids`` (with test results); ``labels`` names them."""
    st.subheader("Take a model out of the lab")
    if not run_ids:
        st.info("Export needs a finished run with test results; none is selected.")
        return
    formats = services.EXPORT_FORMATS
    c1, c2 = st.columns(2)
    ui.keep_valid(f"{key}_run", run_ids)
    run_id = c1.selectbox("Run", run_ids, format_func=labels.get, key=f"{key}_run")
    fmt = c2.selectbox("Format", list(formats), format_func=lambda f: f"{f}: {formats[f]}", key=f"{key}_format")
    st.caption("The zip holds the model (grayscale faces, pixel values 0-255, scaling inside the model) and its "
               "card (MODEL_CARD.md, model_card.json): data, split, seeds, test accuracy with its interval, "
               "per-class F1, cost and licence notes. The export is checked against the run's Keras model on the "
               "test split first; ONNX and LiteRT conversions take tens of seconds.")
    if st.button("Export", key=f"{key}_go", icon=":material/deployed_code:"):
        with st.spinner("Exporting and checking against the Keras model…"):
            st.session_state[f"{key}_result"] = (run_id, fmt, services.export_zip(run_id, fmt))
    done = st.session_state.get(f"{key}_result")
    if not done or done[:2] != (run_id, fmt):
        return
    result = done[2]
    if "error" in result:
        st.error(result["error"])
        return
    st.download_button(f"Download {fmt} export (zip)", result["data"], file_name=result["file_name"],
                       mime="application/zip", icon=":material/download:", key=f"{key}_download")
    st.caption(f"Largest absolute probability difference vs the Keras model: {result['max_abs_prob_diff']:.2g} "
               f"over {result['images']} test images.")
