"""Moved: the compressed bases live in :mod:`synthembed.layers.bases`, one module each.

This module re-exports their public names so that older imports keep working.
"""

from synthembed.layers.bases.dhe import DHEDistribution, DHEEmbedding
from synthembed.layers.bases.hash import HashEmbedding
from synthembed.layers.bases.hashing import hash_ids, mix64
from synthembed.layers.bases.lowrank import LowRankEmbedding
from synthembed.layers.bases.mixed import MixedDimEmbedding
from synthembed.layers.bases.qr import QREmbedding, QROperation, qr_partition_sizes

__all__ = [
    "DHEDistribution",
    "DHEEmbedding",
    "HashEmbedding",
    "LowRankEmbedding",
    "MixedDimEmbedding",
    "QREmbedding",
    "QROperation",
    "hash_ids",
    "mix64",
    "qr_partition_sizes",
]
