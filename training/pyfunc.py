"""The MLflow pyfunc face of a bundle, for tools that speak MLflow (batch jobs, notebooks).

The service does not use it: it loads the bundle folder natively (no pyfunc schema
enforcement on the request path). Input: a DataFrame whose columns include the bundle's
feature names; output: calibrated probabilities.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd


class BundlePythonModel(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
    def load_context(self, context: Any) -> None:
        from models.bundle import Bundle

        self.bundle = Bundle.load(context.artifacts["bundle"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        X = model_input[list(self.bundle.feature_names)].to_numpy(dtype=np.float64)
        return self.bundle.predict_proba(X)
