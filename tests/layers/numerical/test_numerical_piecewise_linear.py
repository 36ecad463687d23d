"""Tests for synthembed.layers.numerical.piecewise_linear (PLE, Gorishniy et al. 2022)."""

from __future__ import annotations

import pytest
import torch

from synthembed.errors import ConfigError
from synthembed.layers.numerical import PiecewiseLinearEmbedding
from synthembed.layers.tabular import PiecewiseLinearEmbedding as ReExported


def test_piecewise_linear_encoding_values() -> None:
    ple = PiecewiseLinearEmbedding([0.0, 1.0, 3.0], 2)
    enc = ple.encode(torch.tensor([-1.0, 0.5, 2.0, 5.0]))
    # first component open below, last open above (Gorishniy et al. 2022)
    assert enc.tolist() == [[-1.0, 0.0], [0.5, 0.0], [1.0, 0.5], [1.0, 2.0]]
    with pytest.raises(ConfigError, match="strictly increasing"):
        PiecewiseLinearEmbedding([0.0, 0.0], 2)


def test_one_bin_and_old_import_path() -> None:
    ple = PiecewiseLinearEmbedding([0.0, 2.0], 3)
    assert ple.encode(torch.tensor([1.0, 4.0])).tolist() == [[0.5], [2.0]]
    assert ple(torch.rand(4)).shape == (4, 3)
    assert ReExported is PiecewiseLinearEmbedding
