"""The ``mixed`` base: frequency-aware mixed dimensions, each block projected to D.

Ginart, Naumov, Mudigere, Yang and Zou, "Mixed Dimension Embeddings with
Application to Memory-Efficient Recommendation Systems", ISIT 2021.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from synthembed._config import Option
from synthembed._validation import check_float, check_int
from synthembed.errors import ConfigError, ShapeError
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

__all__ = ["MixedDimEmbedding"]


def _geometric_sizes(total: int, n: int, ratio: float = 4.0) -> list[int]:
    """``n`` block sizes growing by ``ratio``, each >= 1, summing to ``total``."""
    weights = [ratio**i for i in range(n)]
    scale = total / sum(weights)
    sizes = [max(1, int(w * scale)) for w in weights]
    sizes[-1] = total - sum(sizes[:-1])
    while sizes[-1] < 1:  # tiny totals: take rows back from the widest earlier block
        j = max(range(n - 1), key=lambda i: sizes[i])
        sizes[j] -= 1
        sizes[-1] += 1
    return sizes


@register_savable
@register_base("mixed")
class MixedDimEmbedding(CompressedBase):
    r"""Mixed-dimension embeddings: wider rows for frequent ids, each block projected to D.

    Ids are ranked by frequency (most frequent first) and cut into
    ``num_blocks`` blocks of geometrically growing size (x4 each). Block i holds
    rows of width ``d_i = round(D * (pop_i / pop_0) ** alpha)``, where ``pop_i``
    is the block's mean count, and a ``(d_i, D)`` projection (none when
    ``d_i == D``) (Ginart et al.). Without ``counts`` the ranks follow a Zipf law
    (count ∝ 1 / rank) for choosing widths.

    Frequency order: by default id order *is* frequency order, as in a
    :class:`~synthembed.Vocabulary` (ids sorted by count, specials first). Pass
    ``counts`` (length V) or ``order`` (a permutation of ``range(V)``, most
    frequent first) otherwise; a rank buffer of V int64 is then stored.

    Args:
        num_embeddings: V, number of ids (checked: ids must lie in ``[0, V)``).
        embedding_dim: D.
        padding_idx: id whose output is zero and receives no gradient.
        counts: per-id frequencies (length V, non-negative).
        order: ids sorted by decreasing frequency (a permutation of ``range(V)``).
        num_blocks: number of blocks (``1 <= num_blocks <= V``).
        alpha: temperature in ``[0, inf)``; 0 gives every block width D, larger
            values shrink rare blocks faster.
        block_sizes / block_dims: explicit sizes (summing to V) and widths
            (each in ``[1, D]``), overriding the defaults.
        sparse: sparse gradients for the tables.
        fused_optimizer: an optimizer of :mod:`synthembed.optim` built without
            parameters (e.g. ``synthembed.optim.RowWiseAdagrad(lr=0.01)``): the tables then
            update their rows inside backward, with no gradient (not with ``sparse``); the
            projections stay with the model's optimizer.
        init_std: standard deviation of outputs at initialisation.
        check_finite: raise :class:`~synthembed.errors.NonFiniteError` at the first
            NaN or infinity in an output, naming the layer and the ids.

    Shape:
        ``(*)`` long ids -> ``(*, embedding_dim)``.

    Example:
        >>> emb = MixedDimEmbedding(1000, 32, num_blocks=3, alpha=0.5)
        >>> emb.block_sizes, emb.block_dims
        ([47, 190, 763], [32, 10, 5])
        >>> emb(torch.tensor([0, 999])).shape
        torch.Size([2, 32])
    """

    rank_of: torch.Tensor | None
    starts: torch.Tensor

    config_options = (
        *HEAD_OPTIONS,
        Option("alpha"),
        Option("block_sizes", get=lambda m: list(m.block_sizes)),
        Option("block_dims", get=lambda m: list(m.block_dims)),
        Option("sparse"),
        Option("init_std"),
        FUSED_OPTION,
        # A reordered layer is rebuilt with a placeholder order; load() restores the buffer.
        Option("reordered", arg="order", show=False),
        *TAIL_OPTIONS,
    )

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        *,
        counts: Sequence[float] | torch.Tensor | None = None,
        order: Sequence[int] | torch.Tensor | None = None,
        num_blocks: int = 4,
        alpha: float = 0.5,
        block_sizes: Sequence[int] | None = None,
        block_dims: Sequence[int] | None = None,
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
        V, D = num_embeddings, embedding_dim
        check_float(owner, "alpha", alpha, 0.0)
        check_float(owner, "init_std", init_std, 0.0, low_closed=False)
        if counts is not None and order is not None:
            raise ConfigError(f"{owner} takes counts= or order=, not both.")
        rank_of: torch.Tensor | None = None
        pops: torch.Tensor
        if counts is not None:
            c = torch.as_tensor(counts, dtype=torch.float64).reshape(-1)
            if c.numel() != V:
                raise ShapeError(f"counts must have num_embeddings={V} entries; got {c.numel()}.")
            if not bool(torch.isfinite(c).all()) or bool((c < 0).any()):
                raise ConfigError("counts must be finite and non-negative.")
            perm: torch.Tensor | None = torch.argsort(-c, stable=True)
            pops = c[perm]
        else:
            pops = 1.0 / torch.arange(1, V + 1, dtype=torch.float64)
            perm = None if order is None else torch.as_tensor(order, dtype=torch.long).reshape(-1)
            if perm is not None and (
                perm.numel() != V or not torch.equal(torch.sort(perm).values, torch.arange(V))
            ):
                raise ConfigError(f"order must be a permutation of range({V}) (num_embeddings).")
        if perm is not None and not torch.equal(perm, torch.arange(V)):
            rank_of = torch.empty(V, dtype=torch.long)
            rank_of[perm] = torch.arange(V)
        if block_sizes is None:
            check_int(owner, "num_blocks", num_blocks, 1, V)
            sizes = _geometric_sizes(V, num_blocks)
        else:
            sizes = [check_int(owner, "block_sizes[i]", s, 1) for s in block_sizes]  # type: ignore[misc]
            if sum(sizes) != V:
                raise ConfigError(f"block_sizes must sum to num_embeddings={V}; got {sum(sizes)}.")
        if block_dims is None:
            bounds = [0, *torch.cumsum(torch.tensor(sizes), 0).tolist()]
            means = [float(pops[a:b].mean()) for a, b in itertools.pairwise(bounds)]
            top = means[0] if means[0] > 0 else 1.0
            dims = [
                max(1, min(D, round(D * (max(m, 0.0) / top) ** alpha))) if m > 0 else 1
                for m in means
            ]
        else:
            dims = [check_int(owner, "block_dims[i]", d, 1, D) for d in block_dims]  # type: ignore[misc]
            if len(dims) != len(sizes):
                raise ConfigError(
                    f"block_dims has {len(dims)} entries but there are {len(sizes)} blocks."
                )
        super().__init__()
        self._setup(V, D, padding_idx, check_finite)
        self.alpha = float(alpha)
        self.block_sizes: list[int] = list(sizes)
        self.block_dims: list[int] = list(dims)
        self.sparse = bool(sparse)
        self.fused_optimizer = spec
        self.init_std = float(init_std)
        self.reordered = rank_of is not None
        if rank_of is not None:
            self.register_buffer("rank_of", rank_of.to(device))
        else:
            self.rank_of = None
        self.register_buffer("starts", self._starts(), persistent=False)
        self.tables = nn.ModuleList(
            make_table(s, d, self.sparse, device, dtype, spec) for s, d in zip(sizes, dims)
        )
        self.projections = nn.ModuleList(
            nn.Identity() if d == D else nn.Linear(d, D, bias=False, device=device, dtype=dtype)
            for d in dims
        )
        self.reset_parameters()

    def _starts(self) -> torch.Tensor:
        return torch.tensor([0, *torch.cumsum(torch.tensor(self.block_sizes), 0).tolist()[:-1]])

    def reset_parameters(self) -> None:
        """Outputs of std ``init_std``: full-width blocks ~ N(0, init_std²); narrow
        blocks ~ N(0, init_std) with projections ~ N(0, init_std / d_i) (balanced factors).
        """
        for t, p, d in zip(self.tables, self.projections, self.block_dims):
            if isinstance(p, nn.Linear):
                normal_(p.weight, math.sqrt(self.init_std / d))
                std = math.sqrt(self.init_std)
            else:
                std = self.init_std
            if isinstance(t, nn.Embedding):
                normal_(t.weight, std)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Look up ids.

        Raises:
            InvalidIndexError: ids outside ``[0, num_embeddings)``.
            ShapeError: non-integer ids.
            NonFiniteError: NaN/inf in the output, with ``check_finite=True``.
        """
        ids = self._prepare(input)
        flat = ids.reshape(-1)
        ranks = flat if self.rank_of is None else self.rank_of[flat]
        block = torch.bucketize(ranks, self.starts, right=True) - 1  # (N,)
        first = self.projections[0]
        dtype = first.weight.dtype if isinstance(first, nn.Linear) else None
        out: torch.Tensor | None = None
        for i, (table, proj) in enumerate(zip(self.tables, self.projections)):
            where = torch.nonzero(block == i).squeeze(1)
            if where.numel() == 0:
                continue
            vec = proj(table(ranks[where] - self.block_start(i)))  # (n_i, D)
            if out is None:
                out = vec.new_zeros((flat.numel(), self.embedding_dim))
            out = out.index_copy(0, where, vec)
        if out is None:  # no ids at all
            out = torch.zeros(
                (0, self.embedding_dim), dtype=dtype or torch.float32, device=flat.device
            )
        return self._finish(out.reshape(*ids.shape, self.embedding_dim), ids)

    def block_start(self, i: int) -> int:
        """The first rank of block ``i``."""
        return sum(self.block_sizes[:i])

    def grow(self, n: int) -> torch.Tensor:
        """Append ``n`` ids to the last (rarest) block in place and return them (optimizers
        with per-row state need :func:`synthembed.optim.grow_state`)."""
        check_int(type(self).__name__ + ".grow", "n", n, 0)
        self.tables[-1] = grow_table(
            self.tables[-1], n, f"{type(self).__name__}.tables[{len(self.tables) - 1}]"
        )
        self.block_sizes[-1] += n
        start, self.num_embeddings = self.num_embeddings, self.num_embeddings + n
        device = self.starts.device
        new_ids = torch.arange(start, self.num_embeddings, device=device)
        if self.rank_of is not None:
            self.rank_of = torch.cat([self.rank_of, new_ids])
        return new_ids

    @classmethod
    def from_config(cls, config: dict[str, Any], **extra: Any) -> Any:
        """Rebuild from :meth:`get_config`; a saved rank buffer is restored by :func:`load`."""
        cfg = dict(config) if isinstance(config, dict) else config
        if isinstance(cfg, dict) and "reordered" in cfg:
            # Passed as ``order``: any non-identity permutation allocates the rank buffer,
            # which load() then overwrites.
            v = int(cfg.get("num_embeddings", 0))
            cfg["reordered"] = torch.arange(v).roll(1) if cfg["reordered"] and v > 1 else None
        return super().from_config(cfg, **extra)
