"""The one home of CPU speed work: a small kernel API with two implementations.

Layers and synthesizers call only the functions here. Each has a plain twin in
:mod:`.reference` (public torch operations, no tricks) and a tuned one in
:mod:`.fast` (2 MiB pages, buffer reuse, numpy routes for small work, one
intra-op thread where two scale badly, custom autograd functions where a
benchmark shows they pay). The environment variable
``SYNTHEMBED_KERNELS=reference|fast`` picks the set at import (default
``fast``); :func:`synthembed.set_kernels` and :func:`synthembed.use_kernels`
switch at run time. Results agree between the two sets up to float rounding
(``tests/_kernels/`` checks each pair, gradients included).

The API:

- ``empty(rows, cols, *, device, dtype, zero)``: a table, output or gradient.
- ``lookup(weight, ids, *, padding_idx, max_norm, norm_type, scale_grad_by_freq,
  sparse, grad_pool, out_pool, grad_accumulation, opaque)``: ``(*)`` ids -> ``(*, D)``,
  nn.Embedding's gradients (or, for half-precision tables, a float32 sum).
- ``renorm_rows(weight, ids, max_norm, norm_type)``: nn.Embedding's ``max_norm``, in place.
- ``bag(weight, ids, mode, *, per_sample_weights, padding_idx, ...)``: ``(B, L)`` -> ``(B, D)``.
- ``index_add_rows(table, ids, rows)``: scatter-add rows in input order.
- ``id_range(ids)``: smallest and largest id.
- ``tracing()``, ``assert_in_range(ids, high, message)``: whether torch.compile,
  torch.export, TorchScript or torch.fx traces the call, and an id check that
  stays in the traced graph (values cannot be read while tracing).
- ``column_sums(x)``: ``x.sum(0)``.
- ``at_backward_end(callback)``: run ``callback`` when the running backward finishes;
  ``ddp_ignore(module, names)``: parameters DDP must leave alone (fused tables).
- ``unique_ids(flat)``, ``expand_rows(src, inverse, pool)``, ``segment_sum(grad, inverse,
  rows)``: distinct ids with their inverse, and the copy back (with its gradient).
- ``sgd_rows``, ``adagrad_rows``, ``rowwise_adagrad_rows``, ``adamw_rows``: the row
  updates of :mod:`synthembed.optim` (distinct rows, summed gradients, in place).
- ``fused_lookup(weight, ids, update, *, padding_idx, scale_grad_by_freq)``:
  ``weight[ids]`` whose backward deduplicates the ids, sums their gradient rows and
  calls ``update(rows, grad)`` instead of producing a gradient (fused optimizers).
  ``fused_bag(weight, ids, mode, update, *, per_sample_weights, ...)``: the same for
  ``(B, L)`` bags pooled by sum or mean. Twins in :mod:`.fused_reference` and
  :mod:`.fused_fast`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, Literal

import torch

from synthembed._kernels import fast, fused_fast, fused_reference, reference
from synthembed._kernels.alloc import POOL_MIN_ELEMENTS, BufferPool
from synthembed._kernels.threads import one_thread
from synthembed.errors import ConfigError

__all__ = [
    "KERNEL_SETS",
    "POOL_MIN_ELEMENTS",
    "BufferPool",
    "KernelSet",
    "RowUpdate",
    "adagrad_rows",
    "adamw_rows",
    "assert_in_range",
    "at_backward_end",
    "bag",
    "column_sums",
    "ddp_ignore",
    "empty",
    "expand_rows",
    "functorch_active",
    "fused_bag",
    "fused_lookup",
    "get_kernels",
    "id_range",
    "index_add_rows",
    "lookup",
    "one_thread",
    "renorm_rows",
    "rowwise_adagrad_rows",
    "segment_sum",
    "set_kernels",
    "sgd_rows",
    "tensor_version",
    "tracing",
    "unique_ids",
    "use_kernels",
]

KernelSet = Literal["fast", "reference"]
KERNEL_SETS: tuple[str, ...] = ("fast", "reference")
_SETS: dict[str, ModuleType] = {"fast": fast, "reference": reference}
_FUSED_SETS: dict[str, ModuleType] = {"fast": fused_fast, "reference": fused_reference}
RowUpdate = fused_reference.RowUpdate
_ENV = "SYNTHEMBED_KERNELS"


def _checked(name: Any, where: str) -> str:
    if name not in _SETS:
        raise ConfigError(
            f"{where} must be one of {list(KERNEL_SETS)}; got {name!r}. "
            "'fast' is the tuned default, 'reference' the plain-torch twin."
        )
    return str(name)


_state = threading.local()
_default = _checked(
    os.environ.get(_ENV, "fast").strip() or "fast", f"The environment variable {_ENV}"
)


def get_kernels() -> str:
    """The kernel set in use in this thread: ``"fast"`` or ``"reference"``."""
    return str(getattr(_state, "name", _default))


def set_kernels(name: KernelSet) -> None:
    """Use the ``"fast"`` (default) or ``"reference"`` kernels from now on, in every thread.

    Raises:
        ConfigError: ``name`` is not a kernel set.

    Example:
        >>> import synthembed as se
        >>> se.set_kernels("reference"); se.get_kernels()
        'reference'
        >>> se.set_kernels("fast")
    """
    global _default
    _default = _checked(name, "set_kernels(name)")
    _state.__dict__.pop("name", None)  # takes effect at once, inside a use_kernels block too


@contextlib.contextmanager
def use_kernels(name: KernelSet) -> Iterator[None]:
    """Use the given kernel set inside a ``with`` block (this thread only), then restore.

    Raises:
        ConfigError: ``name`` is not a kernel set.

    Example:
        >>> import synthembed as se
        >>> with se.use_kernels("reference"):
        ...     se.get_kernels()
        'reference'
    """
    checked = _checked(name, "use_kernels(name)")
    had = hasattr(_state, "name")
    previous = getattr(_state, "name", None)
    _state.name = checked
    try:
        yield
    finally:
        if had:
            _state.name = previous
        else:
            _state.__dict__.pop("name", None)


def _impl() -> ModuleType:
    return _SETS[get_kernels()]


def tensor_version(t: torch.Tensor) -> int:
    """``t``'s in-place version counter (a private torch attribute): a cache keyed on it
    knows when the tensor changed (``Vectors.unit_vectors``)."""
    return int(t._version)


def at_backward_end(callback: Callable[[], None]) -> None:
    """Run ``callback`` once the backward pass now running has finished (call it from a
    hook inside that backward). The autograd engine's callback queue is private torch,
    the one DDP uses to finish its gradient reduction."""
    torch.autograd.Variable._execution_engine.queue_callback(callback)  # type: ignore[attr-defined]


def ddp_ignore(module: torch.nn.Module, names: list[str]) -> list[str]:
    """Have ``DistributedDataParallel`` leave the parameters and buffers ``names`` of
    ``module`` alone (a private DDP hook); returns the names ignored before, to restore."""
    from torch.nn.parallel import DistributedDataParallel

    before = list(getattr(module, "_ddp_params_and_buffers_to_ignore", []))
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, names)
    return before


def functorch_active() -> bool:
    """Whether a ``torch.func`` transform (vmap, grad) runs: tensor values cannot be read."""
    return fast.functorch_active()


tracing = fast.tracing  # no wrapper: layers ask once per call, it should cost little


def assert_in_range(ids: torch.Tensor, high: int, message: str) -> None:
    """Fail with ``message`` (a ``RuntimeError``) when an id lies outside ``[0, high)``.

    The check is an operation of the graph (``torch._assert_async``), so it runs in
    compiled and exported programs, where Python cannot read the ids' values.
    """
    torch._assert_async(((ids >= 0) & (ids < high)).all(), message)


def empty(
    rows: int,
    cols: int,
    *,
    device: Any = None,
    dtype: torch.dtype | None = None,
    zero: bool = False,
) -> torch.Tensor:
    """An uninitialised (or zeroed) ``(rows, cols)`` tensor for a table, output or gradient."""
    out: torch.Tensor = _impl().empty(rows, cols, device=device, dtype=dtype, zero=zero)
    return out


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
    grad_accumulation: Literal["torch", "float32"] = "torch",
    opaque: bool | None = None,
) -> torch.Tensor:
    """``weight[ids]``: ``(*)`` -> ``(*, D)`` with ``nn.Embedding``'s semantics and gradients.

    ``grad_pool`` / ``out_pool`` let the fast set reuse dense-gradient and output
    buffers between steps (the reference set ignores them).
    ``grad_accumulation``: for a float16/bfloat16 table, ``"torch"`` gives
    ``nn.Embedding``'s dense gradient bit for bit (rows added one by one, rounded
    after each); ``"float32"`` sums in float32 and rounds once (closer to the
    exact sum). Other dtypes and sparse gradients are the same either way.
    ``opaque``: whether the call is traced or inside a ``torch.func`` transform
    (``tracing() or functorch_active()``), when the caller already knows it (a layer
    asks once per call); None: found out here.
    """
    out: torch.Tensor = _impl().lookup(
        weight,
        ids,
        padding_idx=padding_idx,
        max_norm=max_norm,
        norm_type=norm_type,
        scale_grad_by_freq=scale_grad_by_freq,
        sparse=sparse,
        grad_pool=grad_pool,
        out_pool=out_pool,
        grad_accumulation=grad_accumulation,
        opaque=opaque,
    )
    return out


def renorm_rows(weight: torch.Tensor, ids: torch.Tensor, max_norm: float, norm_type: float) -> None:
    """Rescale, in place, the rows of ``ids`` whose ``norm_type``-norm exceeds ``max_norm``."""
    _impl().renorm_rows(weight, ids, max_norm, norm_type)


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
    """Pool ``(B, L)`` bags of ids into ``(B, D)`` as ``nn.EmbeddingBag`` does."""
    out: torch.Tensor = _impl().bag(
        weight,
        ids,
        mode,
        per_sample_weights=per_sample_weights,
        padding_idx=padding_idx,
        scale_grad_by_freq=scale_grad_by_freq,
        sparse=sparse,
        grad_pool=grad_pool,
    )
    return out


def index_add_rows(table: torch.Tensor, ids: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``table[ids[i]] += rows[i]`` in input order; returns ``table``."""
    out: torch.Tensor = _impl().index_add_rows(table, ids, rows)
    return out


def id_range(ids: torch.Tensor) -> tuple[int, int]:
    """The smallest and largest value of a non-empty integer tensor."""
    low, high = _impl().id_range(ids)
    return int(low), int(high)


def column_sums(x: torch.Tensor) -> torch.Tensor:
    """``x.sum(0)`` of a 2-d tensor."""
    out: torch.Tensor = _impl().column_sums(x)
    return out


def unique_ids(
    keys: torch.Tensor, *, low: int | None = None, high: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted distinct values ``(U,)`` of 1-d integer ``keys`` and each key's position
    among them ``(N,)`` (``torch.unique(keys, sorted=True, return_inverse=True)``).
    ``low``/``high``: bounds of the keys (``low <= key < high``), when known."""
    uniq, inverse = _impl().unique_ids(keys, low=low, high=high)
    return uniq, inverse


def expand_rows(
    src: torch.Tensor, inverse: torch.Tensor, pool: BufferPool | None = None
) -> torch.Tensor:
    """``src[inverse]``: ``(U, D)`` distinct rows copied to ``(N, D)`` positions
    (differentiable; the gradient is :func:`segment_sum`)."""
    out: torch.Tensor = _impl().expand_rows(src, inverse, pool)
    return out


def segment_sum(grad: torch.Tensor, inverse: torch.Tensor, rows: int) -> torch.Tensor:
    """``out[inverse[i]] += grad[i]``: ``(N, D)`` -> ``(rows, D)``."""
    out: torch.Tensor = _impl().segment_sum(grad, inverse, rows)
    return out


def _fused() -> ModuleType:
    return _FUSED_SETS[get_kernels()]


def sgd_rows(
    weight: torch.Tensor, rows: torch.Tensor, grad: torch.Tensor, *, lr: float, weight_decay: float
) -> None:
    """``w_r -= lr * (g_r + weight_decay * w_r)`` for distinct ``rows``, in place."""
    _fused().sgd_rows(weight, rows, grad, lr=lr, weight_decay=weight_decay)


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
    """Adagrad (one accumulator ``total`` per value) on distinct ``rows``, in place."""
    _fused().adagrad_rows(weight, total, rows, grad, lr=lr, weight_decay=weight_decay, eps=eps)


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
    """Row-wise Adagrad (one accumulator ``total`` per row) on distinct ``rows``, in place."""
    _fused().rowwise_adagrad_rows(
        weight, total, rows, grad, lr=lr, weight_decay=weight_decay, eps=eps
    )


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
    """Lazy AdamW with decoupled weight decay on distinct ``rows``, in place."""
    _fused().adamw_rows(
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


def fused_lookup(
    weight: torch.Tensor,
    ids: torch.Tensor,
    update: RowUpdate,
    *,
    padding_idx: int | None = None,
    scale_grad_by_freq: bool = False,
) -> torch.Tensor:
    """``weight[ids]``: ``(*)`` -> ``(*, D)``, whose backward gives ``weight`` no gradient:
    it deduplicates the ids (``padding_idx`` left out), sums their gradient rows
    (divided by each id's count with ``scale_grad_by_freq``) and calls
    ``update(rows, grad)`` once with the distinct sorted rows ``(U,)`` and the sums
    ``(U, D)``, under ``torch.no_grad()``."""
    out: torch.Tensor = _fused().fused_lookup(
        weight, ids, update, padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq
    )
    return out


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
    """Pool ``(B, L)`` bags into ``(B, D)`` (``mode`` ``"sum"`` or ``"mean"``, padding left
    out, as ``nn.EmbeddingBag``); backward updates the rows through ``update`` as
    :func:`fused_lookup` does and passes ``per_sample_weights`` their gradient."""
    out: torch.Tensor = _fused().fused_bag(
        weight,
        ids,
        mode,
        update,
        per_sample_weights=per_sample_weights,
        padding_idx=padding_idx,
        scale_grad_by_freq=scale_grad_by_freq,
    )
    return out
