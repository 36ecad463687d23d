"""The 'lowrank' base (layers/bases/lowrank.py)."""

from __future__ import annotations

import pytest
import torch

from synthembed.errors import ConfigError
from synthembed.layers.bases.lowrank import LowRankEmbedding


def test_grow_extends_the_factor_table() -> None:
    lr = LowRankEmbedding(10, 4, rank=2)
    lr.grow(3)
    assert lr.factor.num_embeddings == 13


def test_lowrank_is_a_product_of_factors() -> None:
    lr = LowRankEmbedding(20, 6, rank=2)
    ids = torch.tensor([4, 11])
    torch.testing.assert_close(lr(ids), lr.factor.weight[ids] @ lr.projection.weight.T)
    assert LowRankEmbedding(20, 64).rank == 8
    with pytest.raises(
        ConfigError, match=r"'rank' parameter of LowRankEmbedding .* \[1, 6\]. Got 7"
    ):
        LowRankEmbedding(20, 6, rank=7)
