"""Feature combination: ``sigmoid(x @ C + b)`` over the base row and side features.

The founding document's ``combine_features``::

    combined = torch.matmul(x, self.combination_matrix)
    return torch.sigmoid(combined)

with ``x = concat(base row, side features)``. Departure: an optional bias
``b`` (on by default, initialised to zero, so the first forward equals the
founding formula). Without it, an id synthesized without a visible base row
and without side features gets ``sigmoid(0) = 0.5`` in every dimension; with it,
such an id gets a learned "typical" vector.

Gradients come from autograd. The concatenation is never built
(``x @ C = row @ C[:D] + side @ C[D:]``), the bias is fused into the product
(``addmm``) and the sigmoid runs in place on the product's output.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from synthembed._validation import check_int
from synthembed.synthesis.base import Synthesizer, register_technique

__all__ = ["Combination"]


@register_technique("combination")
class Combination(Synthesizer):
    """``sigmoid(concat(row, side) @ C + b)`` with a learnable ``C`` of shape ``(D [+ F], D)``.

    Args:
        num_embeddings: number of ids served.
        embedding_dim: ``D``.
        side_dim: ``F``, or None without side features.
        bias: learn the bias ``b`` (see the module notes).
        rank: if set, factor ``C = U @ V`` with ``U: (D [+ F], rank)`` and
            ``V: (rank, D)``: fewer parameters and ``rank / D`` of the compute.

    Shape:
        ``(*, D)`` rows and ``(*, F)`` side features -> ``(*, D)`` in ``(0, 1)``.

    Example:
        >>> comb = Combination(10, 4, None)
        >>> comb(torch.tensor([1, 2]), torch.randn(2, 4), None).shape
        torch.Size([2, 4])
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        side_dim: int | None,
        *,
        bias: bool = True,
        rank: int | None = None,
    ) -> None:
        check_int("Combination", "rank", rank, 1, optional=True)
        super().__init__(num_embeddings, embedding_dim, side_dim)
        d_in = self.input_dim()
        self.rank = rank
        # std 1/sqrt(d_in): unit-variance inputs (N(0, 1) rows) give unit-variance
        # pre-activations, the sigmoid's sensitive range.
        if rank is None:
            self.combination_matrix = nn.Parameter(
                torch.randn(d_in, embedding_dim) / math.sqrt(d_in)
            )
            self.factor_u: nn.Parameter | None = None
            self.factor_v: nn.Parameter | None = None
        else:
            self.register_parameter("combination_matrix", None)
            self.factor_u = nn.Parameter(torch.randn(d_in, rank) / math.sqrt(d_in))
            self.factor_v = nn.Parameter(torch.randn(rank, embedding_dim) / math.sqrt(rank))
        self.bias = nn.Parameter(torch.zeros(embedding_dim)) if bias else None

    def get_options(self) -> dict[str, Any]:
        # self.bias holds the parameter (or None), not the constructor's flag.
        return {"bias": self.bias is not None, "rank": self.rank}

    def combine_features(self, x: torch.Tensor) -> torch.Tensor:
        """``sigmoid(x @ C + b)``: ``(*, D [+ F])`` -> ``(*, D)``."""
        d = self.embedding_dim
        side = x[..., d:] if self.side_dim else None
        return self._combine(x[..., :d], side)

    def forward(
        self,
        index: torch.Tensor,
        rows: torch.Tensor,
        side: torch.Tensor | None,
        visible: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self._combine(self.visible_rows(rows, visible), side)

    def _combine(self, rows: torch.Tensor, side: torch.Tensor | None) -> torch.Tensor:
        lead = rows.shape[:-1]
        d = self.embedding_dim
        x = rows.reshape(-1, d)  # (N, D)
        first = self.combination_matrix if self.factor_u is None else self.factor_u
        assert first is not None
        # x @ first = rows @ first[:D] + side @ first[D:]: two products, no (N, D + F) copy.
        direct = self.factor_v is None
        if direct and self.bias is not None:
            z = torch.addmm(self.bias, x, first[:d])  # (N, D)
        else:
            z = x @ first[:d]  # (N, D or rank)
        if side is not None:
            z = z.addmm_(side.to(x.dtype).reshape(x.shape[0], side.shape[-1]), first[d:])
        if not direct:
            assert self.factor_v is not None
            if self.bias is not None:
                z = torch.addmm(self.bias, z, self.factor_v)  # (N, D)
            else:
                z = z @ self.factor_v
        # In place (here and above): products keep their inputs for backward, not their output.
        return z.sigmoid_().reshape(*lead, d)
