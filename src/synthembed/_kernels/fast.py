"""The tuned kernels: today's fastest CPU code for each entry of the kernel API.

Every function has a plain twin in :mod:`.reference` with the same signature
and the same results (gradients included; ``tests/_kernels/`` checks both).
What each trick buys is in BENCHMARKS.md ("fast" against "reference" kernels,
``benchmarks/lookup.py`` and ``benchmarks/synthesis.py``). Off the CPU, under
``scale_grad_by_freq``, inside ``torch.func`` transforms (which need
functional kernels) and while torch.compile, torch.export, TorchScript or
torch.fx trace (tensors may be fake; numpy and pools do not apply) every
function defers to its reference twin; so do lookups in integer or zero-width
tables and bags of half-precision tables (torch's own layouts and rounding).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from synthembed._kernels import reference
from synthembed._kernels.alloc import POOL_MIN_ELEMENTS, BufferPool, empty
from synthembed._kernels.threads import one_thread

__all__ = [
    "bag",
    "column_sums",
    "empty",
    "expand_rows",
    "functorch_active",
    "id_range",
    "index_add_rows",
    "lookup",
    "renorm_rows",
    "segment_sum",
    "tracing",
    "unique_ids",
]

_FLOATS = (torch.float32, torch.float64, torch.float16)


def functorch_active() -> bool:
    """Whether a ``torch.func`` transform (vmap, grad) is running: values cannot be read."""
    return bool(torch._C._are_functorch_transforms_active())


def tracing() -> bool:
    """Whether torch.compile, torch.export, TorchScript or torch.fx traces this call:
    tensors may be fake and numpy routes, pools and value checks do not apply."""
    return bool(_compiling() or _jit_tracing() or _scripting() or _fx_tracing())


# Bound once: the attribute chains cost more than the calls (0.8 -> 0.4 us per check).
_compiling = torch.compiler.is_compiling
_jit_tracing = torch.jit.is_tracing
_scripting = torch.jit.is_scripting
_fx_tracing = torch.fx._symbolic_trace.is_fx_symbolic_tracing


def _applies(weight: torch.Tensor, opaque: bool | None = None) -> bool:
    """Whether the tuned route applies: a CPU table, values readable (``opaque``: the
    caller's ``tracing() or functorch_active()`` when it knows it; None: found out here)."""
    if opaque is None:
        opaque = functorch_active() or tracing()
    return weight.device.type == "cpu" and not opaque


def _out(rows: int, cols: int, like: torch.Tensor, pool: BufferPool | None) -> torch.Tensor:
    if pool is None or rows * cols < POOL_MIN_ELEMENTS:
        return empty(rows, cols, device=like.device, dtype=like.dtype)
    return pool.empty(rows, cols, like.device, like.dtype)


def _zeros(rows: int, cols: int, like: torch.Tensor, pool: BufferPool | None) -> torch.Tensor:
    if pool is None:
        return empty(rows, cols, device=like.device, dtype=like.dtype, zero=True)
    return pool.zeros(rows, cols, like.device, like.dtype)


def _gather(weight: torch.Tensor, ids: torch.Tensor, pool: BufferPool | None) -> torch.Tensor:
    """``weight[ids]`` for 1-d ``ids`` into a fresh (or idle pooled) ``(N, D)`` output."""
    out = _out(ids.numel(), weight.shape[1], weight, pool)
    return torch.index_select(weight, 0, ids, out=out)


def index_add_rows(table: torch.Tensor, ids: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``table[ids[i]] += rows[i]`` in input order (the order torch's embedding backward uses).

    On the CPU ``index_add_`` runs as a scatter over an index expanded to
    ``(N, D)``; with two threads it measured 10x slower here than with one
    (13-23 ms against 230-260 ms for 65,536 rows of 128), so it runs on one.
    """
    if table.device.type != "cpu":
        return table.index_add_(0, ids, rows)
    with one_thread():
        return table.index_add_(0, ids, rows)


def _renorm_gathered(
    weight: torch.Tensor, ids: torch.Tensor, out: torch.Tensor, max_norm: float, norm_type: float
) -> None:
    """Apply ``max_norm`` to rows already gathered into ``out`` and to their table rows.

    torch's ``embedding_renorm_`` sorts the ids and loops over unique rows before
    the lookup (10-45x the lookup's cost). Here the norms come from the gathered
    rows in one pass (torch's own norm kernel, so the same values bit for bit),
    nothing else happens when no row exceeds ``max_norm``, and otherwise only the
    offending rows are rescaled with torch's formula ``row * (max_norm / (norm +
    1e-7))`` (scale computed in double, applied in the table's dtype), in ``out``
    and in the table.
    """
    if out.device.type != "cpu" or out.dtype not in _FLOATS:
        norms = torch.linalg.vector_norm(out, ord=norm_type, dim=1)  # (N,)
        over = norms > max_norm
        if not bool(over.any()):
            return
        scale = torch.where(over, max_norm / (norms.double() + 1e-7), 1.0).to(out.dtype)
        out.mul_(scale.unsqueeze(1))  # (N, D) * (N, 1); rows within the norm times 1.0
        # Duplicate ids write identical values, so the order of writes does not matter.
        weight.index_copy_(0, ids, out)
        return
    with one_thread():
        norms = torch.linalg.vector_norm(out, ord=norm_type, dim=1)  # (N,)
    # The rest on numpy, one thread: N scalars and the offending rows only.
    n = norms.numpy()
    over = n > max_norm
    if not over.any():
        return
    out_np, ids_np = out.numpy(), ids.numpy()
    if over.all():
        out_np *= (max_norm / (n.astype(np.float64) + 1e-7)).astype(n.dtype)[:, None]
        where, rows = ids_np, out_np  # duplicate ids write identical rows
    else:
        pos = np.flatnonzero(over)  # (K,)
        factor = (max_norm / (n[pos].astype(np.float64) + 1e-7)).astype(n.dtype)
        rows = out_np[pos] * factor[:, None]  # (K, D)
        out_np[pos] = rows
        where = ids_np[pos]
    table = weight.detach().numpy()
    if not table.flags.writeable:  # a read-only numpy array behind the weight: torch writes
        weight.index_copy_(0, torch.from_numpy(where), torch.from_numpy(rows))
        return
    table[where] = rows
    # Written through numpy: tell autograd the table changed, as an in-place torch op does.
    torch.autograd.graph.increment_version(weight)


def renorm_rows(weight: torch.Tensor, ids: torch.Tensor, max_norm: float, norm_type: float) -> None:
    """Rescale, in place, the rows of ``ids`` whose norm exceeds ``max_norm`` (torch's formula).

    One vectorised pass over the distinct ids instead of torch's loop over rows.
    """
    if not _applies(weight):
        reference.renorm_rows(weight, ids, max_norm, norm_type)
        return
    with torch.no_grad():
        rows = torch.unique(ids.reshape(-1))
        if rows.numel() == 0:
            return
        gathered = weight.index_select(0, rows)
        _renorm_gathered(weight, rows, gathered, max_norm, norm_type)


def _drop_padding(
    ids: torch.Tensor, rows: torch.Tensor, pad: int, pool: BufferPool | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ids (N,) and gradient rows (N, D) without the entries of the padding id.

    torch masks both with a boolean index; here the positions come from numpy
    and one single-threaded ``index_select`` copies the kept rows (a sequential
    copy: one core nearly saturates memory), into a pooled buffer when given one.
    """
    ids_np = ids.numpy()
    kept_np = np.flatnonzero(ids_np != pad)
    if kept_np.size == ids_np.size:
        return ids, rows
    kept = torch.from_numpy(kept_np)
    n, dim = rows.shape
    if pool is None or n * dim < POOL_MIN_ELEMENTS:
        out = empty(kept_np.size, dim, dtype=rows.dtype)
    else:
        out = pool.empty(n, dim, rows.device, rows.dtype)[: kept_np.size]  # first K rows
    with one_thread():
        torch.index_select(rows, 0, kept, out=out)
    return torch.from_numpy(ids_np[kept_np]), out


class _Lookup(torch.autograd.Function):
    """Row lookup whose outputs and dense gradients live on 2 MiB pages.

    Gradients are the ones :func:`torch.nn.functional.embedding` computes (same
    values, same sparse layout): the dense one accumulates ``grad`` rows into a
    zeroed table in input order and zeroes the padding row; the sparse one lists
    every non-padding id with its gradient row, uncoalesced.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        weight: torch.Tensor,
        ids: torch.Tensor,
        padding_idx: int | None,
        max_norm: float | None,
        norm_type: float,
        sparse: bool,
        grad_pool: BufferPool | None,
        out_pool: BufferPool | None,
        wide: bool,
    ) -> torch.Tensor:
        flat = ids.reshape(-1)
        out = _gather(weight, flat, out_pool)  # (N, D)
        if max_norm is not None:
            _renorm_gathered(weight, flat, out, max_norm, norm_type)
        ctx.save_for_backward(ids)
        ctx.num_weights = weight.shape[0]
        ctx.padding_idx = padding_idx
        ctx.sparse = sparse
        ctx.grad_pool = grad_pool
        ctx.out_pool = out_pool
        ctx.wide = wide
        return out.view(*ids.shape, weight.shape[1])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        (ids,) = ctx.saved_tensors
        dim = grad.shape[-1]
        flat = ids.reshape(-1)
        rows = grad.reshape(flat.numel(), dim)  # (N, D); N explicit: D may be 0
        pad = ctx.padding_idx
        if ctx.sparse:
            if pad is not None:
                flat, rows = _drop_padding(flat, rows, pad, ctx.out_pool)
            grad_weight = torch.sparse_coo_tensor(
                flat.long().unsqueeze(0),
                rows,
                (ctx.num_weights, dim),
                check_invariants=False,
            )
        elif grad.dtype in reference.HALF_DTYPES:
            grad_weight = _half_dense_grad(ctx.num_weights, flat, rows, ctx.wide)
            if pad is not None:
                grad_weight[pad].zero_()
        else:
            grad_weight = _zeros(ctx.num_weights, dim, grad, ctx.grad_pool)
            index_add_rows(grad_weight, flat, rows)
            if pad is not None:
                grad_weight[pad].zero_()
        return grad_weight, None, None, None, None, None, None, None, None


def _half_dense_grad(
    num_weights: int, flat: torch.Tensor, rows: torch.Tensor, wide: bool
) -> torch.Tensor:
    """The dense gradient ``(V, D)`` of a float16/bfloat16 table.

    torch's embedding backward adds the rows one by one into the half-precision
    table, rounding after each. ``index_add_`` does the same with int32 ids, but
    with int64 ids on the CPU it sums in float32 and rounds once (a different,
    more accurate result), so ids go as int32 to be bit-equal to torch;
    ``wide`` asks for the float32 sum instead (the reference twin's
    ``grad_accumulation="float32"``).
    """
    dim = rows.shape[1]
    if wide:
        table = empty(num_weights, dim, dtype=torch.float32, zero=True)
        return index_add_rows(table, flat, rows.float()).to(rows.dtype)
    table = empty(num_weights, dim, dtype=rows.dtype, zero=True)
    return index_add_rows(table, flat.int(), rows)


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
    """``weight[ids]`` ``(*)`` -> ``(*, D)`` with nn.Embedding's semantics and gradients."""
    # torch's layouts for integer and zero-width tables (its sparse gradient of a
    # zero-width table lists no ids) come from torch's own kernel.
    plain = not weight.is_floating_point() or weight.shape[1] == 0
    # Without autograd or max_norm, an output under the pool's size gains nothing here
    # (no 2 MiB pages, no reuse); torch's kernel skips the autograd.Function's cost.
    small = (
        max_norm is None
        and ids.numel() * weight.shape[1] < POOL_MIN_ELEMENTS
        and not (weight.requires_grad and torch.is_grad_enabled())
    )
    if scale_grad_by_freq or plain or small or not _applies(weight, opaque):
        return reference.lookup(
            weight,
            ids,
            padding_idx=padding_idx,
            max_norm=max_norm,
            norm_type=norm_type,
            scale_grad_by_freq=scale_grad_by_freq,
            sparse=sparse,
            grad_accumulation=grad_accumulation,
        )
    wide = grad_accumulation == "float32"
    out: torch.Tensor = _Lookup.apply(
        weight, ids, padding_idx, max_norm, norm_type, sparse, grad_pool, out_pool, wide
    )
    return out


_BAG_MODES = {"sum": 0, "mean": 1, "max": 2}


class _Bag(torch.autograd.Function):
    """``nn.EmbeddingBag`` over ``(B, L)`` ids with a dense gradient on 2 MiB pages.

    The forward is torch's fused bag kernel. The backward spreads ``grad``
    back to the entries (sum: weighted copy, mean: divided by the bag's count
    of non-padding entries, max: to the winning id of each coordinate) and
    accumulates them into a zeroed table from :func:`.alloc.empty` instead of
    torch's ``V x D`` zeros from its own allocator (no 2 MiB pages).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        weight: torch.Tensor,
        ids: torch.Tensor,
        mode: str,
        per_sample_weights: torch.Tensor | None,
        padding_idx: int | None,
        grad_pool: BufferPool | None,
    ) -> torch.Tensor:
        bags, length = ids.shape  # (B, L)
        flat = ids.reshape(-1).long()
        offsets = torch.arange(0, bags * length, length, device=ids.device)  # (B,)
        # aten's training kernel, the one nn.EmbeddingBag runs with grad on (same outputs
        # bit for bit); unlike the forward-only kernel it returns the max winners.
        out, _, _, max_ids = torch.ops.aten._embedding_bag(
            weight,
            flat,
            offsets,
            False,
            _BAG_MODES[mode],
            False,
            None if per_sample_weights is None else per_sample_weights.reshape(-1),
            False,
            -1 if padding_idx is None else padding_idx,
        )
        ctx.save_for_backward(ids, max_ids, per_sample_weights)
        ctx.mode, ctx.padding_idx, ctx.num_weights = mode, padding_idx, weight.shape[0]
        ctx.grad_pool = grad_pool
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        ids, max_ids, psw = ctx.saved_tensors
        bags, length = ids.shape  # (B, L)
        dim = grad.shape[1]
        grad = grad.contiguous()  # (B, D)
        grad_weight = _zeros(ctx.num_weights, dim, grad, ctx.grad_pool)
        pad = ctx.padding_idx
        if pad is None:
            counts = torch.full((bags,), length, device=ids.device)
        else:
            counts = (ids != pad).sum(dim=1)  # (B,) entries that count in each bag
        if ctx.mode == "max":
            filled = counts > 0  # bags with no valid entry pass no gradient
            winners = max_ids[filled]  # (B', D) the id that won each coordinate
            cols = torch.arange(dim, device=grad.device)
            grad_weight.view(-1).index_add_(
                0, (winners * dim + cols).reshape(-1), grad[filled].reshape(-1)
            )
        else:
            bag_of = torch.arange(bags, device=ids.device).repeat_interleave(length)  # (N,)
            rows = _gather(grad, bag_of, None)  # (N, D) each entry's bag gradient
            if psw is not None:
                rows.mul_(psw.reshape(-1, 1))
            if ctx.mode == "mean":
                rows.div_(counts.index_select(0, bag_of).clamp(min=1).unsqueeze(1))
            index_add_rows(grad_weight, ids.reshape(-1), rows)
        if ctx.padding_idx is not None:
            grad_weight[ctx.padding_idx].zero_()
        return grad_weight, None, None, None, None, None


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
    """Pool ``(B, L)`` bags of ids into ``(B, D)``, as ``nn.EmbeddingBag`` does.

    With a gradient to compute, a dense table and a non-empty batch, the
    gradient comes from :class:`_Bag` (2 MiB pages); otherwise torch's kernel.
    """
    needs_grad = torch.is_grad_enabled() and weight.requires_grad
    # _Bag passes no gradient to per_sample_weights: torch's kernel does when they need one.
    psw_grad = per_sample_weights is not None and per_sample_weights.requires_grad
    # Half-precision gradients: torch's kernel rounds in its own order; only it is bit-equal.
    if (
        needs_grad
        and not psw_grad
        and not sparse
        and not scale_grad_by_freq
        and weight.dtype not in reference.HALF_DTYPES
        and ids.numel()
        and _applies(weight)
    ):
        out: torch.Tensor = _Bag.apply(
            weight, ids, mode, per_sample_weights, padding_idx, grad_pool
        )
        return out
    return reference.bag(
        weight,
        ids,
        mode,
        per_sample_weights=per_sample_weights,
        padding_idx=padding_idx,
        scale_grad_by_freq=scale_grad_by_freq,
        sparse=sparse,
    )


def id_range(ids: torch.Tensor) -> tuple[int, int]:
    """Smallest and largest id. CPU tensors go through numpy: one thread, no thread-pool
    barrier, which on a busy machine costs more than the scan itself. A few ids go through
    a Python list: numpy's reductions cost 3 us each, the list's 0.3 us."""
    if ids.device.type == "cpu":
        if ids.dim() == 1 and 0 < ids.numel() <= 64:
            try:
                few = ids.tolist()
            except (RuntimeError, TypeError):  # fake tensors (tracing): the general route
                pass
            else:
                return min(few), max(few)
        try:
            values = ids.detach().numpy()
        except (RuntimeError, TypeError):  # tensors numpy cannot view (e.g. while tracing)
            pass
        else:
            return int(values.min()), int(values.max())
    return reference.id_range(ids)


def column_sums(x: torch.Tensor) -> torch.Tensor:
    """``x.sum(0)`` of a 2-d tensor as a matrix-vector product: torch's column reduction
    measured 8x slower here under load (0.4 ms alone, 8 ms median on a busy machine)."""
    if x.shape[0] == 0:
        return x.new_zeros(x.shape[1])
    ones = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
    return torch.mv(x.t(), ones)


def unique_ids(
    keys: torch.Tensor, *, low: int | None = None, high: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted distinct values ``(U,)`` of 1-d integer ``keys`` ``(N,)`` and each key's
    position among them ``(N,)``.

    On the CPU this runs in numpy, on one thread: these are ``(N,)``-sized integer
    operations, for which torch's thread-pool barriers measured 10-100x the work
    itself on a busy machine. With keys known to lie in ``[low, high)`` and a range
    not much wider than the batch, a presence table replaces the sort
    (``benchmarks/synthesis.py``: every deduplicated row).
    """
    if keys.device.type != "cpu" or functorch_active():
        return reference.unique_ids(keys, low=low, high=high)
    k = keys.numpy()
    if low is not None and high is not None and high - low <= 8 * k.size + 65_536:
        present = np.zeros(high - low, dtype=bool)
        shifted = k - low if low else k
        present[shifted] = True
        distinct = np.flatnonzero(present)
        position = np.empty(high - low, dtype=np.int64)
        position[distinct] = np.arange(distinct.size)
        inverse = position[shifted]
        uniq = distinct + low if low else distinct
    else:
        uniq, inverse = np.unique(k, return_inverse=True)
        inverse = inverse.reshape(-1)
    return (
        torch.from_numpy(np.ascontiguousarray(uniq, dtype=np.int64)),
        torch.from_numpy(np.ascontiguousarray(inverse, dtype=np.int64)),
    )


def segment_sum(grad: torch.Tensor, inverse: torch.Tensor, rows: int) -> torch.Tensor:
    """``out[inverse[i]] += grad[i]``: ``(N, D)`` -> ``(rows, D)``, into a zeroed table on
    2 MiB pages, with :func:`index_add_rows`' single-threaded scatter (8 ms on one thread
    against 84 ms on two for 65,536 rows of 128 here)."""
    flat = grad.reshape(-1, grad.shape[-1])
    if flat.device.type != "cpu":
        return reference.segment_sum(flat, inverse, rows)
    out = empty(rows, flat.shape[1], device=flat.device, dtype=flat.dtype, zero=True)
    return index_add_rows(out, inverse, flat)


class _Expand(torch.autograd.Function):
    """``src[inverse]`` ``(U, D)`` -> ``(N, D)`` into a pooled (or 2 MiB page) output; the
    gradient is :func:`segment_sum`. Pays in ``benchmarks/synthesis.py`` (every deduplicated
    row): torch's ``index_select`` backward runs ``index_add_`` on two threads and allocates
    its ``(U, D)`` zeros and ``(N, D)`` output without 2 MiB pages."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, src: torch.Tensor, inverse: torch.Tensor, pool: BufferPool | None
    ) -> torch.Tensor:
        out = _out(inverse.numel(), src.shape[1], src, pool)
        torch.index_select(src, 0, inverse, out=out)
        ctx.save_for_backward(inverse)
        ctx.rows = src.shape[0]
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        (inverse,) = ctx.saved_tensors
        return segment_sum(grad, inverse, ctx.rows), None, None


def expand_rows(
    src: torch.Tensor, inverse: torch.Tensor, pool: BufferPool | None = None
) -> torch.Tensor:
    """``src[inverse]``: ``(U, D)`` distinct rows copied to ``(N, D)`` positions."""
    if not _applies(src):
        return reference.expand_rows(src, inverse, pool)
    out: torch.Tensor = _Expand.apply(src, inverse, pool)
    return out
