"""The ``qr`` base: quotient-remainder compositional embeddings over complementary partitions.

Shi, Mudigere, Naumov and Yang, "Compositional Embeddings Using Complementary
Partitions for Memory-Efficient Recommendation Systems", KDD 2020.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from synthembed._config import Option
from synthembed._deprecation import renamed
from synthembed._validation import check_choice, check_float, check_int
from synthembed.errors import ConfigError
from synthembed.io import register_savable
from synthembed.layers.bases._common import (
    FUSED_OPTION,
    HEAD_OPTIONS,
    TAIL_OPTIONS,
    CompressedBase,
    check_fused,
    make_table,
    normal_,
)
from synthembed.layers.bases.hashing import salted_buckets, salts
from synthembed.layers.bases.registry import register_base

__all__ = ["QREmbedding", "QROperation", "qr_partition_sizes"]

QROperation = Literal["product", "sum", "concat"]


def _iroot_ceil(x: int, n: int) -> int:
    """The smallest integer r with r**n >= x (x >= 1, n >= 1)."""
    r = max(1, round(x ** (1.0 / n)))
    while r**n < x:
        r += 1
    while r > 1 and (r - 1) ** n >= x:
        r -= 1
    return r


def qr_partition_sizes(
    num_embeddings: int, num_partitions: int, num_collisions: int | None
) -> list[int]:
    """Table sizes of a mixed-radix (generalised quotient-remainder) partition.

    The first size is the remainder's (``num_collisions``, default the
    ``num_partitions``-th root of ``num_embeddings``); the others split the
    quotient range evenly; their product covers ``num_embeddings``.
    """
    first = (
        num_collisions
        if num_collisions is not None
        else _iroot_ceil(num_embeddings, num_partitions)
    )
    rest = math.ceil(num_embeddings / first)
    if num_partitions == 1:
        return [max(first, num_embeddings)]
    k = num_partitions - 1
    side = _iroot_ceil(rest, k)
    sizes = [first] + [side] * (k - 1)
    sizes.append(max(1, math.ceil(rest / math.prod(sizes[1:]))))
    return sizes


@register_savable
@register_base("qr")
class QREmbedding(CompressedBase):
    r"""Quotient-remainder compositional embeddings over complementary partitions.

    With two partitions an id maps to ``(id % m, id // m)``: a remainder table
    of m rows and a quotient table of ``ceil(V / m)`` rows, whose rows are
    combined by ``"product"`` (elementwise, the paper's best), ``"sum"`` or
    ``"concat"``. No two ids below ``V`` share both rows (the partitions are
    complementary), so every id keeps a unique vector. With n > 2 partitions
    the id is written in a mixed radix (generalised QR), one table per digit.

    Ids at or beyond the capacity ``prod(table sizes)`` (this base takes any
    64-bit id) are first hashed into ``[0, capacity)`` with a stable hash, so
    raw 64-bit ids spread over all rows instead of aliasing on their low digits.

    Args:
        num_embeddings: number of ids the tables are sized for (nominal).
        embedding_dim: D, size of each output vector.
        padding_idx: id whose output is zero and receives no gradient.
        num_collisions: m, rows of the remainder table; default the
            ``num_partitions``-th root of ``num_embeddings``.
        num_partitions: number of tables (>= 2); default 2, or ``len(table_sizes)``.
        table_sizes: explicit rows of each table (remainder first), overriding
            ``num_collisions`` and the sizing rule; :meth:`get_config` records them so
            that a grown layer (whose ``num_embeddings`` no longer determines its
            tables) rebuilds with the same tables.
        operation: ``"product"``, ``"sum"`` or ``"concat"`` (then each table holds
            about ``D / num_partitions`` columns).
        seed: the hash for ids beyond capacity.
        sparse: sparse gradients for the tables.
        fused_optimizer: an optimizer of :mod:`synthembed.optim` built without
            parameters (e.g. ``synthembed.optim.RowWiseAdagrad(lr=0.01)``): the tables then
            update their rows inside backward, with no gradient (not with ``sparse``).
        init_std: standard deviation of outputs at initialisation.
        check_finite: raise :class:`~synthembed.errors.NonFiniteError` at the first
            NaN or infinity in an output, naming the layer and the ids.

    Shape:
        ``(*)`` long ids -> ``(*, embedding_dim)``.

    Example:
        >>> emb = QREmbedding(100_000_000, 32, num_collisions=10_000)
        >>> [t.num_embeddings for t in emb.tables]
        [10000, 10000]
        >>> emb(torch.tensor([0, 99_999_999, 2**63 - 1])).shape
        torch.Size([3, 32])
    """

    accepts_any_id: ClassVar[bool] = True
    config_options = (
        *HEAD_OPTIONS,
        Option("num_collisions"),
        Option("num_partitions"),
        Option("table_sizes", get=lambda m: list(m.sizes)),
        Option("operation"),
        Option("seed"),
        Option("sparse"),
        Option("init_std"),
        FUSED_OPTION,
        *TAIL_OPTIONS,
    )

    @renamed(num_buckets="num_collisions")
    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        *,
        num_collisions: int | None = None,
        num_partitions: int | None = None,
        table_sizes: Sequence[int] | None = None,
        operation: QROperation = "product",
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
        check_int(owner, "num_collisions", num_collisions, 1, optional=True)
        sizes: list[int] | None = None
        if table_sizes is not None:
            sizes = list(table_sizes)
            if len(sizes) < 2:
                raise ConfigError(
                    f"The 'table_sizes' parameter of {owner} must list at least 2 table sizes "
                    f"(one per partition). Got {sizes!r} instead."
                )
            for size in sizes:
                check_int(owner, "table_sizes[i]", size, 1)
            if num_partitions is None:
                num_partitions = len(sizes)
            if num_partitions != len(sizes):
                raise ConfigError(
                    f"{owner} got num_partitions={num_partitions!r} but {len(sizes)} table_sizes "
                    f"{sizes}; pass one size per partition (or leave num_partitions out)."
                )
            if num_collisions is not None and num_collisions != sizes[0]:
                raise ConfigError(
                    f"{owner} got num_collisions={num_collisions} but table_sizes[0]={sizes[0]} (the "
                    "remainder table); pass one of them, or the same value."
                )
        elif num_partitions is None:
            num_partitions = 2
        check_int(owner, "num_partitions", num_partitions, 2)
        check_choice(owner, "operation", operation, ("product", "sum", "concat"))
        if operation == "concat" and embedding_dim < num_partitions:
            raise ConfigError(
                f"operation='concat' splits embedding_dim={embedding_dim} over "
                f"num_partitions={num_partitions} tables; embedding_dim must be >= num_partitions."
            )
        check_int(owner, "seed", seed, 0)
        check_float(owner, "init_std", init_std, 0.0, low_closed=False)
        super().__init__()
        self._setup(num_embeddings, embedding_dim, padding_idx, check_finite)
        if sizes is None:
            sizes = qr_partition_sizes(num_embeddings, num_partitions, num_collisions)
        self.sizes = [int(size) for size in sizes]
        self.num_collisions = self.sizes[0]
        self.num_partitions = int(num_partitions)
        self.operation: QROperation = operation
        self.seed = int(seed)
        self.sparse = bool(sparse)
        self.fused_optimizer = spec
        self.init_std = float(init_std)
        self.capacity = math.prod(self.sizes)
        self._salt = salts(self.seed, 1)[0]
        if operation == "concat":
            q, r = divmod(embedding_dim, num_partitions)
            self.dims = [q + (1 if j < r else 0) for j in range(num_partitions)]
        else:
            self.dims = [embedding_dim] * num_partitions
        self.tables = nn.ModuleList(
            make_table(s, d, self.sparse, device, dtype, spec)
            for s, d in zip(self.sizes, self.dims)
        )
        self.reset_parameters()

    @property
    def num_buckets(self) -> int:
        """Deprecated alias of :attr:`num_collisions` (the remainder table's rows)."""
        return self.num_collisions

    def reset_parameters(self) -> None:
        """Tables ~ N(0, s²) with s chosen so that outputs have std ``init_std``."""
        n = self.num_partitions
        if self.operation == "product":
            std = self.init_std ** (1.0 / n)
        elif self.operation == "sum":
            std = self.init_std / math.sqrt(n)
        else:
            std = self.init_std
        for t in self.tables:
            if isinstance(t, nn.Embedding):
                normal_(t.weight, std)

    def digits(self, ids: torch.Tensor) -> list[torch.Tensor]:
        """The row of each table for each id (mixed-radix digits): n tensors of shape ``(*)``."""
        if ids.numel() and int(ids.max()) >= self.capacity:
            hashed = salted_buckets(ids, self._salt, self.capacity)
            ids = torch.where(ids < self.capacity, ids, hashed)
        out = []
        rest = ids
        for j, size in enumerate(self.sizes):
            if j == len(self.sizes) - 1:
                out.append(rest)
            else:
                out.append(rest % size)
                rest = torch.div(rest, size, rounding_mode="floor")
        return out

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Look up ids.

        Raises:
            InvalidIndexError: negative ids.
            ShapeError: non-integer ids.
            NonFiniteError: NaN/inf in the output, with ``check_finite=True``.
        """
        ids = self._prepare(input)
        parts = [table(d) for table, d in zip(self.tables, self.digits(ids))]
        if self.operation == "concat":
            out = torch.cat(parts, dim=-1)
        else:
            out = parts[0]
            for part in parts[1:]:
                out = out * part if self.operation == "product" else out + part
        return self._finish(out, ids)

    def grow(self, n: int) -> torch.Tensor:
        """Count ``n`` more ids and return them, a ``(n,)`` long tensor.

        The tables keep their sizes: new ids below the capacity get unique row
        combinations, ids beyond it share rows through the hash. The sizes are part
        of :meth:`get_config` (``table_sizes``), so a grown layer saves and reloads
        with the same tables.
        """
        check_int(type(self).__name__ + ".grow", "n", n, 0)
        start, self.num_embeddings = self.num_embeddings, self.num_embeddings + n
        return torch.arange(start, self.num_embeddings, device=self._device())

    @classmethod
    def from_config(cls, config: dict[str, Any], **extra: Any) -> Any:
        """Rebuild from :meth:`get_config`: the recorded table sizes, not re-derived ones.

        A grown layer's ``num_embeddings`` no longer gives its tables' sizes, so they
        are rebuilt from ``table_sizes`` (``_sizes`` in files saved before it existed).
        """
        if not isinstance(config, dict):
            return super().from_config(config, **extra)
        cfg = dict(config)
        legacy = cfg.pop("_sizes", None)
        if legacy is not None and cfg.get("table_sizes") is None:
            cfg["table_sizes"] = legacy
        # Files written before the rename call the remainder rows "num_buckets".
        if "num_buckets" in cfg and "num_collisions" not in cfg:
            cfg["num_collisions"] = cfg.pop("num_buckets")
        return super().from_config(cfg, **extra)
