"""Piecewise-linear encoding of a scalar over fixed bins: the "PLE" of Gorishniy, Rubachev and
Babenko (NeurIPS 2022), followed by ``Linear`` and ``ReLU`` (their "Q-LR" with quantile bins).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from synthembed._config import DTYPE, Configurable, Option
from synthembed._validation import check_int
from synthembed.errors import ConfigError
from synthembed.io import register_savable

__all__ = ["PiecewiseLinearEmbedding"]


@register_savable
class PiecewiseLinearEmbedding(Configurable, nn.Module):
    """Piecewise-linear encoding over fixed bins, then ``ReLU(Linear(.))``.

    Gorishniy et al. (2022), "PLE": for bins ``[b_{t-1}, b_t)``, component ``t``
    is 0 left of the bin, 1 right of it and linear inside. As in the paper the
    first component is not clipped below and the last not clipped above, so
    values outside the training range keep a slope.

    Args:
        bins: strictly increasing bin edges (``T + 1`` edges give ``T`` components).
        embedding_dim: output size.
        device, dtype: where and in which floating dtype the parameters are created.

    Shape:
        ``(*)`` floats -> ``(*, embedding_dim)``.

    Example:
        >>> PiecewiseLinearEmbedding([0.0, 0.5, 1.0], 3)(torch.rand(5)).shape
        torch.Size([5, 3])
    """

    config_options = (
        Option("bins", positional=True),
        Option("embedding_dim", get=lambda m: int(m.linear.out_features), positional=True),
        Option("dtype", get=lambda m: m.linear.weight.dtype, codec=DTYPE, show=False),
    )

    def __init__(
        self,
        bins: Sequence[float],
        embedding_dim: int,
        *,
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        edges = [float(b) for b in bins]
        if (
            len(edges) < 2
            or any(not math.isfinite(b) for b in edges)
            or any(b >= c for b, c in itertools.pairwise(edges))
        ):
            raise ConfigError(
                "PiecewiseLinearEmbedding needs at least 2 finite, strictly increasing bin "
                f"edges; got {edges!r}."
            )
        check_int("PiecewiseLinearEmbedding", "embedding_dim", embedding_dim, 1)
        super().__init__()
        self.bins = edges
        # Not persistent: the edges live in the JSON configuration, not among the weights.
        self._left: torch.Tensor
        self._width: torch.Tensor
        kw: dict[str, Any] = {"device": device, "dtype": dtype}
        self.register_buffer("_left", torch.tensor(edges[:-1], **kw), persistent=False)
        self.register_buffer(
            "_width", torch.tensor(np.diff(edges).tolist(), **kw), persistent=False
        )
        self.linear = nn.Linear(len(edges) - 1, embedding_dim, **kw)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The piecewise-linear encoding alone: ``(*)`` -> ``(*, T)``."""
        ratio = (x.unsqueeze(-1) - self._left) / self._width  # (*, T)
        n = ratio.shape[-1]
        if n == 1:
            return ratio
        # Departure from clipping every component to [0, 1]: the paper leaves the
        # outer sides of the first and last bins open.
        first = ratio[..., :1].clamp(max=1.0)
        middle = ratio[..., 1:-1].clamp(0.0, 1.0)
        last = ratio[..., -1:].clamp(min=0.0)
        return torch.cat([first, middle, last], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(self.encode(x.to(self._left.dtype))))
