"""Tuned row-optimizer kernels: the twins of :mod:`.fused_reference`, same signatures.

What changes against the reference (``benchmarks/train_step.py`` times both):

- the fused lookup's backward deduplicates the ids in numpy on one thread (a
  presence table over the whole table when it is at most 32x the batch plus
  1 Mi rows, else a sort: :func:`.fast.unique_ids`; 0.5-1.4 ms against 6.8 ms
  for 65,536 ids of 1,000,000) and sums the gradient rows with the
  single-threaded scatter of :func:`.fast.segment_sum`, into 2 MiB pages;
- the fused bag's backward, without weights or padding, gathers each distinct
  id's bag gradient and adds the few repeats when the ids are mostly distinct,
  else scatters the ``(B, D)`` bag gradient once per column (bags of at most
  64) straight into the summed rows: no ``(B, L, D)`` entries (16 ms for 3,276
  bags of 20 at D=128);
- the row updates gather each touched state row once, update it in place and
  write it back with ``index_copy_`` (the rows are distinct), and add the step
  to the table with one single-threaded ``index_add_``; the reference adds to
  the state with a scatter and then gathers it again.

- all of a fused backward runs on one intra-op thread: on this busy 2-core
  machine two threads made the (N, D) elementwise work 5-8x slower. Re-measured for
  issue 14: the dedupe's scatter took 8 ms on one thread, 25-93 ms on two
  (``index_add_``), 19-48 ms as a CSR matmul, 8-30 ms with torch's embedding
  backward; the row update 21 ms on one, 40-88 ms on two.

Measured here (V=1,000,000, D=128, 65,536 uniform ids, ``RowWiseAdagrad``,
forward + backward, medians of 5 steps in one run, machine under load): fused
fast 415 ms, fused reference 729 ms, unfused (``sparse=True`` + the optimizer)
1,157 ms, ``nn.Embedding(sparse=True)`` + ``SparseAdam`` 1,767 ms; bags of 20
(``mode="sum"``): fused 369 ms, unfused 833 ms, ``nn.EmbeddingBag`` +
``SparseAdam`` 1,639 ms.

Off the CPU, inside ``torch.func`` transforms and while tracing, every function
defers to its reference twin.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from synthembed._kernels import fast
from synthembed._kernels import fused_reference as reference
from synthembed._kernels.alloc import BufferPool
from synthembed._kernels.fused_reference import RowUpdate
from synthembed._kernels.threads import one_thread

__all__ = [
    "adagrad_rows",
    "adamw_rows",
    "dedupe_grad",
    "fused_bag",
    "fused_lookup",
    "rowwise_adagrad_rows",
    "sgd_rows",
]


_HALF = (torch.float16, torch.bfloat16)  # torch's own scatter and rounding for these


def _applies(t: torch.Tensor) -> bool:
    return t.device.type == "cpu" and not fast.functorch_active() and not fast.tracing()


def _column(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A ``(R,)`` per-row factor shaped to broadcast over ``like``'s rows."""
    return x.reshape((-1,) + (1,) * (like.dim() - 1))


def sgd_rows(
    weight: torch.Tensor, rows: torch.Tensor, grad: torch.Tensor, *, lr: float, weight_decay: float
) -> None:
    """``w_r -= lr * (g_r + weight_decay * w_r)``."""
    if not _applies(weight):
        return reference.sgd_rows(weight, rows, grad, lr=lr, weight_decay=weight_decay)
    with one_thread():
        if weight_decay != 0:
            grad = grad.add(weight.index_select(0, rows), alpha=weight_decay)
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
    if not _applies(weight):
        return reference.adagrad_rows(
            weight, total, rows, grad, lr=lr, weight_decay=weight_decay, eps=eps
        )
    with one_thread():
        if weight_decay != 0:
            grad = grad.add(weight.index_select(0, rows), alpha=weight_decay)
        s = total.index_select(0, rows).addcmul_(grad, grad)  # (R, D)
        total.index_copy_(0, rows, s)
        step = torch.div(grad, s.sqrt_().add_(eps), out=s).mul_(-lr)  # s's buffer: the step
        weight.index_add_(0, rows, step)  # no alpha: see rowwise_adagrad_rows


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
    if not _applies(weight):
        return reference.rowwise_adagrad_rows(
            weight, total, rows, grad, lr=lr, weight_decay=weight_decay, eps=eps
        )
    with one_thread():
        if weight_decay != 0:
            grad = grad.add(weight.index_select(0, rows), alpha=weight_decay)
        flat = grad.reshape(grad.shape[0], -1)  # (R, D)
        # mean(g ** 2) as a squared norm: no (R, D) temporary
        mean_sq = torch.linalg.vector_norm(flat, dim=1).square_().div_(flat.shape[1])
        s = total.index_select(0, rows).add_(mean_sq)  # (R,)
        total.index_copy_(0, rows, s)
        out = fast.empty(grad.shape[0], flat.shape[1], device=grad.device, dtype=grad.dtype)
        # -lr folded into the (R,) factor: index_add_ with alpha != 1 took 15.5 ms against
        # 6.5 ms without for 63,368 rows of 128 (one thread, 1,000,000-row table)
        factor = torch.div(-lr, s.sqrt_().add_(eps))  # (R,)
        step = torch.mul(flat, _column(factor, flat), out=out)
        weight.index_add_(0, rows, step.reshape(grad.shape))


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
    if not _applies(weight):
        return reference.adamw_rows(
            weight,
            exp_avg,
            exp_avg_sq,
            last_step,
            rows,
            grad,
            step=step,
            lr=lr,
            beta1=beta1,
            beta2=beta2,
            eps=eps,
            weight_decay=weight_decay,
            lazy_correction=lazy_correction,
        )
    with one_thread():
        m = exp_avg.index_select(0, rows)  # (R, D)
        v = exp_avg_sq.index_select(0, rows)
        if lazy_correction:
            missed = (step - 1 - last_step.index_select(0, rows)).to(weight.dtype)  # (R,)
            m.mul_(_column(torch.pow(beta1, missed), m))
            v.mul_(_column(torch.pow(beta2, missed), v))
        m.mul_(beta1).add_(grad, alpha=1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        exp_avg.index_copy_(0, rows, m)
        exp_avg_sq.index_copy_(0, rows, v)
        last_step.index_fill_(0, rows, step)
        bias1 = 1 - beta1**step
        bias2_sqrt = (1 - beta2**step) ** 0.5
        w = weight.index_select(0, rows)
        if weight_decay != 0:
            w.mul_(1 - lr * weight_decay)
        w.addcdiv_(m, v.sqrt_().div_(bias2_sqrt).add_(eps), value=-lr / bias1)
        weight.index_copy_(0, rows, w)


#: A presence table over the whole table dedupes when it is at most this many times the
#: batch (plus a floor): 65,536 ids of 1,000,000 rows took 0.5-1.4 ms against 6.8 ms
#: for ``np.unique``'s sort here, uniform or Zipf.
_PRESENCE_RATIO = 32
_PRESENCE_FLOOR = 1 << 20


def _distinct(flat: torch.Tensor, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted distinct values ``(U,)`` of valid ids ``flat`` ``(N,)`` in ``[0, rows)`` and
    each id's position among them ``(N,)``, in numpy on one thread."""
    if rows > _PRESENCE_RATIO * flat.numel() + _PRESENCE_FLOOR:
        return fast.unique_ids(flat, low=0, high=rows)
    k = flat.numpy()
    present = np.zeros(rows, dtype=bool)
    present[k] = True
    distinct = np.flatnonzero(present)
    position = np.empty(rows, dtype=np.int64)
    position[distinct] = np.arange(distinct.size)
    return torch.from_numpy(distinct.astype(np.int64, copy=False)), torch.from_numpy(position[k])


def dedupe_grad(
    ids: torch.Tensor,
    grad: torch.Tensor,
    padding_idx: int | None,
    scale_grad_by_freq: bool,
    rows: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct sorted ids ``(U,)`` (padding left out) and their summed gradient rows."""
    if not _applies(grad):
        return reference.dedupe_grad(ids, grad, padding_idx, scale_grad_by_freq, rows)
    flat = ids.reshape(-1)
    g = grad.reshape(flat.numel(), -1)
    if padding_idx is not None:
        keep = flat != padding_idx
        if not bool(keep.all()):
            flat, g = flat[keep], g[keep]
    uniq, inverse = _distinct(flat.long(), rows)
    summed = fast.segment_sum(g, inverse, uniq.numel())
    if scale_grad_by_freq:
        counts = torch.bincount(inverse, minlength=uniq.numel()).to(summed.dtype)
        summed.div_(counts.unsqueeze(1))
    return uniq, summed


#: Lookup outputs, reused once the caller drops them (at most 2 idle): a fresh 32 MiB
#: output on 2 MiB pages took 5 or 35-40 ms here (the kernel compacting memory), a
#: reused one 3 ms (65,536 Zipf ids of 128).
_OUTPUTS = BufferPool(size=2)


class _FusedLookup(torch.autograd.Function):
    """``weight[ids]`` into 2 MiB pages; backward updates the rows, no gradient."""

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
        flat = ids.reshape(-1)
        out = _OUTPUTS.empty(flat.numel(), weight.shape[1], weight.device, weight.dtype)
        torch.index_select(weight, 0, flat, out=out)
        return out.reshape(*ids.shape, weight.shape[1])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, ...]:  # type: ignore[override]
        (ids,) = ctx.saved_tensors
        with one_thread():  # (N, D)-sized scatters and row updates: one thread pays here
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
    """``weight[ids]``; backward calls ``update(rows, grad)`` (see the reference twin)."""
    if not _applies(weight) or weight.dtype in _HALF:
        return reference.fused_lookup(
            weight, ids, update, padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq
        )
    out: torch.Tensor = _FusedLookup.apply(weight, ids, update, padding_idx, scale_grad_by_freq)
    return out


def _dedupe_one_thread(
    ids: torch.Tensor,
    grad: torch.Tensor,
    padding_idx: int | None,
    scale_grad_by_freq: bool,
    rows: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    with one_thread():
        return dedupe_grad(ids, grad, padding_idx, scale_grad_by_freq, rows)


#: Bags at most this long sum their gradient with one scatter of the ``(B, D)`` bag
#: gradient per column; longer ones gather it to ``(B * L, D)`` once.
_COLUMN_SCATTER_MAX = 64


#: Batches whose repeated ids are at most this share of the entries gather each distinct
#: row's bag gradient and add the repeats; more repeats scatter per column. 65,520
#: uniform ids (one thread, quiet machine): 1.5 against 4.0 ms at V=10M D=64, 3.0
#: against 7.4 ms at V=1M D=128; Zipf(1.1) ids (74% repeats): 5.6 against 3.5 ms.
_GATHER_REPEATS = 0.25


def _bag_sums(
    grad: torch.Tensor, inverse: torch.Tensor, rows: int, batch: int, length: int
) -> torch.Tensor:
    """``out[inverse[b * L + l]] += grad[b]``: ``(B, D)`` bag gradients -> ``(rows, D)``."""
    n = inverse.numel()
    if n - rows <= _GATHER_REPEATS * n:
        inv = inverse.numpy()
        entry = np.empty(rows, dtype=np.int64)
        entry[inv] = np.arange(n)  # one entry per distinct id (whichever write lands)
        out = grad.index_select(0, torch.from_numpy(entry // length))  # (rows, D)
        repeats = np.flatnonzero(entry[inv] != np.arange(n))  # every other entry
        if repeats.size:
            out.index_add_(
                0,
                torch.from_numpy(inv[repeats]),
                grad.index_select(0, torch.from_numpy(repeats // length)),
            )
        return out
    out = fast.empty(rows, grad.shape[1], device=grad.device, dtype=grad.dtype, zero=True)
    if length <= _COLUMN_SCATTER_MAX:
        for col in inverse.reshape(batch, length).t().contiguous():  # (L, B)
            out.index_add_(0, col, grad)
    else:
        bag_of = torch.arange(batch).repeat_interleave(length)  # (B * L,)
        out.index_add_(0, inverse, grad.index_select(0, bag_of))
    return out


class _FusedPlainBag(torch.autograd.Function):
    """Unweighted bags without padding: each entry's gradient is its bag's (``/ L`` for
    ``"mean"``), so the summed gradient of a distinct id is a scatter of the ``(B, D)``
    bag gradient by each column's positions: no ``(B, L, D)`` entries (16 ms of the
    reference's backward for 3,276 bags of 20 at D=128 here)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        weight: torch.Tensor,
        ids: torch.Tensor,
        mode: str,
        update: RowUpdate,
        scale_grad_by_freq: bool,
    ) -> torch.Tensor:
        ctx.save_for_backward(ids)
        ctx.mode, ctx.update, ctx.scale, ctx.rows = (
            mode,
            update,
            scale_grad_by_freq,
            weight.shape[0],
        )
        return F.embedding_bag(ids, weight, mode=mode)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, ...]:  # type: ignore[override]
        (ids,) = ctx.saved_tensors
        batch, length = ids.shape
        with one_thread():  # single-threaded scatters: see fast.index_add_rows
            if ctx.mode == "mean":  # the reference's factor: ones / L, in grad's dtype
                grad = grad * (grad.new_ones(()) / length)
            uniq, inverse = _distinct(ids.reshape(-1).long(), ctx.rows)
            summed = _bag_sums(grad, inverse, uniq.numel(), batch, length)
            if ctx.scale:
                counts = torch.bincount(inverse, minlength=uniq.numel()).to(summed.dtype)
                summed.div_(counts.unsqueeze(1))
            if uniq.numel():
                with torch.no_grad():
                    ctx.update(uniq, summed)
        return None, None, None, None, None


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
    """Pooled ``(B, L)`` bags; backward calls ``update(rows, grad)`` (see the reference
    twin): torch's bag kernel forward, the numpy dedupe and one-thread scatter backward,
    with the bag gradient scattered per column when no weights or padding apply."""
    if not _applies(weight) or weight.dtype in _HALF:
        return reference.fused_bag(
            weight,
            ids,
            mode,
            update,
            per_sample_weights=per_sample_weights,
            padding_idx=padding_idx,
            scale_grad_by_freq=scale_grad_by_freq,
        )
    if per_sample_weights is None and padding_idx is None and ids.numel() and mode != "max":
        plain: torch.Tensor = _FusedPlainBag.apply(weight, ids, mode, update, scale_grad_by_freq)
        return plain
    out: torch.Tensor = reference.FusedBag.apply(
        weight,
        ids,
        per_sample_weights,
        mode,
        update,
        padding_idx,
        scale_grad_by_freq,
        _dedupe_one_thread,
    )
    return out
