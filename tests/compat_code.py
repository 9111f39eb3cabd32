"""A custom transformer shipped with a model through MLflow code_paths (compat zoo)."""

from __future__ import annotations

from sklearn.base import BaseEstimator, TransformerMixin


class Doubler(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    def fit(self, x, y=None):  # type: ignore[no-untyped-def]
        return self

    def transform(self, x):  # type: ignore[no-untyped-def]
        return x * 2.0
