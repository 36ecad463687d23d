"""The ``lowrank`` base: a factorised table ``(V, r) @ (r, D)``.

No paper of its own: the plain low-rank factorisation of an embedding table.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from synthembed._config import Option
from synthembed._validation import check_float, check_int
from synthembed.io import register_savable
from synthembed.layers.bases._common import (
    FUSED_OPTION,
    HEAD_OPTIONS,
    TAIL_OPTIONS,
    CompressedBase,
    check_fused,
    grow_table,
    make_table,
    normal_,
)
from synthembed.layers.bases.registry import register_base

__all__ = ["LowRankEmbedding"]


@register_savable
@register_base("lowrank")
class LowRankEmbedding(CompressedBase):
    r"""A factorised table: ``out = A[id] @ B`` with ``A`` of ``(V, r)`` and ``B`` of ``(r, D)``.

    ``r * (V + D)`` parameters instead of ``V * D``: about ``D / r`` times fewer.

    Args:
        num_embeddings: V, number of ids (checked: ids must lie in ``[0, V)``).
        embedding_dim: D.
        padding_idx: id whose output is zero and receives no gradient.
        rank: r (``1 <= r <= D``); default ``max(1, D // 8)``.
        sparse: sparse gradients for ``A``.
        fused_optimizer: an optimizer of :mod:`synthembed.optim` built without
            parameters (e.g. ``synthembed.optim.RowWiseAdagrad(lr=0.01)``): the rows of ``A`` then
            update their rows inside backward, with no gradient (not with ``sparse``); ``B``
            stays with the model's optimizer.
        init_std: standard deviation of outputs at initialisation.
        check_finite: raise :class:`~synthembed.errors.NonFiniteError` at the first
            NaN or infinity in an output, naming the layer and the ids.

    Shape:
        ``(*)`` long ids -> ``(*, embedding_dim)``.

    Example:
        >>> emb = LowRankEmbedding(1000, 64, rank=8)
        >>> emb(torch.tensor([1, 999])).shape
        torch.Size([2, 64])
    """

    config_options = (
        *HEAD_OPTIONS,
        Option("rank"),
        Option("sparse"),
        Option("init_std"),
        FUSED_OPTION,
        *TAIL_OPTIONS,
    )

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        *,
        rank: int | None = None,
        sparse: bool = False,
        init_std: float = 1.0,
        check_finite: bool = False,
        device: Any = None,
        dtype: torch.dtype | None = None,
        fused_optimizer: Any = None,
    ) -> None:
        owner = type(self).__name__
        padding_idx = self._check_common(num_embeddings, embedding_dim, padding_idx)
        spec = check_fused(owner, fused_optimizer, sparse)
        if rank is None:
            rank = max(1, embedding_dim // 8)
        check_int(owner, "rank", rank, 1, embedding_dim)
        check_float(owner, "init_std", init_std, 0.0, low_closed=False)
        super().__init__()
        self._setup(num_embeddings, embedding_dim, padding_idx, check_finite)
        self.rank = int(rank)
        self.sparse = bool(sparse)
        self.init_std = float(init_std)
        self.fused_optimizer = spec
        self.factor = make_table(num_embeddings, self.rank, self.sparse, device, dtype, spec)
        self.projection = nn.Linear(
            self.rank, embedding_dim, bias=False, device=device, dtype=dtype
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """A ~ N(0, init_std), B ~ N(0, init_std / r): outputs have std ``init_std``.

        Balanced factors (both ~ sqrt(init_std)): Adam-like steps move both alike.
        """
        if isinstance(self.factor, nn.Embedding):
            normal_(self.factor.weight, math.sqrt(self.init_std))
        normal_(self.projection.weight, math.sqrt(self.init_std / self.rank))

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Look up ids.

        Raises:
            InvalidIndexError: ids outside ``[0, num_embeddings)``.
            ShapeError: non-integer ids.
            NonFiniteError: NaN/inf in the output, with ``check_finite=True``.
        """
        ids = self._prepare(input)
        return self._finish(self.projection(self.factor(ids)), ids)

    def grow(self, n: int) -> torch.Tensor:
        """Append ``n`` rows to ``A`` (N(0, 1)) in place and return the new ids (optimizers
        with per-row state need :func:`synthembed.optim.grow_state`)."""
        check_int(type(self).__name__ + ".grow", "n", n, 0)
        self.factor = grow_table(self.factor, n, f"{type(self).__name__}.factor")
        start, self.num_embeddings = self.num_embeddings, self.num_embeddings + n
        return torch.arange(start, self.num_embeddings, device=self.projection.weight.device)
