"""The blend of a stored row and a synthesized vector, and the layer's weak hold on its output.

``out = lerp(base, synthetic, r) = (1 - r) * base + r * synthetic``: the one place
the formula lives (DESIGN.md, "Blend"). :class:`LastOutput` is how
``SyntheticEmbeddingLayer.backward`` finds the last forward's output without an
autograd graph staying on the module.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch

from synthembed.errors import NotFittedError, ShapeError

_OWNER = "SyntheticEmbeddingLayer"

__all__ = ["LastOutput", "LastOutputBackward", "blend"]


def blend(
    rows: torch.Tensor,
    syn: torch.Tensor,
    rate: float | torch.Tensor,
    hidden: torch.Tensor | None = None,
    notpad: torch.Tensor | None = None,
) -> torch.Tensor:
    """The blend: ``lerp(rows, syn, r) = (1 - r) * rows + r * syn``, row by row.

    ``r`` is ``rate`` (a float, a 0-d tensor that may require grad, or a ``(*, 1)``
    tensor of per-row rates, as ``adaptive="count"`` gives), raised
    to 1 on ``hidden`` rows (cold or dropped-out ids: fully synthetic); rows
    where ``notpad`` is False (the padding id) get no synthetic part, only
    ``(1 - r) * rows``.

    Shape:
        ``rows``, ``syn``: ``(*, D)``; ``rate``: scalar or ``(*, 1)``; ``hidden``,
        ``notpad``: ``(*)`` bool -> ``(*, D)``.
    """
    if notpad is not None:
        syn = syn * notpad.unsqueeze(-1).to(syn.dtype)
    if isinstance(rate, torch.Tensor) and rate.dtype != rows.dtype:
        rate = rate.to(rows.dtype)
    if hidden is not None:
        r = rate if isinstance(rate, torch.Tensor) else rows.new_tensor(rate)
        rate = torch.where(hidden.unsqueeze(-1), rows.new_ones(()), r)  # (*, 1)
    return torch.lerp(rows, syn, rate)


class LastOutput:
    """A weak reference to the last forward's output, for :meth:`SyntheticEmbeddingLayer.backward`.

    Weak, so that no autograd graph stays on the module: the graph lives as
    long as the caller keeps the output. A copy or a pickle of the layer
    starts with none (it must not reach the original's graph).
    """

    __slots__ = ("ref",)

    def __init__(self, out: torch.Tensor | None = None) -> None:
        self.ref = None if out is None else weakref.ref(out)

    def get(self) -> torch.Tensor | None:
        return None if self.ref is None else self.ref()

    def __deepcopy__(self, memo: dict[int, Any]) -> LastOutput:
        return LastOutput()

    def __reduce__(self) -> tuple[type[LastOutput], tuple[()]]:
        return (LastOutput, ())


class LastOutputBackward:
    """Mixin of the synthetic layer: the founding documents' ``layer.backward(grad)``."""

    _last_output: LastOutput

    def backward(self, grad_output: torch.Tensor) -> None:
        """Backpropagate ``grad_output`` from the last forward's output, with autograd.

        The founding documents' form of ``out.backward(grad_output)``::

            out = layer(ids)
            layer.backward(grad)  # the same as out.backward(grad)

        The layer keeps only a weak reference to its last output (no autograd
        graph stays on the module), so keep ``out`` alive until this call.
        Each forward is differentiated once.

        Args:
            grad_output: ``(*, D)``, the gradient of the loss with respect to the
                last forward's output.

        Raises:
            NotFittedError: no forward to differentiate (none yet, its backward
                was already taken, or its output has been dropped).
            ShapeError: ``grad_output`` does not have the output's shape.
        """
        out = self._last_output.get()
        if out is None:
            dropped = self._last_output.ref is not None
            raise NotFittedError(
                f"{_OWNER}.backward() differentiates the last forward pass, and there is none "
                "pending: call layer(input) first"
                + (
                    " and keep its output alive (out = layer(ids); layer.backward(grad)): the "
                    "layer holds only a weak reference to it"
                    if dropped
                    else ""
                )
                + ". Each forward can be differentiated once."
            )
        if not isinstance(grad_output, torch.Tensor) or grad_output.shape != out.shape:
            got = (
                tuple(grad_output.shape)
                if isinstance(grad_output, torch.Tensor)
                else type(grad_output).__name__
            )
            raise ShapeError(
                f"grad_output must have the last output's shape {tuple(out.shape)}; got {got}."
            )
        if not out.requires_grad:
            raise NotFittedError(
                f"The last forward of this {_OWNER} recorded no gradients (it ran under "
                "torch.no_grad() or inference mode, or nothing in it requires grad): run the "
                "forward with gradients enabled before calling backward()."
            )
        self._last_output = LastOutput()
        torch.autograd.backward(out, grad_output.to(out.dtype))
