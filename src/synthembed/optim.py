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
  :func:`save_optimizer` writes it as safetensors + JSON (no pickle) and
  :func:`load_optimizer` restores it; training resumes bit-exactly.

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

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from synthembed._validation import check_float
from synthembed.errors import ConfigError, FileFormatError
from synthembed.io import atomic_write, check_readable

__all__ = [
    "RowWiseAdagrad",
    "SparseAdagrad",
    "SparseAdamW",
    "SparseSGD",
    "load_optimizer",
    "save_optimizer",
]

_FORMAT = "synthembed.optim/1"


class _SparseRowOptimizer(torch.optim.Optimizer):
    """The shared step loop: check and coalesce each gradient, then update its rows."""

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

    def _update(
        self,
        p: torch.Tensor,
        rows: torch.Tensor,
        grad: torch.Tensor,
        state: dict[str, Any],
        group: dict[str, Any],
    ) -> None:
        raise NotImplementedError


class SparseSGD(_SparseRowOptimizer):
    """Plain SGD on the rows a batch touched.

    ``w_r -= lr * (g_r + weight_decay * w_r)`` for each touched row ``r``,
    with ``g_r`` the sum of the batch's gradient rows for that id. With
    ``weight_decay=0`` it equals ``torch.optim.SGD`` on the same sparse gradients.

    Args:
        params: parameters (or parameter groups) with sparse gradients.
        lr: learning rate, in ``[0, inf)``.
        weight_decay: L2 penalty on touched rows, in ``[0, inf)``.

    Example:
        >>> emb = torch.nn.Embedding(10, 4, sparse=True)
        >>> opt = SparseSGD(emb.parameters(), lr=0.1)
        >>> emb(torch.tensor([1, 1, 3])).sum().backward()
        >>> _ = opt.step()
    """

    def __init__(
        self, params: Iterable[Any], lr: float = 1e-2, *, weight_decay: float = 0.0
    ) -> None:
        self._check_hyperparameters({"lr": lr, "weight_decay": weight_decay})
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
        if group["weight_decay"] != 0:
            grad = grad.add(p[rows], alpha=group["weight_decay"])
        p.index_add_(0, rows, grad, alpha=-group["lr"])


class SparseAdagrad(_SparseRowOptimizer):
    """Adagrad with one accumulator per value, on the rows a batch touched.

    For each touched row ``r`` at step ``t`` (counted per parameter, over
    steps with a non-empty gradient)::

        g_r = g_r + weight_decay * w_r
        s_r += g_r ** 2
        w_r -= lr / (1 + (t - 1) * lr_decay) * g_r / (sqrt(s_r) + eps)

    With ``weight_decay=0`` it equals ``torch.optim.Adagrad``'s sparse path.

    Args:
        params: parameters (or parameter groups) with sparse gradients.
        lr: learning rate, in ``[0, inf)``.
        lr_decay: learning-rate decay per step, in ``[0, inf)``.
        weight_decay: L2 penalty on touched rows, in ``[0, inf)``.
        initial_accumulator_value: starting value of ``s``, in ``[0, inf)``.
        eps: added to the denominator, in ``(0, inf)``.
    """

    def __init__(
        self,
        params: Iterable[Any],
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
        self._check_hyperparameters(defaults)
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

    def _update(
        self,
        p: torch.Tensor,
        rows: torch.Tensor,
        grad: torch.Tensor,
        state: dict[str, Any],
        group: dict[str, Any],
    ) -> None:
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad.add(p[rows], alpha=group["weight_decay"])
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        total = state["sum"]
        total.index_add_(0, rows, grad * grad)
        std = total[rows].sqrt_().add_(group["eps"])
        p.index_add_(0, rows, grad / std, alpha=-clr)


class RowWiseAdagrad(_SparseRowOptimizer):
    """Adagrad with one accumulator per row, as FBGEMM and TorchRec define it.

    For each touched row ``r`` (``g_r`` summed over the batch's duplicates)::

        g_r = g_r + weight_decay * w_r          # L2, FBGEMM's "L2" mode
        s_r += mean(g_r ** 2)                   # over the row's D values
        w_r -= lr * g_r / (sqrt(s_r) + eps)

    The state is one number per row (``sum`` of shape ``(num_rows,)``), ``1/D``
    of Adagrad's.

    Args:
        params: parameters (or parameter groups) with sparse gradients; each
            at least 1-D, rows along dimension 0.
        lr: learning rate, in ``[0, inf)``.
        weight_decay: L2 penalty on touched rows, in ``[0, inf)``.
        initial_accumulator_value: starting value of ``s``, in ``[0, inf)``.
        eps: added to the denominator, in ``(0, inf)``.
    """

    def __init__(
        self,
        params: Iterable[Any],
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
        self._check_hyperparameters(defaults)
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

    def _update(
        self,
        p: torch.Tensor,
        rows: torch.Tensor,
        grad: torch.Tensor,
        state: dict[str, Any],
        group: dict[str, Any],
    ) -> None:
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad.add(p[rows], alpha=group["weight_decay"])
        flat = grad.reshape(grad.shape[0], -1)  # (R, D)
        total = state["sum"]
        total.index_add_(0, rows, flat.pow(2).mean(dim=1))
        std = total[rows].sqrt().add_(group["eps"])  # (R,)
        scale = std.reshape((-1,) + (1,) * (grad.dim() - 1))
        p.index_add_(0, rows, grad / scale, alpha=-group["lr"])


class SparseAdamW(_SparseRowOptimizer):
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
        params: parameters (or parameter groups) with sparse gradients.
        lr: learning rate, in ``[0, inf)``.
        betas: ``(beta1, beta2)``, each in ``[0, 1)``.
        eps: added to the denominator, in ``(0, inf)``.
        weight_decay: decoupled weight decay, in ``[0, inf)``.
        lazy_correction: apply the decays a row missed before its update.
    """

    def __init__(
        self,
        params: Iterable[Any],
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
        self._check_hyperparameters(defaults)
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
        t = state["step"]
        beta1, beta2 = (float(b) for b in group["betas"])
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        m = state["exp_avg"][rows]  # (R, D) copies, written back below
        v = state["exp_avg_sq"][rows]
        last = state["last_step"]
        if group["lazy_correction"]:
            missed = (t - 1 - last[rows]).to(p.dtype)  # (R,)
            shape = (-1,) + (1,) * (grad.dim() - 1)
            m.mul_(torch.pow(beta1, missed).reshape(shape))
            v.mul_(torch.pow(beta2, missed).reshape(shape))
        m.mul_(beta1).add_(grad, alpha=1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        state["exp_avg"][rows] = m
        state["exp_avg_sq"][rows] = v
        last[rows] = t
        bias1 = 1 - beta1**t
        bias2_sqrt = (1 - beta2**t) ** 0.5
        w = p[rows]
        if wd != 0:
            w.mul_(1 - lr * wd)
        denom = v.sqrt().div_(bias2_sqrt).add_(eps)
        w.addcdiv_(m, denom, value=-lr / bias1)
        p[rows] = w

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


def save_optimizer(opt: torch.optim.Optimizer, path: str | os.PathLike[str]) -> None:
    """Write ``opt.state_dict()`` to one ``.safetensors`` file: tensors, plus JSON metadata.

    Raises:
        ConfigError: the state holds a value that is neither a tensor nor JSON.
        PathError: ``path`` cannot be written.
    """
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for index, entry in sd["state"].items():
        plain[str(index)] = {}
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain[str(index)][key] = value
    try:
        meta = json.dumps({"state": plain, "param_groups": sd["param_groups"]})
    except TypeError as exc:
        raise ConfigError(
            f"save_optimizer cannot write the state of {type(opt).__name__}: {exc}; "
            "only tensors and plain numbers can be saved."
        ) from None
    blob = st_save(tensors, metadata={"format": _FORMAT, "optimizer": meta})
    with atomic_write(path, "wb") as f:
        f.write(blob)


def load_optimizer(
    opt: torch.optim.Optimizer, path: str | os.PathLike[str]
) -> torch.optim.Optimizer:
    """Restore a state written by :func:`save_optimizer` into ``opt``; returns ``opt``.

    Raises:
        PathError: ``path`` cannot be read.
        FileFormatError: the file is not a saved optimizer state.
    """
    target = check_readable(path, "saved optimizer state")
    data = target.read_bytes()
    try:
        tensors = st_load(data)
        with_meta = _read_metadata(data)
    except (SafetensorError, ValueError, KeyError) as exc:
        raise FileFormatError(
            f"{os.fspath(path)!r} is not a saved optimizer state: {exc}"
        ) from None
    if with_meta.get("format") != _FORMAT or "optimizer" not in with_meta:
        raise FileFormatError(
            f"{os.fspath(path)!r} is not a saved optimizer state (format "
            f"{with_meta.get('format')!r}, expected {_FORMAT!r})."
        )
    meta = json.loads(with_meta["optimizer"])
    state: dict[int, dict[str, Any]] = {
        int(index): dict(entry) for index, entry in meta["state"].items()
    }
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    groups = meta["param_groups"]
    for group in groups:
        if "betas" in group and isinstance(group["betas"], list):
            group["betas"] = tuple(group["betas"])
    opt.load_state_dict({"state": state, "param_groups": groups})
    return opt


def _read_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors blob (its header is JSON after an 8-byte length)."""
    if len(data) < 8:
        raise ValueError("file shorter than a safetensors header")
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise ValueError("malformed safetensors metadata")
    return {str(k): str(v) for k, v in meta.items()}
