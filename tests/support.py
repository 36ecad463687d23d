"""Helpers shared by several test modules (``pythonpath = ["tests"]`` in pyproject)."""

from __future__ import annotations

from pathlib import Path

import torch

from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer
from synthembed.synthesis import TECHNIQUES
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


# ---------------------------------------------------------------- synthesis techniques
SYNTH_V, SYNTH_D, SYNTH_F = 40, 6, 5


def synthetic_features(n: int = SYNTH_V, seed: int = 0) -> torch.Tensor:
    """``(n, 5)`` uniform side features, fixed by ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, SYNTH_F, generator=g)


def build_synthetic(technique: str, with_side: bool, **kwargs: object) -> SyntheticEmbeddingLayer:
    """A seeded ``SyntheticEmbeddingLayer(40, 6)`` with ``technique`` (rate 0.3 unless given)."""
    torch.manual_seed(0)
    return SyntheticEmbeddingLayer(
        SYNTH_V,
        SYNTH_D,
        synthesis_rate=kwargs.pop("synthesis_rate", 0.3),  # type: ignore[arg-type]
        technique=technique,
        side_features=synthetic_features() if with_side else None,
        **kwargs,  # type: ignore[arg-type]
    )


def side_cases(name: str) -> list[bool]:
    """With side features only, or also without, as the technique allows."""
    return [True] if TECHNIQUES[name].needs_side_features else [False, True]
