"""Growing a table keeps its optimizers working.

synthembed's ``grow`` / ``add_items`` append rows to a table *in place*: the
weight stays the same :class:`torch.nn.Parameter` object (its storage is
replaced by a larger one, old rows first), so an optimizer built before the
growth keeps training it. Optimizers without per-row state (plain SGD) need
nothing more.

Optimizers with per-row state (torch's Adam, Adagrad, SparseAdam, SGD with
momentum, the optimizers of :mod:`synthembed.optim`) hold tensors sized for the
old row count. :func:`grow_state` pads them with the state of a row that never
trained (zeros; Adagrad's ``initial_accumulator_value`` for its sums). Until it
is called, the optimizer's next ``step()`` raises :class:`StaleStateError`
naming the parameter, its old and new row counts and the fix: a stale state is
never used silently. (A step-pre-hook of ``torch.optim``, registered once at
the first growth, checks only parameters synthembed grew.)

Fused tables (``fused_optimizer=``) pad their own state as they grow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.weak import WeakIdKeyDictionary

from synthembed.errors import ConfigError

__all__ = ["StaleStateError", "grow_parameter", "grow_state"]


class StaleStateError(ConfigError, RuntimeError):
    """An optimizer holds per-row state sized for a table before synthembed grew it."""


@dataclass
class _Growth:
    name: str
    sizes: list[int] = field(default_factory=list)  # row counts before each growth


_GROWN: Any = WeakIdKeyDictionary()  # Parameter -> _Growth
_hook: Any = None


def grow_parameter(param: torch.Tensor, table: torch.Tensor, name: str) -> None:
    """Make ``param`` hold ``table`` (its rows first, new rows after), keeping the object.

    A gradient already accumulated is padded with zero rows. ``name`` (e.g.
    ``"Embedding.weight"``) is what a stale-state error calls the parameter.
    """
    global _hook
    old = int(param.shape[0])
    grad = param.grad
    with torch.no_grad():
        param.data = table
    if grad is not None:
        size = (int(table.shape[0]), *grad.shape[1:])
        if grad.is_sparse:
            grad = grad.coalesce()
            param.grad = torch.sparse_coo_tensor(
                grad.indices(), grad.values(), size, is_coalesced=True, check_invariants=False
            )
        else:
            padded = grad.new_zeros(size)
            padded[:old] = grad
            param.grad = padded
    entry = _GROWN.get(param)
    if entry is None:
        entry = _Growth(name)
        _GROWN[param] = entry
    entry.sizes.append(old)
    if _hook is None:
        _hook = register_optimizer_step_pre_hook(_check_state)


def _stale(p: torch.Tensor, value: Any, sizes: list[int]) -> bool:
    return (
        isinstance(value, torch.Tensor)
        and value.dim() >= 1
        and int(value.shape[0]) != int(p.shape[0])
        and int(value.shape[0]) in sizes
    )


def _check_state(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    if not _GROWN:
        return
    for group in optimizer.param_groups:
        for p in group["params"]:
            entry = _GROWN.get(p)
            state = optimizer.state.get(p) if entry is not None else None
            if not state:
                continue
            for key, value in state.items():
                if _stale(p, value, entry.sizes):
                    raise StaleStateError(
                        f"{type(optimizer).__name__} holds state {key!r} for "
                        f"{int(value.shape[0])} rows of {entry.name}, which now has "
                        f"{int(p.shape[0])} rows (synthembed grew it). Call "
                        "synthembed.optim.grow_state(optimizer) after growing: it pads the "
                        "state with fresh rows (or build a new optimizer)."
                    )


def _fill(optimizer: torch.optim.Optimizer, key: str, group: dict[str, Any]) -> float:
    row_fill = getattr(optimizer, "row_fill", None)
    if callable(row_fill):
        return float(row_fill(key, group))
    if key == "sum":  # torch.optim.Adagrad
        return float(group.get("initial_accumulator_value", 0.0))
    return 0.0


def grow_state(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """Pad ``optimizer``'s per-row state to the row counts of the tables synthembed grew.

    New rows get the state of a row that never trained: zeros (moments, momentum,
    ``last_step``), or Adagrad's ``initial_accumulator_value`` for its sums. Works
    for torch's optimizers and for :mod:`synthembed.optim`'s. Returns ``optimizer``.

    Example:
        >>> import torch, synthembed as se
        >>> emb = se.Embedding(4, 2)
        >>> opt = torch.optim.Adam(emb.parameters())
        >>> emb(torch.tensor([1])).sum().backward(); opt.step()
        >>> _ = emb.grow(3)
        >>> _ = se.optim.grow_state(opt)
        >>> tuple(opt.state[emb.weight]["exp_avg"].shape)
        (7, 2)
    """
    for group in optimizer.param_groups:
        for p in group["params"]:
            entry = _GROWN.get(p)
            state = optimizer.state.get(p) if entry is not None else None
            if not state:
                continue
            rows = int(p.shape[0])
            for key, value in list(state.items()):
                if not _stale(p, value, entry.sizes):
                    continue
                extra = value.new_full(
                    (rows - int(value.shape[0]), *value.shape[1:]), _fill(optimizer, key, group)
                )
                state[key] = torch.cat([value, extra])
    return optimizer
