"""The 'mixed' base (layers/bases/mixed.py): Ginart et al., ISIT 2021."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from synthembed.errors import ConfigError, ShapeError
from synthembed.io import load, save
from synthembed.layers.bases.mixed import MixedDimEmbedding

V, D = 300, 8


def test_grow_extends_the_last_block() -> None:
    m = MixedDimEmbedding(10, 4, num_blocks=2)
    m.grow(3)
    assert sum(m.block_sizes) == 13 and m.tables[-1].num_embeddings == m.block_sizes[-1]


def test_mixed_with_counts_saves_its_rank_buffer(tmp_path: Any) -> None:
    counts = torch.rand(V, generator=torch.Generator().manual_seed(3)) * 100
    base = MixedDimEmbedding(V, D, counts=counts, num_blocks=3)
    assert base.rank_of is not None
    save(base, tmp_path / "m.safetensors")
    loaded = load(tmp_path / "m.safetensors")
    ids = torch.arange(V)
    assert torch.equal(loaded(ids), base(ids))


def test_mixed_frequent_ids_get_the_widest_rows() -> None:
    counts = [1.0] * 100
    counts[57] = 1000.0
    m = MixedDimEmbedding(100, 16, counts=counts, num_blocks=3, alpha=1.0)
    assert m.block_dims[0] == 16 and m.block_dims[-1] < 16
    assert int(m.rank_of[57]) == 0  # type: ignore[index]
    # The most frequent id is served by block 0 (no projection): its row as is.
    torch.testing.assert_close(m(torch.tensor([57]))[0], m.tables[0].weight[0])
    flat = MixedDimEmbedding(100, 16, num_blocks=3, alpha=0.0)
    assert flat.block_dims == [16, 16, 16] and flat.rank_of is None


def test_mixed_explicit_blocks_and_order() -> None:
    order = list(reversed(range(10)))
    m = MixedDimEmbedding(10, 4, order=order, block_sizes=[2, 8], block_dims=[4, 1])
    assert [t.weight.shape for t in m.tables] == [(2, 4), (8, 1)]
    torch.testing.assert_close(m(torch.tensor([9]))[0], m.tables[0].weight[0])


def test_mixed_config_errors() -> None:
    with pytest.raises(ShapeError, match=r"counts must have num_embeddings=10 entries; got 3"):
        MixedDimEmbedding(10, 4, counts=[1, 2, 3])
    with pytest.raises(ConfigError, match=r"finite and non-negative"):
        MixedDimEmbedding(3, 4, counts=[1, -2, 3])
    with pytest.raises(ConfigError, match=r"permutation of range\(3\)"):
        MixedDimEmbedding(3, 4, order=[0, 0, 1])
    with pytest.raises(ConfigError, match=r"counts= or order=, not both"):
        MixedDimEmbedding(3, 4, counts=[1, 2, 3], order=[0, 1, 2])
    with pytest.raises(ConfigError, match=r"block_sizes must sum to num_embeddings=10; got 9"):
        MixedDimEmbedding(10, 4, block_sizes=[4, 5])
    with pytest.raises(ConfigError, match=r"'block_dims\[i\]' .* \[1, 4\]. Got 5"):
        MixedDimEmbedding(10, 4, block_sizes=[4, 6], block_dims=[5, 1])
    with pytest.raises(ConfigError, match=r"'num_blocks' .* \[1, 3\]. Got 4"):
        MixedDimEmbedding(3, 4, num_blocks=4)
