"""The old import path: layers/compressed.py re-exports the bases' public names."""

from __future__ import annotations

import synthembed.layers.bases as bases
import synthembed.layers.compressed as compressed


def test_compressed_re_exports_the_same_objects() -> None:
    assert set(compressed.__all__) >= {
        "DHEEmbedding",
        "HashEmbedding",
        "LowRankEmbedding",
        "MixedDimEmbedding",
        "QREmbedding",
        "hash_ids",
        "mix64",
        "qr_partition_sizes",
    }
    for name in compressed.__all__:
        assert getattr(compressed, name) is getattr(bases, name), name
