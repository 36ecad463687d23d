"""Fused optimizers: a table updates its rows inside backward, with no gradient tensor.

``synthembed.Embedding(V, D, fused_optimizer=synthembed.optim.RowWiseAdagrad(lr=0.01))``
(and ``fused_optimizer=`` on the table bases ``hash``, ``qr``, ``lowrank`` and
``mixed``): backward deduplicates the batch's ids, sums their gradient rows and
updates those rows and the optimizer state in place
(:func:`synthembed._kernels.fused_lookup`). ``weight.grad`` stays None, so the
table costs no gradient memory and no optimizer pass. The optimizer is given
*without parameters*: any of :class:`~synthembed.optim.SparseSGD`,
:class:`~synthembed.optim.SparseAdagrad`, :class:`~synthembed.optim.RowWiseAdagrad`
and :class:`~synthembed.optim.SparseAdamW`, with the same hyperparameters and
the same updates as the unfused optimizer fed ``sparse=True`` gradients (the
tests check 1e-6 agreement).

- Each backward through the table is one optimizer step. A table used twice
  before one ``backward()`` (positives, then negatives) takes two steps where an
  unfused optimizer takes one with the summed gradient.
- The state lives in the layer (buffers under ``fused.``): ``state_dict``,
  :func:`synthembed.save` / :func:`synthembed.load`, ``deepcopy`` and growth
  carry it.
- Build the optimizer of the rest of the model from
  :func:`dense_parameters` (the fused tables get no gradient, so a torch
  optimizer given them anyway skips them).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, cast

import torch
from torch import nn

from synthembed import _kernels
from synthembed._config import Codec
from synthembed.errors import ConfigError
from synthembed.optim.sparse import (
    RowWiseAdagrad,
    SparseAdagrad,
    SparseAdamW,
    SparseRowOptimizer,
    SparseSGD,
)

__all__ = [
    "FUSED_OPTIMIZER",
    "FusedRows",
    "check_fused_optimizer",
    "dense_parameters",
    "fused_parameters",
]

_OPTIMIZERS: dict[str, type[SparseRowOptimizer]] = {
    cls.__name__: cls for cls in (SparseSGD, SparseAdagrad, RowWiseAdagrad, SparseAdamW)
}


def check_fused_optimizer(owner: str, value: Any) -> SparseRowOptimizer | None:
    """``value`` as an unbound optimizer (a saved configuration is decoded), or None.

    Raises:
        ConfigError: ``value`` is not one of the four optimizers built without parameters.
    """
    if value is None:
        return None
    if isinstance(value, dict):
        value = _decode(value)
    if isinstance(value, SparseRowOptimizer) and type(value) in _OPTIMIZERS.values():
        if not value.unbound:
            raise ConfigError(
                f"The 'fused_optimizer' parameter of {owner} must be built without "
                f"parameters (e.g. synthembed.optim.{type(value).__name__}(lr=0.01)): the "
                "layer owns its table's state. Got one bound to parameters."
            )
        return value
    raise ConfigError(
        f"The 'fused_optimizer' parameter of {owner} must be one of "
        f"{['synthembed.optim.' + name for name in _OPTIMIZERS]} built without parameters, "
        f"e.g. synthembed.optim.RowWiseAdagrad(lr=0.01). Got {value!r} instead."
    )


def _encode(spec: SparseRowOptimizer) -> dict[str, Any]:
    hyper = {k: list(v) if isinstance(v, tuple) else v for k, v in spec.defaults.items()}
    return {"optimizer": type(spec).__name__, **hyper}


def _decode(config: Any) -> SparseRowOptimizer:
    if not isinstance(config, dict) or config.get("optimizer") not in _OPTIMIZERS:
        raise ConfigError(
            f"A fused_optimizer configuration must name one of {sorted(_OPTIMIZERS)} under "
            f"'optimizer'; got {config!r}."
        )
    hyper: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    cls: Any = _OPTIMIZERS[str(hyper.pop("optimizer"))]
    spec: SparseRowOptimizer = cls(None, **hyper)
    return spec


#: How ``fused_optimizer`` is written in a layer's JSON configuration.
FUSED_OPTIMIZER = Codec(_encode, lambda data, owner: _decode(data))


#: ``(table_state, weight, rows, grad)``: see :attr:`FusedRows.interceptor`.
Interceptor = Callable[["FusedRows", torch.Tensor, torch.Tensor, torch.Tensor], None]


class FusedRows(nn.Module):
    """The fused optimizer state of one table, as buffers (saved with the layer).

    Args:
        spec: an optimizer built without parameters (its hyperparameters).
        weight: the table it will update, ``(rows, D)``; only its shape, dtype and
            device are read here.
    """

    step: torch.Tensor

    def __init__(self, spec: SparseRowOptimizer, weight: torch.Tensor) -> None:
        super().__init__()
        self.spec = spec
        self.group = dict(spec.defaults)
        state: dict[str, Any] = {}
        spec._init_state(weight.detach(), state, self.group)
        self.state_keys = [k for k, v in state.items() if isinstance(v, torch.Tensor)]
        for key in self.state_keys:
            self.register_buffer(key, state[key])
        self.register_buffer("step", torch.zeros((), dtype=torch.int64, device=weight.device))
        #: Receives ``(self, weight, rows, grad)`` in place of each update when set: data
        #: parallel training gathers the ranks' updates there and applies their average.
        self.interceptor: Interceptor | None = None

    def extra_repr(self) -> str:
        return repr(self.spec)

    def __getstate__(self) -> dict[str, Any]:
        # A copy (deepcopy, pickle) applies its own updates: the interceptor belongs to
        # the original's data-parallel wrapper (and may hold a process group).
        state = dict(self.__dict__)
        state["interceptor"] = None
        return state

    def update(self, weight: torch.Tensor, rows: torch.Tensor, grad: torch.Tensor) -> None:
        """What backward calls with the rows it reached (distinct, sorted) and their
        summed gradient: :meth:`step_rows`, or the :attr:`interceptor` when one is set."""
        if self.interceptor is not None:
            self.interceptor(self, weight, rows, grad)
        else:
            self.step_rows(weight, rows, grad)

    def step_rows(self, weight: torch.Tensor, rows: torch.Tensor, grad: torch.Tensor) -> None:
        """One optimizer step on ``rows`` (distinct, sorted) with their summed gradient."""
        state: dict[str, Any] = {k: getattr(self, k) for k in self.state_keys}
        state["step"] = int(self.step)
        with torch.no_grad():
            self.spec._update(weight, rows, grad.to(weight.dtype), state, self.group)
        self.step.fill_(state["step"])

    def lookup(
        self,
        weight: torch.Tensor,
        ids: torch.Tensor,
        *,
        padding_idx: int | None = None,
        scale_grad_by_freq: bool = False,
    ) -> torch.Tensor:
        """``weight[ids]``: ``(*)`` -> ``(*, D)``; backward updates the rows it reached."""
        return _kernels.fused_lookup(
            weight,
            ids,
            functools.partial(self.update, weight),
            padding_idx=padding_idx,
            scale_grad_by_freq=scale_grad_by_freq,
        )

    def bag(
        self,
        weight: torch.Tensor,
        ids: torch.Tensor,
        mode: str,
        *,
        per_sample_weights: torch.Tensor | None = None,
        padding_idx: int | None = None,
        scale_grad_by_freq: bool = False,
    ) -> torch.Tensor:
        """``(B, L)`` bags pooled by ``"sum"`` or ``"mean"``; backward updates the rows."""
        return _kernels.fused_bag(
            weight,
            ids,
            mode,
            functools.partial(self.update, weight),
            per_sample_weights=per_sample_weights,
            padding_idx=padding_idx,
            scale_grad_by_freq=scale_grad_by_freq,
        )

    def grow(self, rows: int) -> None:
        """Pad the per-row state to ``rows`` rows with the state of a row never trained."""
        for key in self.state_keys:
            value = getattr(self, key)
            extra = value.new_full(
                (rows - int(value.shape[0]), *value.shape[1:]), self.spec.row_fill(key, self.group)
            )
            setattr(self, key, torch.cat([value, extra]))


def fused_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The tables of ``module`` that a fused optimizer updates (they get no gradient)."""
    out: list[nn.Parameter] = []
    for m in module.modules():
        if isinstance(getattr(m, "fused", None), FusedRows):
            out.append(cast(nn.Parameter, m.weight))
    return out


def dense_parameters(module: nn.Module) -> list[nn.Parameter]:
    """``module.parameters()`` without its fused tables: what a regular optimizer takes.

    Example:
        >>> import torch, synthembed as se
        >>> model = torch.nn.Sequential(
        ...     se.Embedding(100, 8, fused_optimizer=se.optim.RowWiseAdagrad(lr=0.1)),
        ...     torch.nn.Linear(8, 1),
        ... )
        >>> opt = torch.optim.Adam(se.optim.dense_parameters(model), lr=1e-3)
        >>> [tuple(p.shape) for p in se.optim.dense_parameters(model)]
        [(1, 8), (1,)]
    """
    fused = {id(p) for p in fused_parameters(module)}
    return [p for p in module.parameters() if id(p) not in fused]
