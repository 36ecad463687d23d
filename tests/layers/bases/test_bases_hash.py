"""The 'hash' base (layers/bases/hash.py): Svenstrup et al. 2017."""

from __future__ import annotations

import pytest
import torch

from synthembed.errors import ConfigError
from synthembed.layers.bases.hash import HashEmbedding


def test_grow_extends_the_per_id_importance_table() -> None:
    h = HashEmbedding(10, 4, num_buckets=5)
    h.grow(3)
    assert h.importance.num_embeddings == 13
    with pytest.raises(ConfigError, match=r"'n' parameter of HashEmbedding.grow"):
        h.grow(-1)


def test_hash_importance_rows_direct_then_hashed() -> None:
    h = HashEmbedding(100, 4, num_buckets=10)
    ids = torch.tensor([0, 99, 100, 2**50])
    rows = h.weight_rows(ids)
    assert rows[:2].tolist() == [0, 99]
    assert all(0 <= r < 100 for r in rows.tolist())
    small = HashEmbedding(100, 4, num_buckets=10, num_weights=16)
    assert small.importance.weight.shape == (16, 2)
    rows = small.weight_rows(torch.arange(100))
    assert int(rows.max()) < 16 and len(set(rows.tolist())) == 16  # all ids hashed


def test_hash_buckets_are_k_independent_rows_and_default_pool() -> None:
    h = HashEmbedding(16_000, 4, num_hashes=3)
    assert h.num_buckets == 1000  # ceil(V / 16)
    b = h.buckets(torch.arange(5000))
    assert b.shape == (5000, 3) and int(b.max()) < 1000
    # Two ids collide on every one of k hashes far less often than on one.
    full = len({tuple(r) for r in b.tolist()})
    assert full == 5000


def test_hash_output_is_importance_weighted_sum_of_pool_rows() -> None:
    h = HashEmbedding(50, 6, num_buckets=7, num_hashes=2)
    ids = torch.tensor([3, 41])
    b, p = h.buckets(ids), h.importance.weight[ids]
    expected = (h.pool.weight[b] * p.unsqueeze(-1)).sum(1)
    torch.testing.assert_close(h(ids), expected)


def test_hash_sparse_gradients() -> None:
    h = HashEmbedding(50, 6, num_buckets=7, sparse=True)
    h(torch.tensor([1, 2])).sum().backward()
    assert h.pool.weight.grad is not None and h.pool.weight.grad.is_sparse
    assert h.importance.weight.grad is not None and h.importance.weight.grad.is_sparse


def test_hash_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"'num_buckets' parameter of HashEmbedding .* Got 0"):
        HashEmbedding(100, 4, num_buckets=0)
    with pytest.raises(
        ConfigError,
        match=r"'num_hashes' parameter of HashEmbedding must be <= num_buckets=4.*Got 5",
    ):
        HashEmbedding(100, 4, num_buckets=4, num_hashes=5)
    with pytest.raises(ConfigError, match=r"'num_hashes' .* Got 0"):
        HashEmbedding(100, 4, num_hashes=0)
    with pytest.raises(ConfigError, match=r"'embedding_dim' .* Got 0"):
        HashEmbedding(100, 0)
    with pytest.raises(ConfigError, match=r"'num_embeddings' .* Got 0"):
        HashEmbedding(0, 4)
    with pytest.raises(ConfigError, match=r"'padding_idx' .* Got 100"):
        HashEmbedding(100, 4, padding_idx=100)
    with pytest.raises(ConfigError, match=r"'init_std'"):
        HashEmbedding(100, 4, init_std=0.0)


def test_default_sizes_are_capped_for_huge_id_ranges() -> None:
    from synthembed.layers.bases.hash import MAX_BUCKETS, MAX_ID_WEIGHTS

    huge = HashEmbedding(100_000_000, 128, device="meta")
    assert (huge.num_buckets, huge.num_weights) == (MAX_BUCKETS, MAX_ID_WEIGHTS) == (2**20, 2**22)
    small = HashEmbedding(1600, 4)
    assert (small.num_buckets, small.num_weights) == (100, 1600)


def test_ids_beyond_the_capped_weights_share_hashed_rows() -> None:
    from synthembed.layers.bases import hash as hash_module

    layer = HashEmbedding(100, 4, num_buckets=50)
    ids = torch.tensor([3, 99, 5_000_000])
    rows = layer.weight_rows(ids)
    assert rows[:2].tolist() == [3, 99] and 0 <= int(rows[2]) < 100
    old = hash_module.MAX_ID_WEIGHTS
    hash_module.MAX_ID_WEIGHTS = 102
    try:
        layer.grow(5)  # 105 ids: the importance table stops at the cap
    finally:
        hash_module.MAX_ID_WEIGHTS = old
    assert layer.num_weights == 102 and layer.num_embeddings == 105
