"""Tests for synthembed._scaling: the one feature scaler behind tabular, prep and autoencoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthembed._scaling import AffineScaler
from synthembed.errors import ConfigError


def test_minmax_matches_scikit_learn() -> None:
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    x = np.random.default_rng(0).normal(size=(50, 4)) * [1.0, 10.0, 0.1, 3.0]
    x[:, 3] = 2.5  # a constant feature maps to `low`, as in scikit-learn
    for feature_range in ((0.0, 1.0), (-1.0, 2.0)):
        ours = AffineScaler.fit(torch.from_numpy(x), "minmax", feature_range=feature_range)
        theirs = preprocessing.MinMaxScaler(feature_range=feature_range).fit(x)
        new = x[:5] * 1.5
        np.testing.assert_allclose(ours.transform(torch.from_numpy(new)), theirs.transform(new))
        back = ours.inverse_transform(ours.transform(torch.from_numpy(new)))
        np.testing.assert_allclose(back[:, :3], new[:, :3])
        assert torch.all(back[:, 3] == 2.5)  # a constant feature comes back as its constant


def test_standard_matches_scikit_learn() -> None:
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    x = np.random.default_rng(1).normal(size=(40, 3)) * [2.0, 0.5, 0.0] + 4.0
    ours = AffineScaler.fit(torch.from_numpy(x), "standard")
    theirs = preprocessing.StandardScaler().fit(x)
    np.testing.assert_allclose(ours.transform(torch.from_numpy(x)), theirs.transform(x))
    assert ours.divisor.tolist()[2] == 1.0 and ours.spread.tolist()[2] == 0.0


def test_global_clip_dtype_and_dict_round_trip() -> None:
    x = torch.tensor([[0.0, 4.0], [2.0, 8.0]])
    scaler = AffineScaler.fit(x, "minmax", dim=None, clip=True)
    assert scaler.shift.dim() == 0
    out = scaler.transform(torch.tensor([[-1.0, 4.0, 10.0]]))
    assert out.dtype == torch.float32 and out.tolist() == [[0.0, 0.5, 1.0]]
    restored = AffineScaler.from_dict(scaler.to_dict(), dtype=torch.float32)
    assert torch.equal(restored.transform(x), scaler.transform(x))
    assert scaler.to(torch.float64).shift.dtype == torch.float64


def test_errors() -> None:
    with pytest.raises(ConfigError, match=r"one of \['minmax', 'standard'\]; got 'robust'"):
        AffineScaler("robust", torch.zeros(2), torch.ones(2))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"one shape; got \(2,\) and \(3,\)"):
        AffineScaler("minmax", torch.zeros(2), torch.ones(3))
