"""Feature combination: ``sigmoid(x @ C + b)`` over the base row and side features.

The founding document's ``combine_features``::

    combined = torch.matmul(x, self.combination_matrix)
    return torch.sigmoid(combined)

with ``x = concat(base row, side features)``. Departure: an optional bias
``b`` (on by default, initialised to zero, so the first forward equals the
founding formula). Without it, an id synthesized without a visible base row
and without side features gets ``sigmoid(0) = 0.5`` in every dimension; with it,
such an id gets a learned "typical" vector.

Both directions of the chain rule are written out (:func:`_combine_backward`,
used by autograd through :class:`_Combine` and by :meth:`Combination.backward`).
Speed: the concatenation is never built (``x @ C = row @ C_row + side @ C_side``),
the bias is fused into the product (``addmm``), the sigmoid's derivative comes
from the saved output in one pass, hidden rows (a prefix of the deduplicated
batch) skip their products, and the large intermediates live on 2 MiB pages.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from synthembed._validation import check_int
from synthembed.synthesis.base import (
    Synthesizer,
    accumulate_grad,
    alloc_like,
    blend_backward,
    blend_rows,
    column_sums,
    register_technique,
)

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

    def per_id(self) -> bool:
        return True

    def combine_features(self, x: torch.Tensor) -> torch.Tensor:
        """``sigmoid(x @ C + b)``: ``(*, D [+ F])`` -> ``(*, D)``."""
        d = self.embedding_dim
        side = x[..., d:] if self.side_dim else None
        return self._combine(x[..., :d], side, 0)

    def forward(
        self,
        index: torch.Tensor,
        rows: torch.Tensor,
        side: torch.Tensor | None,
        visible: torch.Tensor | None = None,
        counts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        skip, rows = _hidden_prefix(rows, visible)
        return self._combine(rows, side, skip)

    def _combine(self, rows: torch.Tensor, side: torch.Tensor | None, skip: int) -> torch.Tensor:
        lead = rows.shape[:-1]
        d = self.embedding_dim
        rows2 = rows.reshape(-1, d)  # (N, D)
        side2 = None if side is None else side.to(rows.dtype).reshape(rows2.shape[0], -1)
        first, second = self._matrices()
        out = _Combine.apply(rows2, side2, first, second, self.bias, skip)
        return out.reshape(*lead, d)  # type: ignore[no-any-return]

    def fused_blend(
        self,
        index: torch.Tensor,
        rows: torch.Tensor,
        side: torch.Tensor | None,
        visible: torch.Tensor | None,
        rate: float | torch.Tensor,
        pad_row: int | None,
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The layer's blend fused in: the rate folds into the backward products
        (``addmm``'s alpha and beta) instead of two passes over the gradient and a sum."""
        skip, x_rows = _hidden_prefix(rows, visible)
        if x_rows is not rows or rows.dim() != 2:
            return None  # not the layer's hidden-prefix layout
        first, second = self._matrices()
        side2 = None if side is None else side.to(rows.dtype)
        out, s = _CombineBlend.apply(rows, side2, first, second, self.bias, rate, skip, pad_row)
        return out, s

    def _matrices(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.combination_matrix is not None:
            return self.combination_matrix, None
        assert self.factor_u is not None and self.factor_v is not None
        return self.factor_u, self.factor_v

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
        d = self.embedding_dim
        with torch.no_grad():
            skip, x_rows = _hidden_prefix(rows.detach(), visible)
            rows2 = x_rows.reshape(-1, d)
            side2 = (
                None if side is None else side.detach().to(rows.dtype).reshape(rows2.shape[0], -1)
            )
            first, second = self._matrices()
            grads = _combine_backward(
                grad_output.reshape(-1, d),
                output.detach().reshape(-1, d),
                rows2,
                side2,
                first,
                second,
                skip,
                need_rows=True,
                need_side=side is not None and side.requires_grad,
                need_bias=self.bias is not None,
            )
            d_rows, d_side, d_first, d_second, d_bias = grads
            accumulate_grad(first, d_first)
            if second is not None:
                accumulate_grad(second, d_second)
            if self.bias is not None:
                accumulate_grad(self.bias, d_bias)
            assert d_rows is not None
            d_rows = self.visible_rows(d_rows.reshape(rows.shape), visible)
            if d_side is not None:
                d_side = d_side.reshape(side.shape)  # type: ignore[union-attr]
        return d_rows, d_side, None


def _hidden_prefix(rows: torch.Tensor, visible: torch.Tensor | None) -> tuple[int, torch.Tensor]:
    """``(skip, rows)`` such that ``rows[skip:]`` are the visible rows and the first
    ``skip`` rows are hidden (read as zeros).

    The layer hands deduplicated rows over sorted, hidden ones first, so this is
    a slice (no pass over the rows); any other mask is applied by a masked copy.
    """
    if visible is None:
        return 0, rows
    vis = visible.reshape(-1)
    if vis.device.type == "cpu":
        # (N,) bools: numpy on one thread, no thread-pool barriers (see _plan in the layer).
        v = vis.numpy()
        hidden = v.size - int(np.count_nonzero(v))
        prefix = not v[:hidden].any() and bool(v[hidden:].all())
    else:
        hidden = vis.numel() - int(vis.sum())
        prefix = not bool(vis[:hidden].any()) and bool(vis[hidden:].all())
    if hidden == 0:
        return 0, rows
    if rows.dim() == 2 and prefix:
        return hidden, rows
    return 0, rows * visible.unsqueeze(-1).to(rows.dtype)


def _combine_forward(
    rows: torch.Tensor,
    side: torch.Tensor | None,
    first: torch.Tensor,
    second: torch.Tensor | None,
    bias: torch.Tensor | None,
    skip: int,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``sigmoid(concat(rows, side) @ C + b)`` without building the concatenation.

    ``C = first`` (or ``first @ second`` when factored); rows ``[:skip]`` read as
    zeros. Returns the output ``(N, D)`` and, when factored, ``t = x @ first``.
    """
    n, d = rows.shape
    out_dim = first.shape[1] if second is None else second.shape[1]
    # x @ first = rows @ first[:d] + side @ first[d:]: two products, no (N, D + F) copy.
    direct = second is None
    t = alloc_like(n, first.shape[1], rows)
    if skip:
        if direct and bias is not None:
            t[:skip].copy_(bias.expand(skip, out_dim))
        else:
            t[:skip].zero_()
    if skip < n:
        if direct and bias is not None:
            torch.addmm(bias, rows[skip:], first[:d], out=t[skip:])
        else:
            torch.mm(rows[skip:], first[:d], out=t[skip:])
    if side is not None:
        t.addmm_(side, first[d:])
    if direct:
        return t.sigmoid_(), None
    assert second is not None
    z = alloc_like(n, out_dim, rows)
    if bias is not None:
        torch.addmm(bias, t, second, out=z)
    else:
        torch.mm(t, second, out=z)
    return z.sigmoid_(), t


def _combine_backward(
    grad: torch.Tensor,
    out: torch.Tensor,
    rows: torch.Tensor,
    side: torch.Tensor | None,
    first: torch.Tensor,
    second: torch.Tensor | None,
    skip: int,
    *,
    need_rows: bool,
    need_side: bool,
    need_bias: bool,
    t: torch.Tensor | None = None,
    scale: float = 1.0,
    direct: torch.Tensor | None = None,
    direct_scale: float = 0.0,
    pad_row: int | None = None,
) -> tuple[torch.Tensor | None, ...]:
    """Gradients of :func:`_combine_forward`: rows, side, first, second, bias.

    With the layer's blend fused in (``out_blend = lerp(rows, s, r)``, rows
    ``[:skip]`` at ``r = 1``): ``grad`` is the blend's output gradient, ``scale = r``
    weighs the visible rows' synthetic path, ``direct_scale * direct`` (``(1 - r) g``)
    is the rows' direct path, added inside the last product (``addmm``'s beta),
    and ``pad_row`` has no synthetic part.
    """
    n, d = rows.shape
    vis = slice(skip, n)
    dz = alloc_like(n, out.shape[1], out)
    # sigmoid's derivative from the saved output, in one pass: dz = g * s * (1 - s).
    torch.ops.aten.sigmoid_backward.grad_input(grad, out, grad_input=dz)
    if pad_row is not None:
        dz[pad_row].zero_()
    d_bias = None
    if need_bias:
        d_bias = column_sums(dz[vis])
        if scale != 1.0:
            d_bias.mul_(scale)
        if skip:
            d_bias += column_sums(dz[:skip])
    d_second = None
    if second is not None:
        if t is None:
            t = torch.zeros(n, first.shape[1], dtype=rows.dtype, device=rows.device)
            if skip < n:
                torch.mm(rows[vis], first[:d], out=t[vis])
            if side is not None:
                t.addmm_(side, first[d:])
        d_second = torch.mm(t[vis].t(), dz[vis]).mul_(scale)  # (rank, D)
        if skip:
            d_second.addmm_(t[:skip].t(), dz[:skip])
        dt = dz @ second.t()  # (N, rank): small
        if scale != 1.0:
            dt[vis] *= scale
        inner = 1.0  # the scale is in dt already
    else:
        dt = dz
        inner = scale
    d_first = torch.empty_like(first)
    if skip < n:
        torch.mm(rows[vis].t(), dt[vis], out=d_first[:d])
        if inner != 1.0:
            d_first[:d].mul_(inner)
    else:
        d_first[:d].zero_()
    if side is not None:
        torch.mm(side[vis].t(), dt[vis], out=d_first[d:])
        if inner != 1.0:
            d_first[d:].mul_(inner)
        if skip:
            d_first[d:].addmm_(side[:skip].t(), dt[:skip])
    d_rows = None
    if need_rows:
        d_rows = alloc_like(n, d, rows)
        d_rows[:skip].zero_()
        if skip < n:
            if direct is not None:
                # (1 - r) g + r dz C^T in one product.
                torch.addmm(
                    direct[vis],
                    dt[vis],
                    first[:d].t(),
                    beta=direct_scale,
                    alpha=inner,
                    out=d_rows[vis],
                )
            else:
                torch.mm(dt[vis], first[:d].t(), out=d_rows[vis])
                if inner != 1.0:
                    d_rows[vis].mul_(inner)
    d_side = None
    if need_side and side is not None:
        d_side = dt @ first[d:].t()
        if inner != 1.0:
            d_side[vis] *= inner
    return d_rows, d_side, d_first, d_second, d_bias


class _Combine(torch.autograd.Function):
    """Autograd wrapper of :func:`_combine_forward` / :func:`_combine_backward`."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        rows: torch.Tensor,
        side: torch.Tensor | None,
        first: torch.Tensor,
        second: torch.Tensor | None,
        bias: torch.Tensor | None,
        skip: int,
    ) -> torch.Tensor:
        rows = rows.contiguous()
        side = None if side is None else side.contiguous()
        out, t = _combine_forward(rows, side, first, second, bias, skip)
        ctx.save_for_backward(rows, side, first, second, out, t)
        ctx.skip = skip
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        rows, side, first, second, out, t = ctx.saved_tensors
        needs = ctx.needs_input_grad
        d_rows, d_side, d_first, d_second, d_bias = _combine_backward(
            grad.contiguous(),
            out,
            rows,
            side,
            first,
            second,
            ctx.skip,
            need_rows=needs[0],
            need_side=needs[1],
            need_bias=ctx.has_bias and needs[4],
            t=t,
        )
        return d_rows, d_side, d_first, d_second, d_bias, None


class _CombineBlend(torch.autograd.Function):
    """The layer's blend ``lerp(rows, s, r)`` fused with :class:`_Combine` (see
    :meth:`Combination.fused_blend`): two outputs, the blend and ``s`` (not differentiable)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        rows: torch.Tensor,
        side: torch.Tensor | None,
        first: torch.Tensor,
        second: torch.Tensor | None,
        bias: torch.Tensor | None,
        rate: float | torch.Tensor,
        skip: int,
        pad_row: int | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rows = rows.contiguous()
        side = None if side is None else side.contiguous()
        s, t = _combine_forward(rows, side, first, second, bias, skip)
        out = blend_rows(rows, s, rate, skip, pad_row)
        ctx.mark_non_differentiable(s)
        rate_t = rate if isinstance(rate, torch.Tensor) else None
        ctx.save_for_backward(rows, side, first, second, s, t, rate_t)
        ctx.rate = float(rate)
        ctx.skip, ctx.pad_row, ctx.has_bias = skip, pad_row, bias is not None
        return out, s

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, grad: torch.Tensor, _grad_s: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, ...]:
        rows, side, first, second, s, t, rate_t = ctx.saved_tensors
        needs = ctx.needs_input_grad
        grad = grad.contiguous()
        r = ctx.rate
        d_rows, d_side, d_first, d_second, d_bias = _combine_backward(
            grad,
            s,
            rows,
            side,
            first,
            second,
            ctx.skip,
            need_rows=needs[0],
            need_side=needs[1],
            need_bias=ctx.has_bias and needs[4],
            t=t,
            scale=r,
            direct=grad,
            direct_scale=1.0 - r,
            pad_row=ctx.pad_row,
        )
        d_rate = None
        if rate_t is not None and needs[5]:
            _, _, d_rate = blend_backward(
                grad,
                rows,
                s,
                rate_t,
                ctx.skip,
                ctx.pad_row,
                need_rows=False,
                need_syn=False,
                need_rate=True,
            )
            assert d_rate is not None
            d_rate = d_rate.reshape(rate_t.shape)
        return d_rows, d_side, d_first, d_second, d_bias, d_rate, None, None
