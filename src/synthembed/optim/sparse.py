"""Row-wise sparse optimizers for embedding tables.

Each optimizer here takes parameters whose gradients are sparse COO tensors,
the gradients of ``synthembed.Embedding(..., sparse=True)`` or
``torch.nn.Embedding(sparse=True)``, and touches only the rows a batch used:
the cost of a step follows the batch, not the table.

Shared rules:

- The sparse gradient is coalesced first, so an id that appears several times
  in a batch gets one update with the **sum** of its gradient rows.
- An empty sparse gradient (a batch of only ``padding_idx``) is a no-op: no
  row, no state and no step counter changes (``torch.optim.SparseAdam``
  crashes there, pytorch#82486).
- A dense gradient raises :class:`~synthembed.errors.ConfigError` naming the
  parameter's shape: build the layer with ``sparse=True``.
- Weight decay applies to the touched rows only; an untouched row never moves.
- Hyperparameters are checked before any state exists; the error names the
  value and its valid range.
- ``state_dict()`` holds only tensors and plain numbers, so
  :func:`~synthembed.optim.save_optimizer` writes it as safetensors + JSON (no
  pickle) and :func:`~synthembed.optim.load_optimizer` restores it; training
  resumes bit-exactly.
- Built without parameters (``RowWiseAdagrad(lr=0.01)``), an optimizer is a
  *specification* for a fused table (``synthembed.Embedding(...,
  fused_optimizer=...)``): the table applies its updates inside backward.
  Such an unbound optimizer has no ``step``.

The optimizers:

- :class:`SparseSGD`: ``w_r -= lr * (g_r + weight_decay * w_r)``.
- :class:`SparseAdagrad`: ``torch.optim.Adagrad``'s sparse path (one
  accumulator per value).
- :class:`RowWiseAdagrad`: one accumulator per row, as FBGEMM and TorchRec
  define it: ``s_r += mean(g_r ** 2)``, ``w_r -= lr * g_r / (sqrt(s_r) + eps)``.
- :class:`SparseAdamW`: lazy Adam with decoupled weight decay, with an
  optional correction for the steps a row missed (``lazy_correction``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from synthembed import _kernels
from synthembed._validation import check_float
from synthembed.errors import ConfigError

__all__ = ["RowWiseAdagrad", "SparseAdagrad", "SparseAdamW", "SparseRowOptimizer", "SparseSGD"]


class SparseRowOptimizer(torch.optim.Optimizer):
    """The shared step loop: check and coalesce each gradient, then update its rows.

    ``params=None`` builds an unbound optimizer: the specification of a fused
    table's optimizer (its hyperparameters only; :meth:`step` raises).
    """

    def __init__(self, params: Iterable[Any] | None, defaults: dict[str, Any]) -> None:
        self._check_hyperparameters(defaults)
        self.unbound = params is None
        if params is None:
            # torch.optim.Optimizer refuses an empty parameter list: build with a
            # placeholder tensor, then drop it.
            super().__init__([torch.zeros(0, requires_grad=True)], defaults)
            self.param_groups.clear()
            self.state.clear()
        else:
            super().__init__(params, defaults)

    def __repr__(self) -> str:
        if not getattr(self, "unbound", False):
            return super().__repr__()
        hyper = ", ".join(f"{k}={v!r}" for k, v in self.defaults.items())
        return f"{type(self).__name__}({hyper})"

    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        owner = type(self).__name__
        check_float(owner, "lr", group["lr"], 0.0)
        if "eps" in group:
            check_float(owner, "eps", group["eps"], 0.0, low_closed=False)
        check_float(owner, "weight_decay", group["weight_decay"], 0.0)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        merged = {**self.defaults, **param_group}
        self._check_hyperparameters(merged)
        super().add_param_group(param_group)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Update the rows each parameter's sparse gradient touches.

        Args:
            closure: re-evaluates the model and returns the loss (optional).

        Raises:
            ConfigError: a parameter has a dense gradient.
        """
        if self.unbound:
            raise ConfigError(
                f"This {type(self).__name__} was built without parameters: it specifies a "
                "fused table's optimizer (synthembed.Embedding(..., fused_optimizer=...)), "
                "which updates rows inside backward. To step it yourself, build it with "
                f"parameters: {type(self).__name__}(layer.parameters(), ...)."
            )
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        work = []  # every gradient is checked before any row changes
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    work.append((p, self._checked_grad(p), group))
        for p, grad, group in work:
            if grad.indices().shape[1] == 0:
                continue  # a batch of only padding_idx: nothing to do
            state = self.state[p]
            if not state:
                self._init_state(p, state, group)
            self._update(p, grad.indices()[0], grad.values().to(p.dtype), state, group)
        return loss

    def _checked_grad(self, p: torch.Tensor) -> torch.Tensor:
        """``p.grad`` coalesced (duplicate ids summed); a clear error if it is not row-sparse."""
        grad = p.grad
        assert grad is not None
        if not grad.is_sparse:
            raise ConfigError(
                f"{type(self).__name__} needs sparse gradients, but the parameter of "
                f"shape {tuple(p.shape)} has a dense one; build the layer with "
                "sparse=True (synthembed.Embedding(..., sparse=True) or "
                "torch.nn.Embedding(..., sparse=True)), or use a torch.optim "
                "optimizer for dense parameters."
            )
        if grad.sparse_dim() != 1:
            raise ConfigError(
                f"{type(self).__name__} needs gradients sparse over rows only (sparse_dim 1), "
                f"but the parameter of shape {tuple(p.shape)} has sparse_dim "
                f"{grad.sparse_dim()}; embedding layers built with sparse=True give sparse_dim 1."
            )
        return grad.coalesce()

    def _init_state(self, p: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        state["step"] = 0

    def row_fill(self, key: str, group: dict[str, Any]) -> float:
        """The value of state ``key`` for a row that never trained (rows added by growth)."""
        return 0.0

    def _update(
        self,
        p: torch.Tensor,
        rows: torch.Tensor,
        grad: torch.Tensor,
        state: dict[str, Any],
        group: dict[str, Any],
    ) -> None:
        raise NotImplementedError


class SparseSGD(SparseRowOptimizer):
    """Plain SGD on the rows a batch touched.

    ``w_r -= lr * (g_r + weight_decay * w_r)`` for each touched row ``r``,
    with ``g_r`` the sum of the batch's gradient rows for that id. With
    ``weight_decay=0`` it equals ``torch.optim.SGD`` on the same sparse gradients.

    Args:
        params: parameters (or parameter groups) with sparse gradients, or None for
            the specification of a fused table's optimizer (``fused_optimizer=``).
        lr: learning rate, in ``[0, inf)``.
        weight_decay: L2 penalty on touched rows, in ``[0, inf)``.

    Example:
        >>> emb = torch.nn.Embedding(10, 4, sparse=True)
        >>> opt = SparseSGD(emb.parameters(), lr=0.1)
        >>> emb(torch.tensor([1, 1, 3])).sum().backward()
        >>> _ = opt.step()
    """

    def __init__(
        self, params: Iterable[Any] | None = None, lr: float = 1e-2, *, weight_decay: float = 0.0
    ) -> None:
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})

    def _update(
        self,
        p: torch.Tensor,
        rows: torch.Tensor,
        grad: torch.Tensor,
        state: dict[str, Any],
        group: dict[str, Any],
    ) -> None:
        state["step"] += 1
        _kernels.sgd_rows(p, rows, grad, lr=group["lr"], weight_decay=group["weight_decay"])


class SparseAdagrad(SparseRowOptimizer):
    """Adagrad with one accumulator per value, on the rows a batch touched.

    For each touched row ``r`` at step ``t`` (counted per parameter, over
    steps with a non-empty gradient)::

        g_r = g_r + weight_decay * w_r
        s_r += g_r ** 2
        w_r -= lr / (1 + (t - 1) * lr_decay) * g_r / (sqrt(s_r) + eps)

    With ``weight_decay=0`` it equals ``torch.optim.Adagrad``'s sparse path.

    Args:
        params: parameters (or parameter groups) with sparse gradients, or None for
            the specification of a fused table's optimizer (``fused_optimizer=``).
        lr: learning rate, in ``[0, inf)``.
        lr_decay: learning-rate decay per step, in ``[0, inf)``.
        weight_decay: L2 penalty on touched rows, in ``[0, inf)``.
        initial_accumulator_value: starting value of ``s``, in ``[0, inf)``.
        eps: added to the denominator, in ``(0, inf)``.
    """

    def __init__(
        self,
        params: Iterable[Any] | None = None,
        lr: float = 1e-2,
        *,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "eps": eps,
        }
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        super()._check_hyperparameters(group)
        owner = type(self).__name__
        check_float(owner, "lr_decay", group["lr_decay"], 0.0)
        check_float(owner, "initial_accumulator_value", group["initial_accumulator_value"], 0.0)

    def _init_state(self, p: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        super()._init_state(p, state, group)
        state["sum"] = torch.full_like(
            p, group["initial_accumulator_value"], memory_format=torch.preserve_format
        )

    def row_fill(self, key: str, group: dict[str, Any]) -> float:
        return float(group["initial_accumulator_value"]) if key == "sum" else 0.0

    def _update(
        self,
        p: torch.Tensor,
        rows: torch.Tensor,
        grad: torch.Tensor,
        state: dict[str, Any],
        group: dict[str, Any],
    ) -> None:
        state["step"] += 1
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        _kernels.adagrad_rows(
            p,
            state["sum"],
            rows,
            grad,
            lr=clr,
            weight_decay=group["weight_decay"],
            eps=group["eps"],
        )


class RowWiseAdagrad(SparseRowOptimizer):
    """Adagrad with one accumulator per row, as FBGEMM and TorchRec define it.

    For each touched row ``r`` (``g_r`` summed over the batch's duplicates)::

        g_r = g_r + weight_decay * w_r          # L2, FBGEMM's "L2" mode
        s_r += mean(g_r ** 2)                   # over the row's D values
        w_r -= lr * g_r / (sqrt(s_r) + eps)

    The state is one number per row (``sum`` of shape ``(num_rows,)``), ``1/D``
    of Adagrad's.

    Args:
        params: parameters (or parameter groups) with sparse gradients, or None for
            the specification of a fused table's optimizer (``fused_optimizer=``); each
            at least 1-D, rows along dimension 0.
        lr: learning rate, in ``[0, inf)``.
        weight_decay: L2 penalty on touched rows, in ``[0, inf)``.
        initial_accumulator_value: starting value of ``s``, in ``[0, inf)``.
        eps: added to the denominator, in ``(0, inf)``.
    """

    def __init__(
        self,
        params: Iterable[Any] | None = None,
        lr: float = 1e-2,
        *,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        defaults = {
            "lr": lr,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "eps": eps,
        }
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        super()._check_hyperparameters(group)
        owner = type(self).__name__
        check_float(owner, "initial_accumulator_value", group["initial_accumulator_value"], 0.0)

    def _init_state(self, p: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        super()._init_state(p, state, group)
        state["sum"] = torch.full(
            (p.shape[0],), float(group["initial_accumulator_value"]), dtype=p.dtype, device=p.device
        )

    def row_fill(self, key: str, group: dict[str, Any]) -> float:
        return float(group["initial_accumulator_value"]) if key == "sum" else 0.0

    def _update(
        self,
        p: torch.Tensor,
        rows: torch.Tensor,
        grad: torch.Tensor,
        state: dict[str, Any],
        group: dict[str, Any],
    ) -> None:
        state["step"] += 1
        _kernels.rowwise_adagrad_rows(
            p,
            state["sum"],
            rows,
            grad,
            lr=group["lr"],
            weight_decay=group["weight_decay"],
            eps=group["eps"],
        )


class SparseAdamW(SparseRowOptimizer):
    """Lazy Adam with decoupled weight decay, on the rows a batch touched.

    The step counter ``t`` counts this parameter's steps with a non-empty
    gradient; ``last_step[r]`` is the step at which row ``r`` was last
    updated (0: never). At step ``t``, for each touched row ``r``
    (``g_r`` summed over the batch's duplicates)::

        if lazy_correction:                      # k = steps the row missed
            k = t - last_step[r] - 1
            m_r *= beta1 ** k;  v_r *= beta2 ** k
        w_r *= 1 - lr * weight_decay             # decoupled, touched rows only
        m_r = beta1 * m_r + (1 - beta1) * g_r
        v_r = beta2 * v_r + (1 - beta2) * g_r ** 2
        w_r -= lr / (1 - beta1 ** t) * m_r / (sqrt(v_r) / sqrt(1 - beta2 ** t) + eps)
        last_step[r] = t

    Untouched rows, their moments and their weights do not change (lazy Adam).
    Without the correction (the default, ``torch.optim.SparseAdam``'s
    semantics) a row's moments decay only on the steps it is in a batch, so
    rare rows keep stale, large moments. With ``lazy_correction=True`` a
    touched row's moments first receive the decays of the steps it missed, so
    they equal those of dense AdamW fed a zero gradient for that row on those
    steps; the parameter moves of the missed steps (dense Adam's momentum
    drift and weight decay) are still skipped. Bias correction uses the
    parameter's step ``t`` in both modes.

    With ``weight_decay=0`` and ``lazy_correction=False`` it equals
    ``torch.optim.SparseAdam`` up to where ``eps`` is added (here after bias
    correction, as ``torch.optim.AdamW`` does).

    Args:
        params: parameters (or parameter groups) with sparse gradients, or None for
            the specification of a fused table's optimizer (``fused_optimizer=``).
        lr: learning rate, in ``[0, inf)``.
        betas: ``(beta1, beta2)``, each in ``[0, 1)``.
        eps: added to the denominator, in ``(0, inf)``.
        weight_decay: decoupled weight decay, in ``[0, inf)``.
        lazy_correction: apply the decays a row missed before its update.
    """

    def __init__(
        self,
        params: Iterable[Any] | None = None,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        *,
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        lazy_correction: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "lazy_correction": lazy_correction,
        }
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        super()._check_hyperparameters(group)
        owner = type(self).__name__
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ConfigError(
                f"The 'betas' parameter of {owner} must be a pair (beta1, beta2), each in "
                f"the range [0, 1). Got {betas!r} instead."
            )
        check_float(owner, "betas[0]", betas[0], 0.0, 1.0, high_closed=False)
        check_float(owner, "betas[1]", betas[1], 0.0, 1.0, high_closed=False)
        if not isinstance(group["lazy_correction"], bool):
            raise ConfigError(
                f"The 'lazy_correction' parameter of {owner} must be a bool. "
                f"Got {group['lazy_correction']!r} instead."
            )

    def _init_state(self, p: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        super()._init_state(p, state, group)
        state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["last_step"] = torch.zeros(p.shape[0], dtype=torch.int64, device=p.device)

    def _update(
        self,
        p: torch.Tensor,
        rows: torch.Tensor,
        grad: torch.Tensor,
        state: dict[str, Any],
        group: dict[str, Any],
    ) -> None:
        state["step"] += 1
        beta1, beta2 = (float(b) for b in group["betas"])
        _kernels.adamw_rows(
            p,
            state["exp_avg"],
            state["exp_avg_sq"],
            state["last_step"],
            rows,
            grad,
            step=state["step"],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            lazy_correction=group["lazy_correction"],
        )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state; ``last_step`` keeps its integer type (torch would cast it to float)."""
        saved = state_dict["state"]
        super().load_state_dict(state_dict)
        params = [p for group in self.param_groups for p in group["params"]]
        for index, p in enumerate(params):
            entry = saved.get(index, saved.get(str(index)))
            if entry is not None and "last_step" in entry:
                self.state[p]["last_step"] = entry["last_step"].to(
                    device=p.device, dtype=torch.int64, copy=True
                )
