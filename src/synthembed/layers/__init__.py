"""Embedding layers."""

from synthembed.layers.embedding import Embedding

__all__ = ["Embedding"]
