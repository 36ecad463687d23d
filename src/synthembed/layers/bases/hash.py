"""The ``hash`` base: k hashed rows of a shared pool, mixed by learned importance weights.

Svenstrup, Hansen and Winther, "Hash Embeddings for Efficient Word
Representations", NeurIPS 2017.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from synthembed._config import Option
from synthembed._validation import check_float, check_int
from synthembed.errors import ConfigError
from synthembed.io import register_savable
from synthembed.layers.bases._common import (
    FUSED_OPTION,
    HEAD_OPTIONS,
    TAIL_OPTIONS,
    CompressedBase,
    FusedTable,
    check_fused,
    grow_table,
    make_table,
    normal_,
)
from synthembed.layers.bases.hashing import salted_buckets, salts
from synthembed.layers.bases.registry import register_base

__all__ = ["HashEmbedding"]


#: Default caps: pool rows, and per-id importance rows (ids beyond share rows by hashing).
MAX_BUCKETS, MAX_ID_WEIGHTS = 2**20, 2**22


@register_savable
@register_base("hash")
class HashEmbedding(CompressedBase):
    r"""Hash embeddings: k hashed rows of a shared pool, mixed by learned importance weights.

    ``out(id) = sum_i p_i(id) * pool[h_i(id)]`` with ``h_1..h_k`` independent
    stable hashes into ``num_buckets`` pool rows and ``p(id)`` a row of k
    importance weights (Svenstrup et al. 2017). Two ids collide completely only
    if all k hashes agree, and their importance weights still differ.

    Importance weights: the paper keeps one row of k weights per id. With the
    default ``num_weights=None`` that is what this layer does for the first
    2**22 ids (a ``(min(num_embeddings, 2**22), k)`` table, grown by :meth:`grow`);
    ids beyond it (this base takes any 64-bit id) share rows of that table by hashing. For
    vocabularies too large for even k floats per id, pass ``num_weights`` smaller
    than ``num_embeddings``: every id then takes its importance row by hashing
    (a departure from the paper that keeps memory independent of the id range).

    Args:
        num_embeddings: number of ids the layer is sized for (nominal: any id in
            ``[0, 2**63 - 1]`` is accepted).
        embedding_dim: D, size of each output vector.
        padding_idx: id whose output is zero and receives no gradient.
        num_buckets: B, rows in the shared pool; default ``ceil(num_embeddings / 16)``, at
            least ``num_hashes`` and at most 2**20 (512 MiB at D=128: with the default
            optimizer state a 100M-id step fits in about 1.2 GB; the cost of the cap,
            measured: a 131,072-row pool lost 0.008 AUC against a full table at 10M ids,
            benchmarks/results/clicklog.md).
        num_hashes: k, hash functions per id (``1 <= k <= num_buckets``).
        num_weights: rows of the importance table; None = one per id for the first
            2**22 ids (32 MiB at the default k=2); ids beyond take
            hashed rows of it.
        seed: selects the hash functions (saved with the layer).
        sparse: sparse gradients for the pool and importance tables.
        init_std: standard deviation of outputs at initialisation (1.0 like
            ``torch.nn.Embedding``).
        check_finite: raise :class:`~synthembed.errors.NonFiniteError` at the first
            NaN or infinity in an output, naming the layer and the ids.
        fused_optimizer: an optimizer of :mod:`synthembed.optim` built without
            parameters (e.g. ``synthembed.optim.RowWiseAdagrad(lr=0.01)``): the pool and importance tables then
            update their rows inside backward, with no gradient (not with ``sparse``).

    Shape:
        ``(*)`` long ids -> ``(*, embedding_dim)``.

    Example:
        >>> emb = HashEmbedding(1_000_000, 16, num_buckets=1000, num_hashes=2)
        >>> emb(torch.tensor([[3, 2**62]])).shape
        torch.Size([1, 2, 16])
    """

    accepts_any_id: ClassVar[bool] = True
    config_options = (
        *HEAD_OPTIONS,
        Option("num_buckets"),
        Option("num_hashes"),
        Option("num_weights", get=lambda m: None if m.per_id_weights else m.num_weights),
        Option("seed"),
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
        num_buckets: int | None = None,
        num_hashes: int = 2,
        num_weights: int | None = None,
        seed: int = 0,
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
        check_int(owner, "num_hashes", num_hashes, 1)
        if num_buckets is None:
            num_buckets = max(num_hashes, min(math.ceil(num_embeddings / 16), MAX_BUCKETS))
        check_int(owner, "num_buckets", num_buckets, 1)
        if num_hashes > num_buckets:
            raise ConfigError(
                f"The 'num_hashes' parameter of {owner} must be <= num_buckets={num_buckets} "
                f"(k hash functions pick k rows of a pool of B rows). Got {num_hashes} instead; "
                "lower num_hashes or raise num_buckets."
            )
        check_int(owner, "num_weights", num_weights, 1, optional=True)
        check_int(owner, "seed", seed, 0)
        check_float(owner, "init_std", init_std, 0.0, low_closed=False)
        super().__init__()
        self._setup(num_embeddings, embedding_dim, padding_idx, check_finite)
        self.num_buckets = int(num_buckets)
        self.num_hashes = int(num_hashes)
        self.per_id_weights = num_weights is None
        self.seed = int(seed)
        self.sparse = bool(sparse)
        self.init_std = float(init_std)
        self._salts = salts(self.seed, self.num_hashes + 1)  # the last one hashes importance rows
        rows = min(num_embeddings, MAX_ID_WEIGHTS) if num_weights is None else int(num_weights)
        self.fused_optimizer = spec
        self.pool = make_table(self.num_buckets, embedding_dim, self.sparse, device, dtype, spec)
        self.importance = make_table(rows, self.num_hashes, self.sparse, device, dtype, spec)
        self.reset_parameters()

    @property
    def num_weights(self) -> int:
        """Rows of the importance table."""
        return int(self.importance.num_embeddings)

    def reset_parameters(self) -> None:
        """Pool ~ N(0, init_std/k), importance ~ N(0, init_std): outputs have variance init_std².

        The two factors of each product get balanced scales (both ~ sqrt(init_std)),
        so that Adam-like optimizers, whose steps do not scale with the
        parameter, move both at the same relative rate.
        """
        if isinstance(self.pool, nn.Embedding):
            normal_(self.pool.weight, math.sqrt(self.init_std / self.num_hashes))
        if isinstance(self.importance, nn.Embedding):
            normal_(self.importance.weight, math.sqrt(self.init_std))

    def buckets(self, ids: torch.Tensor) -> torch.Tensor:
        """The k pool rows of each id: ``(*)`` -> ``(*, k)`` long."""
        cols = [salted_buckets(ids, s, self.num_buckets) for s in self._salts[:-1]]
        return torch.stack(cols, dim=-1)

    def weight_rows(self, ids: torch.Tensor) -> torch.Tensor:
        """The importance-table row of each id: ``(*)`` -> ``(*)`` long."""
        rows = self.num_weights
        direct = self.per_id_weights or rows >= self.num_embeddings
        if direct and (ids.numel() == 0 or int(ids.max()) < rows):
            return ids
        hashed = salted_buckets(ids, self._salts[-1], rows)
        return torch.where(ids < rows, ids, hashed) if direct else hashed

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Look up ids.

        Raises:
            InvalidIndexError: negative ids.
            ShapeError: non-integer ids.
            NonFiniteError: NaN/inf in the output, with ``check_finite=True``.
        """
        ids = self._prepare(input)
        h = self.buckets(ids)  # (*, k)
        p = self.importance(self.weight_rows(ids))  # (*, k)
        if isinstance(self.pool, FusedTable) and self.pool.fusing():
            # The optimizer fused into backward: the same weighted bag, rows updated in place.
            out = self.pool.fused.bag(
                self.pool.weight,
                h.reshape(-1, self.num_hashes),
                "sum",
                per_sample_weights=p.reshape(-1, self.num_hashes).to(self.pool.weight.dtype),
            ).reshape(*ids.shape, self.embedding_dim)
        elif isinstance(self.pool, nn.Embedding):
            # Fused: one weighted bag of k pool rows per id (public torch; the int8 branch
            # below is its plain twin).
            # TODO(kernels): route through synthembed._kernels.bag (its reference set is this
            # very call) once the fast set's bag is checked to pass gradients to
            # per_sample_weights and to honour sparse=True.
            out = F.embedding_bag(
                h.reshape(-1, self.num_hashes),
                self.pool.weight,
                mode="sum",
                sparse=self.sparse,
                per_sample_weights=p.reshape(-1, self.num_hashes).to(self.pool.weight.dtype),
            ).reshape(*ids.shape, self.embedding_dim)
        else:  # an int8 pool: dequantized rows, then the weighted sum
            out = (self.pool(h) * p.unsqueeze(-1)).sum(dim=-2)  # (*, k, D) -> (*, D)
        return self._finish(out, ids)

    def grow(self, n: int) -> torch.Tensor:
        """Make room for ``n`` more ids and return them, a ``(n,)`` long tensor.

        The pool is shared and keeps its size; with per-id importance weights
        the importance table gains ``n`` rows in place (same Parameter; optimizers
        with per-row state need :func:`synthembed.optim.grow_state`).
        """
        check_int(type(self).__name__ + ".grow", "n", n, 0)
        more = min(self.num_embeddings + n, MAX_ID_WEIGHTS) - self.num_weights
        if self.per_id_weights and more > 0:
            self.importance = grow_table(self.importance, more, f"{type(self).__name__}.importance")
        start, self.num_embeddings = self.num_embeddings, self.num_embeddings + n
        return torch.arange(start, self.num_embeddings, device=self._device())
