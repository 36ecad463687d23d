"""Embedding layers: the plain lookup, the synthetic layer, compressed bases, tabular rows."""

from synthembed.layers.bases import (
    BASES,
    DHEEmbedding,
    HashEmbedding,
    LowRankEmbedding,
    MixedDimEmbedding,
    QREmbedding,
    make_base,
    register_base,
)
from synthembed.layers.embedding import Embedding
from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer
from synthembed.layers.tabular import (
    PeriodicEmbedding,
    PiecewiseLinearEmbedding,
    TabularEmbedding,
)

__all__ = [
    "BASES",
    "DHEEmbedding",
    "Embedding",
    "HashEmbedding",
    "LowRankEmbedding",
    "MixedDimEmbedding",
    "PeriodicEmbedding",
    "PiecewiseLinearEmbedding",
    "QREmbedding",
    "SyntheticEmbeddingLayer",
    "TabularEmbedding",
    "make_base",
    "register_base",
]
