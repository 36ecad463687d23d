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

__all__ = ["LastOutput", "blend"]


def blend(
    rows: torch.Tensor,
    syn: torch.Tensor,
    rate: float | torch.Tensor,
    hidden: torch.Tensor | None = None,
    notpad: torch.Tensor | None = None,
) -> torch.Tensor:
    """The blend: ``lerp(rows, syn, r) = (1 - r) * rows + r * syn``, row by row.

    ``r`` is ``rate`` (a float, or a 0-d tensor that may require grad), raised
    to 1 on ``hidden`` rows (cold or dropped-out ids: fully synthetic); rows
    where ``notpad`` is False (the padding id) get no synthetic part, only
    ``(1 - r) * rows``.

    Shape:
        ``rows``, ``syn``: ``(*, D)``; ``hidden``, ``notpad``: ``(*)`` bool -> ``(*, D)``.
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
