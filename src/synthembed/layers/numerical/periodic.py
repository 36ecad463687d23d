"""Periodic embedding of a scalar: the "PLR" of Gorishniy, Rubachev and Babenko (NeurIPS 2022).

``[cos(2 pi c x), sin(2 pi c x)]`` with learned frequencies ``c ~ N(0, sigma)``,
then ``Linear`` and ``ReLU``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from synthembed._config import DTYPE, Configurable, Option
from synthembed._validation import check_float, check_int
from synthembed.io import register_savable

__all__ = ["PeriodicEmbedding"]


@register_savable
class PeriodicEmbedding(Configurable, nn.Module):
    """Periodic embedding of one scalar feature: ``ReLU(Linear([cos(2 pi c x), sin(2 pi c x)]))``.

    Gorishniy et al. (2022), "PLR": the frequencies ``c`` are learned, drawn at
    init from ``N(0, sigma)``.

    Args:
        n_frequencies: number of frequencies ``k`` (the encoding has ``2k`` values).
        embedding_dim: output size.
        sigma: standard deviation of the initial frequencies.
        device, dtype: where and in which floating dtype the parameters are created.

    Shape:
        ``(*)`` floats -> ``(*, embedding_dim)``.

    Example:
        >>> PeriodicEmbedding(4, 3)(torch.rand(5)).shape
        torch.Size([5, 3])
    """

    config_options = (
        Option("n_frequencies", get=lambda m: int(m.frequencies.numel()), positional=True),
        Option("embedding_dim", get=lambda m: int(m.linear.out_features), positional=True),
        Option("sigma"),
        Option("dtype", get=lambda m: m.frequencies.dtype, codec=DTYPE, show=False),
    )

    def __init__(
        self,
        n_frequencies: int,
        embedding_dim: int,
        *,
        sigma: float = 1.0,
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        check_int("PeriodicEmbedding", "n_frequencies", n_frequencies, 1)
        check_int("PeriodicEmbedding", "embedding_dim", embedding_dim, 1)
        check_float("PeriodicEmbedding", "sigma", sigma, 0.0, low_closed=False)
        super().__init__()
        self.sigma = float(sigma)
        self.frequencies = nn.Parameter(torch.empty(n_frequencies, device=device, dtype=dtype))
        self.linear = nn.Linear(2 * n_frequencies, embedding_dim, device=device, dtype=dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Frequencies from ``N(0, sigma)``; the linear layer as torch initialises it."""
        nn.init.normal_(self.frequencies, 0.0, self.sigma)
        self.linear.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = 2 * math.pi * x.unsqueeze(-1) * self.frequencies  # (*, k)
        encoded = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)  # (*, 2k)
        return torch.relu(self.linear(encoded))
