"""scikit-learn's estimator protocol when scikit-learn is installed (it is an optional extra).

:class:`BaseEstimator` and :class:`TransformerMixin` are scikit-learn's own classes
when it imports, else ``object``, so estimators built on them import without it.
:data:`EstimatorNotFittedError` is what an unfitted estimator raises: our
:class:`~synthembed.errors.NotFittedError` (a ``RuntimeError``) and, with
scikit-learn, also its ``NotFittedError`` (a ``ValueError`` and ``AttributeError``),
so ``except`` clauses written for either library catch it.
"""

from __future__ import annotations

from typing import Any

from synthembed.errors import NotFittedError

__all__ = ["HAS_SKLEARN", "BaseEstimator", "EstimatorNotFittedError", "TransformerMixin"]

try:
    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.exceptions import NotFittedError as _SklearnNotFittedError
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    HAS_SKLEARN = False
    BaseEstimator = object  # type: ignore[assignment,misc]
    TransformerMixin = object  # type: ignore[assignment,misc]
    EstimatorNotFittedError: Any = NotFittedError
else:
    HAS_SKLEARN = True

    class _EstimatorNotFittedError(NotFittedError, _SklearnNotFittedError):
        """Caught as ours (RuntimeError) and as scikit-learn's (ValueError, AttributeError)."""

    EstimatorNotFittedError = _EstimatorNotFittedError
