"""Reference twins of the row-optimizer kernels: row updates and the fused lookup.

Plain public torch. The row updates are the meaning of :mod:`synthembed.optim`'s
optimizers (each takes the distinct, sorted ``rows`` a batch touched and their
gradient rows ``grad`` summed over the batch's duplicates, and updates the
table and its state in place); :func:`fused_lookup` is ``weight[ids]`` whose
backward runs such an update instead of producing a gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "RowUpdate",
    "adagrad_rows",
    "adamw_rows",
    "dedupe_grad",
    "fused_bag",
    "fused_lookup",
    "rowwise_adagrad_rows",
    "sgd_rows",
]

#: ``update(rows, grad)``: distinct sorted rows ``(U,)`` and their summed gradient ``(U, D)``.
RowUpdate = Callable[[torch.Tensor, torch.Tensor], None]


def sgd_rows(
    weight: torch.Tensor, rows: torch.Tensor, grad: torch.Tensor, *, lr: float, weight_decay: float
) -> None:
    """``w_r -= lr * (g_r + weight_decay * w_r)``."""
    if weight_decay != 0:
        grad = grad.add(weight[rows], alpha=weight_decay)
    weight.index_add_(0, rows, grad, alpha=-lr)


def adagrad_rows(
    weight: torch.Tensor,
    total: torch.Tensor,
    rows: torch.Tensor,
    grad: torch.Tensor,
    *,
    lr: float,
    weight_decay: float,
    eps: float,
) -> None:
    """``s_r += g_r ** 2; w_r -= lr * g_r / (sqrt(s_r) + eps)`` (one accumulator per value)."""
    if weight_decay != 0:
        grad = grad.add(weight[rows], alpha=weight_decay)
    total.index_add_(0, rows, grad * grad)
    std = total[rows].sqrt_().add_(eps)
    weight.index_add_(0, rows, grad / std, alpha=-lr)


def rowwise_adagrad_rows(
    weight: torch.Tensor,
    total: torch.Tensor,
    rows: torch.Tensor,
    grad: torch.Tensor,
    *,
    lr: float,
    weight_decay: float,
    eps: float,
) -> None:
    """``s_r += mean(g_r ** 2); w_r -= lr * g_r / (sqrt(s_r) + eps)`` (one value per row)."""
    if weight_decay != 0:
        grad = grad.add(weight[rows], alpha=weight_decay)
    flat = grad.reshape(grad.shape[0], -1)  # (R, D)
    total.index_add_(0, rows, flat.pow(2).mean(dim=1))
    std = total[rows].sqrt().add_(eps)  # (R,)
    scale = std.reshape((-1,) + (1,) * (grad.dim() - 1))
    weight.index_add_(0, rows, grad / scale, alpha=-lr)


def adamw_rows(
    weight: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    last_step: torch.Tensor,
    rows: torch.Tensor,
    grad: torch.Tensor,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    lazy_correction: bool,
) -> None:
    """Lazy AdamW on the touched rows (see :class:`synthembed.optim.SparseAdamW`)."""
    m = exp_avg[rows]  # (R, D) copies, written back below
    v = exp_avg_sq[rows]
    if lazy_correction:
        missed = (step - 1 - last_step[rows]).to(weight.dtype)  # (R,)
        shape = (-1,) + (1,) * (grad.dim() - 1)
        m.mul_(torch.pow(beta1, missed).reshape(shape))
        v.mul_(torch.pow(beta2, missed).reshape(shape))
    m.mul_(beta1).add_(grad, alpha=1 - beta1)
    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    exp_avg[rows] = m
    exp_avg_sq[rows] = v
    last_step[rows] = step
    bias1 = 1 - beta1**step
    bias2_sqrt = (1 - beta2**step) ** 0.5
    w = weight[rows]
    if weight_decay != 0:
        w.mul_(1 - lr * weight_decay)
    denom = v.sqrt().div_(bias2_sqrt).add_(eps)
    w.addcdiv_(m, denom, value=-lr / bias1)
    weight[rows] = w


def dedupe_grad(
    ids: torch.Tensor,
    grad: torch.Tensor,
    padding_idx: int | None,
    scale_grad_by_freq: bool,
    rows: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct sorted ids ``(U,)`` of ``ids`` (padding left out) and their summed
    gradient rows ``(U, D)`` (divided by each id's count with ``scale_grad_by_freq``)."""
    flat = ids.reshape(-1)
    g = grad.reshape(flat.numel(), -1)
    if padding_idx is not None:
        keep = flat != padding_idx
        flat, g = flat[keep], g[keep]
    uniq, inverse = torch.unique(flat, sorted=True, return_inverse=True)
    summed = g.new_zeros(uniq.numel(), g.shape[1]).index_add_(0, inverse, g)
    if scale_grad_by_freq:
        counts = torch.bincount(inverse, minlength=uniq.numel()).to(summed.dtype)
        summed.div_(counts.unsqueeze(1))
    return uniq, summed


class _FusedLookup(torch.autograd.Function):
    """``weight[ids]`` whose backward updates the rows in place and returns no gradient."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        weight: torch.Tensor,
        ids: torch.Tensor,
        update: RowUpdate,
        padding_idx: int | None,
        scale_grad_by_freq: bool,
    ) -> torch.Tensor:
        ctx.save_for_backward(ids)
        ctx.update, ctx.padding_idx, ctx.scale = update, padding_idx, scale_grad_by_freq
        ctx.rows = weight.shape[0]
        return weight.index_select(0, ids.reshape(-1)).reshape(*ids.shape, weight.shape[1])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, ...]:  # type: ignore[override]
        (ids,) = ctx.saved_tensors
        rows, summed = dedupe_grad(ids, grad, ctx.padding_idx, ctx.scale, ctx.rows)
        if rows.numel():
            with torch.no_grad():
                ctx.update(rows, summed)
        return None, None, None, None, None


def fused_lookup(
    weight: torch.Tensor,
    ids: torch.Tensor,
    update: RowUpdate,
    *,
    padding_idx: int | None = None,
    scale_grad_by_freq: bool = False,
) -> torch.Tensor:
    """``weight[ids]`` ``(*)`` -> ``(*, D)``; backward calls ``update(rows, grad)`` once with
    the distinct ids (padding left out) and their summed gradient rows, and gives
    ``weight`` no gradient."""
    out: torch.Tensor = _FusedLookup.apply(weight, ids, update, padding_idx, scale_grad_by_freq)
    return out


Dedupe = Callable[
    [torch.Tensor, torch.Tensor, "int | None", bool, int], tuple[torch.Tensor, torch.Tensor]
]


class FusedBag(torch.autograd.Function):
    """Bags ``(B, L)`` -> ``(B, D)`` (sum or mean) whose backward spreads each bag's
    gradient over its entries, deduplicates them with ``dedupe`` and updates the rows;
    ``per_sample_weights`` get their gradient as in ``nn.EmbeddingBag``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        weight: torch.Tensor,
        ids: torch.Tensor,
        per_sample_weights: torch.Tensor | None,
        mode: str,
        update: RowUpdate,
        padding_idx: int | None,
        scale_grad_by_freq: bool,
        dedupe: Dedupe,
    ) -> torch.Tensor:
        psw_grad = per_sample_weights is not None and per_sample_weights.requires_grad
        # The table is saved (version-checked) only when the weights need its rows.
        ctx.save_for_backward(ids, per_sample_weights, weight if psw_grad else None)
        ctx.mode, ctx.update, ctx.dedupe = mode, update, dedupe
        ctx.padding_idx, ctx.scale, ctx.rows = padding_idx, scale_grad_by_freq, weight.shape[0]
        return F.embedding_bag(
            ids, weight, mode=mode, per_sample_weights=per_sample_weights, padding_idx=padding_idx
        )

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        ids, psw, weight = ctx.saved_tensors
        batch, length = ids.shape
        factor = grad.new_ones(batch, length) if psw is None else psw.to(grad.dtype)
        if ctx.padding_idx is not None:
            factor = factor * (ids != ctx.padding_idx).to(grad.dtype)
        if ctx.mode == "mean":
            valid = length if ctx.padding_idx is None else (ids != ctx.padding_idx).sum(1)
            factor = factor / torch.as_tensor(valid, dtype=grad.dtype).clamp(min=1).reshape(-1, 1)
        entries = grad.unsqueeze(1) * factor.unsqueeze(-1)  # (B, L, D)
        psw_grad = None
        if weight is not None:
            rows = weight.index_select(0, ids.reshape(-1)).reshape(batch, length, -1)
            psw_grad = (rows * grad.unsqueeze(1)).sum(-1)  # (B, L), before the update
            if ctx.padding_idx is not None:
                psw_grad = psw_grad.masked_fill(ids == ctx.padding_idx, 0.0)
        touched, summed = ctx.dedupe(ids, entries, ctx.padding_idx, ctx.scale, ctx.rows)
        if touched.numel():
            with torch.no_grad():
                ctx.update(touched, summed)
        return None, None, psw_grad, None, None, None, None, None


def fused_bag(
    weight: torch.Tensor,
    ids: torch.Tensor,
    mode: str,
    update: RowUpdate,
    *,
    per_sample_weights: torch.Tensor | None = None,
    padding_idx: int | None = None,
    scale_grad_by_freq: bool = False,
) -> torch.Tensor:
    """Pool ``(B, L)`` bags into ``(B, D)`` (``"sum"`` or ``"mean"``, as
    ``nn.EmbeddingBag``); backward calls ``update(rows, grad)`` once, as
    :func:`fused_lookup` does, and gives ``weight`` no gradient."""
    out: torch.Tensor = FusedBag.apply(
        weight, ids, per_sample_weights, mode, update, padding_idx, scale_grad_by_freq, dedupe_grad
    )
    return out
