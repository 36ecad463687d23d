"""Feature combination: ``sigmoid(x @ C + b)`` over the base row and side features.

The founding document's ``combine_features``::

    combined = torch.matmul(x, self.combination_matrix)
    return torch.sigmoid(combined)

with ``x = concat(base row, side features)``. Departure: an optional bias
``b`` (on by default, initialised to zero, so the first forward equals the
founding formula). Without it, an id synthesized without a visible base row
and without side features gets ``sigmoid(0) = 0.5`` in every dimension; with it,
such an id gets a learned "typical" vector.

Both directions of the chain rule are written out in :meth:`Combination.backward`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from synthembed._validation import check_int
from synthembed.synthesis.base import Synthesizer, accumulate_grad, register_technique

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
        return {"bias": self.bias is not None, "rank": self.rank}

    def combine_features(self, x: torch.Tensor) -> torch.Tensor:
        """``sigmoid(x @ C + b)``: ``(*, D [+ F])`` -> ``(*, D)``."""
        lead = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1])  # (N, D [+ F])
        if self.combination_matrix is None:
            assert self.factor_u is not None and self.factor_v is not None
            x2 = x2 @ self.factor_u  # (N, rank)
            matrix = self.factor_v
        else:
            matrix = self.combination_matrix
        # addmm fuses the bias into the product (one pass over the (N, D) result fewer).
        combined = x2 @ matrix if self.bias is None else torch.addmm(self.bias, x2, matrix)
        return torch.sigmoid(combined).reshape(*lead, self.embedding_dim)

    def forward(
        self,
        index: torch.Tensor,
        rows: torch.Tensor,
        side: torch.Tensor | None,
        visible: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.combine_features(self.inputs(rows, side, visible))

    def backward(
        self,
        grad_output: torch.Tensor,
        index: torch.Tensor,
        rows: torch.Tensor,
        side: torch.Tensor | None,
        visible: torch.Tensor | None,
        output: torch.Tensor,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """Explicit chain rule: ``s = sigmoid(z)``, ``dz = g * s * (1 - s)``.

        ``dC = x^T dz``, ``db = sum(dz)``, ``dx = dz C^T`` split into the row part
        (masked by ``visible``) and the side part.
        """
        with torch.no_grad():
            d = self.embedding_dim
            x = self.inputs(rows.detach(), None if side is None else side.detach(), visible)
            s = output.detach()
            dz = (grad_output * s * (1 - s)).reshape(-1, d)  # (N, D)
            x2 = x.reshape(-1, x.shape[-1])  # (N, D [+ F])
            if self.combination_matrix is not None:
                accumulate_grad(self.combination_matrix, x2.t() @ dz)
                dx = dz @ self.combination_matrix.t()
            else:
                assert self.factor_u is not None and self.factor_v is not None
                xu = x2 @ self.factor_u  # (N, rank)
                accumulate_grad(self.factor_v, xu.t() @ dz)
                dxu = dz @ self.factor_v.t()  # (N, rank)
                accumulate_grad(self.factor_u, x2.t() @ dxu)
                dx = dxu @ self.factor_u.t()
            if self.bias is not None:
                accumulate_grad(self.bias, dz.sum(0))
            dx = dx.reshape(*x.shape)
            d_rows = self.visible_rows(dx[..., :d], visible)
            d_side = dx[..., d:] if side is not None and side.requires_grad else None
        return d_rows, d_side, None
