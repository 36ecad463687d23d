"""Tests for synthembed.layers.numerical.periodic (PLR, Gorishniy et al. 2022)."""

from __future__ import annotations

import math

import pytest
import torch

from synthembed.errors import ConfigError
from synthembed.layers.numerical import PeriodicEmbedding
from synthembed.layers.tabular import PeriodicEmbedding as ReExported


def test_periodic_embedding_is_relu_of_linear_of_fourier_features() -> None:
    torch.manual_seed(0)
    emb = PeriodicEmbedding(3, 2, sigma=0.5)
    x = torch.tensor([0.25])
    angles = 2 * math.pi * 0.25 * emb.frequencies
    feats = torch.cat([torch.cos(angles), torch.sin(angles)])
    assert torch.allclose(emb(x)[0], torch.relu(emb.linear(feats)))
    with pytest.raises(ConfigError, match="'sigma' parameter of PeriodicEmbedding"):
        PeriodicEmbedding(3, 2, sigma=0.0)


def test_shape_gradients_and_old_import_path() -> None:
    emb = PeriodicEmbedding(4, 3)
    x = torch.rand(2, 5)
    out = emb(x)
    assert out.shape == (2, 5, 3)
    out.sum().backward()
    assert emb.frequencies.grad is not None
    assert ReExported is PeriodicEmbedding
