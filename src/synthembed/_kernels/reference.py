"""The reference kernels: public torch operations only, no tricks.

Each function here is the plain meaning of its twin in :mod:`.fast`; the tests
check that the two agree (``tests/_kernels/``) and the benchmarks time both.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from synthembed._kernels.alloc import BufferPool

#: Tables whose dense gradient depends on how the rows are accumulated (see ``lookup``).
HALF_DTYPES = (torch.float16, torch.bfloat16)

__all__ = [
    "HALF_DTYPES",
    "bag",
    "column_sums",
    "empty",
    "expand_rows",
    "id_range",
    "index_add_rows",
    "lookup",
    "renorm_rows",
    "segment_sum",
    "unique_ids",
]


def empty(
    rows: int,
    cols: int,
    *,
    device: Any = None,
    dtype: torch.dtype | None = None,
    zero: bool = False,
) -> torch.Tensor:
    """An uninitialised (or zeroed) ``(rows, cols)`` tensor from torch's allocator."""
    make = torch.zeros if zero else torch.empty
    return make((rows, cols), device=device, dtype=dtype or torch.get_default_dtype())


def lookup(
    weight: torch.Tensor,
    ids: torch.Tensor,
    *,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
    grad_pool: BufferPool | None = None,
    out_pool: BufferPool | None = None,
    grad_accumulation: str = "torch",
    opaque: bool | None = None,
) -> torch.Tensor:
    """``weight[ids]`` ``(*)`` -> ``(*, D)`` with nn.Embedding's semantics and gradients.

    ``grad_accumulation="float32"`` sums a half-precision table's dense gradient
    in float32 and rounds once (torch rounds after every added row); other tables
    and sparse gradients are unaffected. ``opaque`` is the fast twin's (unused here).
    """
    if (
        grad_accumulation == "float32"
        and weight.dtype in HALF_DTYPES
        and not sparse
        and weight.requires_grad
        and torch.is_grad_enabled()
    ):
        if max_norm is not None:
            renorm_rows(weight, ids, max_norm, norm_type)
        # The lookup of a float32 view of the table: same values (half -> float32 -> half
        # is exact); autograd sums the gradient in float32 and rounds it once.
        wide = F.embedding(ids, weight.float(), padding_idx, None, 2.0, scale_grad_by_freq)
        return wide.to(weight.dtype)
    return F.embedding(ids, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse)


def renorm_rows(weight: torch.Tensor, ids: torch.Tensor, max_norm: float, norm_type: float) -> None:
    """Rescale, in place, the rows of ``ids`` whose norm exceeds ``max_norm`` (torch's formula)."""
    with torch.no_grad():
        torch.embedding_renorm_(weight, ids.reshape(-1), max_norm, norm_type)


def bag(
    weight: torch.Tensor,
    ids: torch.Tensor,
    mode: str,
    *,
    per_sample_weights: torch.Tensor | None = None,
    padding_idx: int | None = None,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
    grad_pool: BufferPool | None = None,
) -> torch.Tensor:
    """Pool ``(B, L)`` bags of ids into ``(B, D)``, as ``nn.EmbeddingBag`` does."""
    return F.embedding_bag(
        ids,
        weight,
        mode=mode,
        scale_grad_by_freq=scale_grad_by_freq,
        sparse=sparse,
        per_sample_weights=per_sample_weights,
        padding_idx=padding_idx,
    )


def index_add_rows(table: torch.Tensor, ids: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``table[ids[i]] += rows[i]`` in input order; returns ``table``."""
    return table.index_add_(0, ids, rows)


def id_range(ids: torch.Tensor) -> tuple[int, int]:
    """The smallest and largest value of a non-empty integer tensor."""
    low, high = torch.aminmax(ids)
    return int(low), int(high)


def column_sums(x: torch.Tensor) -> torch.Tensor:
    """``x.sum(0)`` of a 2-d tensor."""
    return x.sum(0)


def unique_ids(
    keys: torch.Tensor, *, low: int | None = None, high: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted distinct values ``(U,)`` of 1-d integer ``keys`` ``(N,)`` and each key's
    position among them ``(N,)``; ``low``/``high`` (bounds of the keys) are hints only."""
    uniq, inverse = torch.unique(keys, sorted=True, return_inverse=True)
    return uniq, inverse


def expand_rows(
    src: torch.Tensor, inverse: torch.Tensor, pool: BufferPool | None = None
) -> torch.Tensor:
    """``src[inverse]``: ``(U, D)`` distinct rows copied to ``(N, D)`` positions."""
    return src.index_select(0, inverse)


def segment_sum(grad: torch.Tensor, inverse: torch.Tensor, rows: int) -> torch.Tensor:
    """``out[inverse[i]] += grad[i]``: ``(N, D)`` -> ``(rows, D)`` (the gradient of
    :func:`expand_rows`)."""
    flat = grad.reshape(-1, grad.shape[-1])
    return flat.new_zeros(rows, flat.shape[1]).index_add_(0, inverse, flat)
