"""Per-id state of a synthetic layer, kept compact, and what reads it.

:class:`~synthembed.layers.synthetic_embedding.SyntheticEmbeddingLayer` counts how
many times each id trained (``counts``) to find cold ids, to give each id a rate
that follows its training (``adaptive="count"``) and to pick the rows the
alignment loss pulls toward. At 100,000,000 ids an ``int64`` count and a ``bool``
flag per id cost 0.9 GB before any table (issue 14), so:

- counts are ``int32`` (400 MB at 100M ids) and *saturate*: once an id passes
  :data:`COUNT_CAP` (2**30) sightings it stays at or above it (counts are clamped
  back to the cap before they could overflow ``int32``). Every reader saturates
  long before: ``cold_threshold`` and ``distill_min_count`` are at most the cap,
  and the count-aware rate is below ``1e-8`` there;
- a layer whose configuration reads no count (no side features, no
  ``cold_threshold``, no count rate, no alignment, a technique without per-id
  state) keeps none (``counts`` is None) until one is needed;
- the ``added`` flags exist only after :meth:`add_items` added ids.

Files saved with ``int64`` counts load into the compact form.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "COUNT_CAP",
    "COUNT_DTYPE",
    "COUNT_REF",
    "add_counts",
    "compact_counts",
    "count_rate",
    "distill_loss",
    "initial_rate_k",
    "new_counts",
]

COUNT_DTYPE = torch.int32
#: Counts saturate here (see the module notes).
COUNT_CAP = 2**30
_INT32_MAX = 2**31 - 1
#: With ``adaptive="count"``, ``synthesis_rate`` is the rate of an id trained this many
#: times: ``k`` starts at ``COUNT_REF * r / (1 - r)``.
COUNT_REF = 10


def new_counts(n: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``(n,)`` zero counts in the compact dtype."""
    return torch.zeros(n, dtype=COUNT_DTYPE, device=device)


def compact_counts(saved: torch.Tensor) -> torch.Tensor:
    """Counts of any integer dtype (files saved before: ``int64``) in the compact form."""
    if saved.dtype == COUNT_DTYPE:
        return saved
    return saved.clamp(0, COUNT_CAP).to(COUNT_DTYPE)


def add_counts(counts: torch.Tensor, flat: torch.Tensor, bound: int) -> int:
    """Count each id of ``flat`` once per occurrence, in place; saturating.

    ``bound`` is an upper bound of ``counts.max()`` the caller keeps (a python int,
    so no pass over the table is needed per step); the new bound is returned.
    Only when the bound could pass ``int32`` are the counts clamped to
    :data:`COUNT_CAP` (one pass over the table per 2**30 sightings).
    """
    n = flat.numel()
    if bound + n > _INT32_MAX:
        counts.clamp_(max=COUNT_CAP)
        bound = COUNT_CAP
    # An expanded 1 (no (N,) allocation and fill): measurably cheaper per step.
    counts.scatter_add_(0, flat, counts.new_ones(()).expand_as(flat))
    return bound + n


def initial_rate_k(rate: float) -> float:
    """``softplus``-inverse of the ``k`` at which an id trained :data:`COUNT_REF` times gets ``rate``."""
    k = COUNT_REF * rate / (1.0 - rate)
    return k + math.log(-math.expm1(-k))  # log(exp(k) - 1) without overflow


def count_rate(seen: torch.Tensor, rate_k: torch.Tensor) -> torch.Tensor:
    """``r = k / (k + count)`` with ``k = softplus(rate_k)``, per id.

    Shape:
        ``seen``: ``(*)`` integer counts; ``rate_k``: ``(1,)`` -> ``(*, 1)`` rates.
    """
    k = F.softplus(rate_k).reshape(())
    c = seen.to(k.dtype).unsqueeze(-1)  # (*, 1)
    return k / (k + c)


def distill_loss(
    syn: torch.Tensor,
    rows: torch.Tensor,
    select: torch.Tensor,
    weight: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """``1 - cos(syn, rows.detach())`` averaged over the selected positions, or None for none.

    Args:
        syn: ``(N, D)`` synthesized vectors.
        rows: ``(N, D)`` their trained rows (targets: no gradient reaches them).
        select: ``(N,)`` bool, the rows to align.
        weight: ``(N,)`` how many positions each row stands for (deduplicated forwards).
    """
    w = select.to(syn.dtype)
    if weight is not None:
        w = w * weight.to(syn.dtype)
    total = w.sum()
    if not bool(total > 0):
        return None
    gap = 1.0 - F.cosine_similarity(syn, rows.detach(), dim=-1)  # (N,)
    return (gap * w).sum() / total
