"""Pooled bags of :class:`~synthembed.Embedding`: input checks and the pooling itself."""

from __future__ import annotations

from typing import Literal

import torch

from synthembed._validation import check_finite
from synthembed.errors import ConfigError, ShapeError

__all__ = ["PoolingMode", "check_bag_inputs", "pool_bags"]

PoolingMode = Literal["sum", "mean", "max"]


def check_bag_inputs(
    ids: torch.Tensor,
    mode: PoolingMode,
    mask: torch.Tensor | None,
    per_sample_weights: torch.Tensor | None,
) -> torch.Tensor | None:
    """Check a bag's ``mask`` and ``per_sample_weights`` against ``(*, L)`` ids; returns
    the weights.

    Raises:
        ShapeError: 0-d ids, or a mask or weights of the wrong shape or dtype.
        ConfigError: weights with ``mode="max"``.
        NonFiniteError: NaN or infinity in the weights.
    """
    if ids.dim() == 0:
        raise ShapeError(
            f"mode={mode!r} pools over the last dimension; got a 0-d id. Pass ids of shape (*, L)."
        )
    for name, t in (("mask", mask), ("per_sample_weights", per_sample_weights)):
        if t is not None and not isinstance(t, torch.Tensor):
            raise ShapeError(f"{name} must be a torch.Tensor; got {type(t).__name__}.")
        if t is not None and tuple(t.shape) != tuple(ids.shape):
            raise ShapeError(
                f"{name} must have the ids' shape {tuple(ids.shape)}; got {tuple(t.shape)}."
            )
    if mask is not None and mask.dtype != torch.bool:
        raise ShapeError(f"mask must be a bool tensor; got dtype {mask.dtype}.")
    if per_sample_weights is not None:
        if mode == "max":
            raise ConfigError(
                "per_sample_weights apply to mode='sum' or 'mean', not 'max'. "
                "Use mode='sum' for weighted bags."
            )
        if not per_sample_weights.is_floating_point():
            raise ShapeError(
                f"per_sample_weights must be floating point; got dtype {per_sample_weights.dtype}."
            )
        check_finite(per_sample_weights, "per_sample_weights")
    return per_sample_weights


def pool_bags(
    vectors: torch.Tensor,
    mode: PoolingMode,
    weights: torch.Tensor | None,
    valid: torch.Tensor | None,
) -> torch.Tensor:
    """Pool ``(*, L, D)`` vectors over the bag dimension ``L`` into ``(*, D)``.

    Args:
        vectors: the looked-up rows.
        mode: ``"sum"``, ``"mean"`` (over valid entries) or ``"max"``.
        weights: optional ``(*, L)`` per-entry weights (sum and mean).
        valid: optional ``(*, L)`` bool mask of entries that count. Bags with no
            valid entry pool to zeros, as ``nn.EmbeddingBag`` does.
    """
    if mode == "max":
        if valid is None:
            return vectors.amax(dim=-2) if vectors.shape[-2] else vectors.sum(dim=-2)
        filled = vectors.masked_fill(~valid.unsqueeze(-1), float("-inf"))
        out = filled.amax(dim=-2) if vectors.shape[-2] else vectors.sum(dim=-2)
        return torch.where(valid.any(dim=-1, keepdim=True), out, torch.zeros_like(out))
    w = weights
    if valid is not None:
        v = valid.to(vectors.dtype)
        w = v if w is None else w * v
    summed = vectors.sum(dim=-2) if w is None else (vectors * w.unsqueeze(-1)).sum(dim=-2)
    if mode == "sum":
        return summed
    if valid is None:
        count = torch.full(
            summed.shape[:-1], vectors.shape[-2], dtype=vectors.dtype, device=vectors.device
        )
    else:
        count = valid.sum(dim=-1).to(vectors.dtype)
    return summed / count.clamp(min=1).unsqueeze(-1)
