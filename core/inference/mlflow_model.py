"""A finished run as an MLflow model: pyfunc with signature and input example, logged into the run on demand,
optionally registered in MLflow's model registry with the run's model card as its description.

The model is the run's face model (``core.inference.export.face_model``: gray 0-255 crops
in, probabilities out) saved as a ``.keras`` artifact, behind the pyfunc of
``mlflow_face_model.py`` (a "model from code" file, so loading needs no lab code). It is
written under the run's artifacts at ``ARTIFACT_PATH``, so ``runs:/RUN/mlflow_model`` is
its URI for ``mlflow.pyfunc.load_model`` and ``mlflow models serve``.
"""
from __future__ import annotations

import importlib.metadata as md
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.store import RunStore

ARTIFACT_PATH = "mlflow_model"
MODEL_CODE = Path(__file__).with_name("mlflow_face_model.py")
# What the pyfunc needs where it is served; pinned to what the lab runs, so `mlflow models serve`
# with a fresh environment rebuilds the same one.
REQUIREMENTS = ("tensorflow", "keras", "numpy", "pandas", "mlflow")


@dataclass(frozen=True)
class LoggedModel:
    """Where a run's MLflow model went: its URI, and the registered name and version if it was registered."""

    uri: str
    registered_name: str | None = None
    version: str | None = None


def _requirements() -> list[str]:
    out = []
    for pkg in REQUIREMENTS:
        try:
            out.append(f"{pkg}=={md.version(pkg)}")
        except md.PackageNotFoundError:
            out.append(pkg)
    return out


def model_uri(run_id: str) -> str:
    """The MLflow URI of a run's logged pyfunc model."""
    return f"runs:/{run_id}/{ARTIFACT_PATH}"


def log_run_model(run_id: str, store: RunStore | None = None, register: str | None = None) -> LoggedModel:
    """Save a finished run's pyfunc model into the run (``runs:/RUN/mlflow_model``); register it as ``register``.

    The signature is a float32 tensor (-1, S, S, 1) in and one float column per label out;
    the input example is one face from the run's test split. A registered version gets the
    run's model card (Markdown) as its description.
    """
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    from core.inference import card as model_card
    from core.inference.export import run_face_model, test_faces

    store = store or RunStore()
    model, spec = run_face_model(store, run_id)
    example = test_faces(store, run_id, max_images=1)
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, spec.input_size, spec.input_size, 1))]),
        outputs=Schema([ColSpec("double", label) for label in spec.labels]))
    with tempfile.TemporaryDirectory() as tmp:
        keras_file = Path(tmp) / "face_model.keras"
        model.save(keras_file)
        saved = Path(tmp) / ARTIFACT_PATH
        # save_model + log_artifacts rather than log_model: the model lands under the finished run's
        # own artifacts (runs:/RUN/mlflow_model) without reopening the run.
        mlflow.pyfunc.save_model(
            saved, python_model=str(MODEL_CODE), artifacts={"face_model": str(keras_file)},
            model_config={"labels": list(spec.labels)}, signature=signature, input_example=example,
            pip_requirements=_requirements())
        store.client.log_artifacts(run_id, str(saved), ARTIFACT_PATH)
    store.set_tags(run_id, {"mlflow_model": model_uri(run_id)})
    if not register:
        return LoggedModel(model_uri(run_id))
    description = model_card.card_markdown(model_card.build_card(store, run_id, spec, fmt="mlflow pyfunc"))
    from mlflow.exceptions import MlflowException

    client = store.client  # the store's own registry: no process-wide tracking URI is set
    try:
        client.get_registered_model(register)
    except MlflowException:
        client.create_registered_model(register, description="Facial emotion models exported by the lab; each version's description is its model card.")
    source = f"{store.get(run_id).info.artifact_uri}/{ARTIFACT_PATH}"
    version = client.create_model_version(register, source, run_id=run_id, description=description)
    return LoggedModel(model_uri(run_id), register, str(version.version))
