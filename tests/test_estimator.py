"""Tests for synthembed._estimator: scikit-learn's protocol when it is installed."""

from __future__ import annotations

import pytest

from synthembed._estimator import HAS_SKLEARN, BaseEstimator, EstimatorNotFittedError
from synthembed.errors import NotFittedError, SynthembedError


def test_not_fitted_error_is_caught_as_ours_and_as_scikit_learns() -> None:
    exceptions = pytest.importorskip("sklearn.exceptions")
    base = pytest.importorskip("sklearn.base")
    assert HAS_SKLEARN and BaseEstimator is base.BaseEstimator
    # Ours alone is a RuntimeError, not scikit-learn's (ValueError, AttributeError) ...
    assert not issubclass(NotFittedError, exceptions.NotFittedError)
    # ... so estimators raise a type that is both.
    for parent in (NotFittedError, SynthembedError, RuntimeError, exceptions.NotFittedError,
                   ValueError, AttributeError):  # fmt: skip
        assert issubclass(EstimatorNotFittedError, parent)
