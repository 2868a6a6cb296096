"""The MLflow pyfunc of an exported run, as an MLflow "model from code" file.

MLflow copies this file into every logged model and runs it when the model loads, so a
model logged by the lab loads (``mlflow.pyfunc.load_model``, ``mlflow models serve``)
wherever Keras, pandas and MLflow are installed, without the lab. The lab never imports
it: ``core.inference.mlflow_model`` passes its path to ``mlflow.pyfunc.save_model``.
"""
from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd


class FaceEmotionModel(mlflow.pyfunc.PythonModel):
    """Face crops (N, S, S, 1) float32 gray 0-255 -> a DataFrame of the class probabilities, one column per label."""

    def load_context(self, context):
        import keras

        self.labels = list(context.model_config["labels"])
        self.model = keras.models.load_model(context.artifacts["face_model"], safe_mode=True, compile=False)

    def predict(self, context, model_input, params=None):
        if isinstance(model_input, dict) and len(model_input) == 1:  # a named tensor ({"face": ...})
            model_input = next(iter(model_input.values()))
        x = np.asarray(model_input.to_numpy() if isinstance(model_input, pd.DataFrame) else model_input, np.float32)
        if x.ndim == 3:  # (N, S, S): one channel implied
            x = x[..., None]
        probs = np.asarray(self.model.predict_on_batch(x), np.float64)
        return pd.DataFrame(probs, columns=self.labels)


mlflow.models.set_model(FaceEmotionModel())
