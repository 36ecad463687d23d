"""Helpers shared by several test modules (``pythonpath = ["tests"]`` in pyproject)."""

from __future__ import annotations

from pathlib import Path

import torch

from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer
from synthembed.vectors import Vectors, load_vectors

WORDS = ["the", "cat", "Dog", "naïve", "x"]


def make_vectors(n: int = 5, dim: int = 4, seed: int = 0) -> Vectors:
    """``n`` seeded random vectors, named from WORDS (or ``w0, w1, ...`` past five)."""
    g = torch.Generator().manual_seed(seed)
    words = WORDS[:n] if n <= len(WORDS) else [f"w{i}" for i in range(n)]
    return Vectors(words, torch.randn(n, dim, generator=g))


def write_file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def load_uncached(path: Path, **kw: object) -> Vectors:
    return load_vectors(path, cache=False, **kw)  # type: ignore[arg-type]


def synthetic(
    layer: SyntheticEmbeddingLayer, ids: torch.Tensor, hidden: bool = False
) -> torch.Tensor:
    """The synthesizer's output for ids (base rows hidden from it if ``hidden``)."""
    side = None if layer.side_features is None else layer.side_features[ids]
    visible = torch.zeros(ids.shape, dtype=torch.bool) if hidden else None
    return layer.synthesizer(ids, layer.base(ids), side, visible)
