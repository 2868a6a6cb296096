"""Stop Streamlit from resetting Keras after every page run.

After each run of any page, Streamlit's script runner calls ``keras.backend.clear_session()`` whenever
Keras is imported (its ``_clean_problem_modules``). Here Keras is imported for good once someone opens
Predict, and each reset costs a full garbage collection of a process holding TensorFlow, plus
TensorFlow's kernel cache: under load (tests/dashboard/load_check.py --profile) it was most of the
server's busy time, on pages that never touch a model. The lab's loaded models are shared by every
session and must outlive page runs anyway (``core.inference.predictors`` caches them), so there is
nothing for the reset to clean. Matplotlib figures are still closed, as Streamlit does.
"""
from __future__ import annotations

import sys


def close_pyplot_figures() -> None:
    """What Streamlit's cleanup does besides resetting Keras: close any pyplot figures a page left open."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")


def keep_keras_between_runs() -> None:
    """Replace Streamlit's per-run cleanup with one that leaves Keras alone (no-op if Streamlit has none)."""
    from streamlit.runtime.scriptrunner import script_runner

    if hasattr(script_runner, "_clean_problem_modules"):
        script_runner._clean_problem_modules = close_pyplot_figures
