"""The 'dhe' base (layers/bases/dhe.py): Kang et al., KDD 2021."""

from __future__ import annotations

import pytest
import torch

from synthembed.errors import ConfigError
from synthembed.layers.bases.dhe import DHEEmbedding


def test_dhe_codes_are_normalised() -> None:
    ids = torch.arange(2000)
    uni = DHEEmbedding(10, 4, num_hashes=64, hidden_dims=(8,)).encode(ids)
    assert uni.shape == (2000, 64)
    assert float(uni.min()) >= -1.0 and float(uni.max()) <= 1.0
    assert abs(float(uni.mean())) < 0.02
    gauss = DHEEmbedding(10, 4, num_hashes=64, hidden_dims=(8,), distribution="gaussian").encode(
        ids
    )
    assert abs(float(gauss.mean())) < 0.02 and abs(float(gauss.std()) - 1.0) < 0.02


def test_dhe_has_no_table_and_chunks_codes() -> None:
    d = DHEEmbedding(10**12, 4, num_hashes=16, hidden_dims=(8, 8))
    assert sum(p.numel() for p in d.parameters()) == 16 * 8 + 8 + 8 * 8 + 8 + 8 * 4 + 4
    d._CHUNK_ELEMENTS = 16 * 3  # 3 rows per chunk
    ids = torch.arange(10)
    chunked = d.encode(ids)
    d._CHUNK_ELEMENTS = 1 << 22
    assert torch.equal(chunked, d.encode(ids))


def test_dhe_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"num_hashes must be even. Got 3"):
        DHEEmbedding(10, 4, num_hashes=3, distribution="gaussian")
    with pytest.raises(ConfigError, match=r"'hidden_dims\[i\]' .* Got 0"):
        DHEEmbedding(10, 4, hidden_dims=(8, 0))
    with pytest.raises(ConfigError, match=r"'hash_range' .* Got 1"):
        DHEEmbedding(10, 4, hash_range=1)
