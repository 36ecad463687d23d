"""Compressed bases: embedding tables that spend far less memory on huge vocabularies.

Five techniques, each a layer usable alone and a ``base=`` of
:class:`~synthembed.SyntheticEmbeddingLayer` (registered with
:func:`~synthembed.layers.bases.register_base`):

- ``"hash"``  :class:`HashEmbedding`: k hash functions into a shared pool of B
  rows, combined with learned per-id importance weights (Svenstrup et al.,
  "Hash Embeddings for Efficient Word Representations", NeurIPS 2017).
- ``"qr"``  :class:`QREmbedding`: quotient-remainder compositional embeddings,
  2 or more complementary partitions combined by product, sum or concat
  (Shi et al., "Compositional Embeddings Using Complementary Partitions for
  Memory-Efficient Recommendation Systems", KDD 2020).
- ``"dhe"``  :class:`DHEEmbedding`: deep hash embedding; k dense hash codes of
  the id, normalised, through an MLP; no table at all (Kang et al., "Learning to
  Embed Categorical Features without Embedding Tables for Recommendation",
  KDD 2021).
- ``"lowrank"``  :class:`LowRankEmbedding`: a factorised table
  ``(V, r) @ (r, D)``.
- ``"mixed"``  :class:`MixedDimEmbedding`: frequency-aware mixed dimensions;
  frequent ids get wider rows, each block projected to D (Ginart et al.,
  "Mixed Dimension Embeddings with Application to Memory-Efficient
  Recommendation Systems", ISIT 2021).

**Ids are 64-bit.** ``hash``, ``qr`` and ``dhe`` hash their ids, so they take
any id in ``[0, 2**63 - 1]`` (raw user ids, say) without a vocabulary: for them
``num_embeddings`` is the number of ids the tables are *sized* for (a nominal
value), not a hard bound, and only negative ids are rejected. Their class
attribute ``accepts_any_id`` is True so that a wrapping layer checks only the
sign of the ids. ``lowrank`` and ``mixed`` hold a row (or a rank) per id and
check ids against ``[0, num_embeddings)`` like :class:`~synthembed.Embedding`.

**Hashing is stable** across processes, machines and releases: splitmix64's
finaliser (a fixed bijective mixing function) computed on int64 tensors with
two's-complement wraparound (logical right shifts emulated with masks), salted
per hash function from the layer's ``seed``. Python's ``hash()`` is never used.

Tables live in :class:`torch.nn.Embedding` submodules, so
:func:`synthembed.quantize.quantize` can swap them for int8 tables.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from synthembed._validation import (
    check_choice,
    check_float,
    check_ids,
    check_int,
    check_integer_ids,
    check_nonnegative_ids,
    check_output_finite,
)
from synthembed.errors import ConfigError, ShapeError
from synthembed.io import register_savable
from synthembed.layers.bases import register_base

__all__ = [
    "DHEEmbedding",
    "HashEmbedding",
    "LowRankEmbedding",
    "MixedDimEmbedding",
    "QREmbedding",
    "hash_ids",
    "mix64",
]

# --------------------------------------------------------------------------- hashing
_U64 = 1 << 64
_MASK63 = (1 << 63) - 1


def _signed(c: int) -> int:
    """A 64-bit unsigned constant as the int64 with the same bits."""
    c %= _U64
    return c - _U64 if c >= 1 << 63 else c


_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


def _srl(x: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 bits (torch's ``>>`` is arithmetic)."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def mix64(x: torch.Tensor) -> torch.Tensor:
    """splitmix64's finaliser on int64 bits: a fixed bijection of 64-bit words.

    Multiplications and additions wrap modulo 2**64 (two's complement), so the
    result is bit-identical to the unsigned reference on every machine.

    Shape:
        ``(*)`` int64 -> ``(*)`` int64.

    Example:
        >>> mix64(torch.tensor([0, 1])).tolist()
        [0, 6238072747940578789]
    """
    x = x ^ _srl(x, 30)
    x = x * _signed(_M1)
    x = x ^ _srl(x, 27)
    x = x * _signed(_M2)
    return x ^ _srl(x, 31)


def _mix64_int(z: int) -> int:
    z %= _U64
    z = ((z ^ (z >> 30)) * _M1) % _U64
    z = ((z ^ (z >> 27)) * _M2) % _U64
    return z ^ (z >> 31)


def _salts(seed: int, n: int) -> list[int]:
    """``n`` 64-bit salts from ``seed``: the splitmix64 sequence, as signed ints."""
    state = (seed * _GOLDEN) % _U64
    out = []
    for _ in range(n):
        state = (state + _GOLDEN) % _U64
        out.append(_signed(_mix64_int(state)))
    return out


def hash_ids(ids: torch.Tensor, num_buckets: int, *, seed: int = 0) -> torch.Tensor:
    """Hash int64 ids into ``[0, num_buckets)``, identically on every machine.

    ``bucket = (mix64(id + salt(seed)) & (2**63 - 1)) % num_buckets``.

    Args:
        ids: integer ids of any shape (any int64 value, negatives included).
        num_buckets: number of buckets (>= 1).
        seed: selects an independent hash function.

    Shape:
        ``(*)`` -> ``(*)`` long.

    Example:
        >>> hash_ids(torch.tensor([0, 1, 2**62]), 10, seed=3).shape
        torch.Size([3])
    """
    check_int("hash_ids", "num_buckets", num_buckets, 1)
    check_int("hash_ids", "seed", seed, 0)
    salt = _salts(seed, 1)[0]
    return (mix64(ids.long() + salt) & _MASK63) % num_buckets


# --------------------------------------------------------------------------- shared base
def _normal_(weight: torch.Tensor, std: float) -> None:
    with torch.no_grad():
        weight.normal_(0.0, std)


class _CompressedBase(nn.Module):
    """What every compressed base shares: id checks, padding, config plumbing."""

    accepts_any_id: ClassVar[bool] = False
    num_embeddings: int
    embedding_dim: int
    padding_idx: int | None
    check_finite: bool

    def _setup(
        self, num_embeddings: int, embedding_dim: int, padding_idx: int | None, check_finite: bool
    ) -> None:
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        self.check_finite = bool(check_finite)

    @classmethod
    def _check_common(cls, num_embeddings: Any, embedding_dim: Any, padding_idx: Any) -> int | None:
        owner = cls.__name__
        check_int(owner, "num_embeddings", num_embeddings, 1)
        check_int(owner, "embedding_dim", embedding_dim, 1)
        if padding_idx is None:
            return None
        check_int(owner, "padding_idx", padding_idx, -num_embeddings, num_embeddings - 1)
        return int(padding_idx) + (num_embeddings if padding_idx < 0 else 0)

    def _prepare(self, input: Any) -> torch.Tensor:
        owner = type(self).__name__
        ids = check_integer_ids(input, owner)
        if ids.dtype != torch.long:
            ids = ids.long()
        if self.accepts_any_id:
            check_nonnegative_ids(ids, owner)
        else:
            check_ids(ids, self.num_embeddings, owner)
        return ids

    def _finish(self, out: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Zero the padding positions (no output and, through the mask, no gradient); with
        ``check_finite``, raise on NaN/inf naming the ids that produced it."""
        if self.padding_idx is not None:
            keep = (ids != self.padding_idx).unsqueeze(-1).to(out.dtype)
            out = out * keep
        if self.check_finite:
            check_output_finite(out, ids, type(self).__name__)
        return out

    def _device(self) -> torch.device:
        tensors: list[torch.Tensor] = [*self.parameters(), *self.buffers()]
        for t in tensors:
            return t.device
        return torch.device("cpu")

    def _quantized_children(self) -> list[str]:
        from synthembed.quantize import QuantizedEmbedding

        return sorted(n for n, m in self.named_modules() if isinstance(m, QuantizedEmbedding))

    def _config_extras(self) -> dict[str, Any]:
        floats = [t for t in (*self.parameters(), *self.buffers()) if t.is_floating_point()]
        dtype = floats[0].dtype if floats else torch.float32
        return {
            "check_finite": self.check_finite,
            "dtype": str(dtype).removeprefix("torch."),
            "quantized": self._quantized_children(),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any:
        """Rebuild a layer (fresh weights; int8 tables re-created) from :meth:`get_config`."""
        cfg = dict(config)
        quantized = cfg.pop("quantized", [])
        dtype_name = cfg.pop("dtype", "float32")
        dtype = getattr(torch, str(dtype_name), None)
        if not isinstance(dtype, torch.dtype):
            raise ConfigError(f"Unknown dtype {dtype_name!r} in the {cls.__name__} configuration.")
        module = cls(dtype=dtype, **cfg)
        if quantized:
            from synthembed.quantize import quantize_tables

            quantize_tables(module, quantized)
        return module

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.check_finite:
            s += ", check_finite=True"
        return s


def _table(rows: int, cols: int, sparse: bool, device: Any, dtype: Any) -> nn.Embedding:
    return nn.Embedding(rows, cols, sparse=sparse, device=device, dtype=dtype)


def _grow_table(old: nn.Module, n: int) -> nn.Embedding:
    """A new nn.Embedding with ``n`` more rows (N(0, 1)), the old rows copied."""
    if not isinstance(old, nn.Embedding):
        raise ConfigError(
            "Cannot grow an int8-quantized table; grow the float layer, then quantize again."
        )
    new = nn.Embedding(
        old.num_embeddings + n,
        old.embedding_dim,
        sparse=old.sparse,
        device=old.weight.device,
        dtype=old.weight.dtype,
    )
    with torch.no_grad():
        new.weight[: old.num_embeddings].copy_(old.weight)
    new.weight.requires_grad_(old.weight.requires_grad)
    return new


# --------------------------------------------------------------------------- hash
@register_savable
@register_base("hash")
class HashEmbedding(_CompressedBase):
    r"""Hash embeddings: k hashed rows of a shared pool, mixed by learned importance weights.

    ``out(id) = sum_i p_i(id) * pool[h_i(id)]`` with ``h_1..h_k`` independent
    stable hashes into ``num_buckets`` pool rows and ``p(id)`` a row of k
    importance weights (Svenstrup et al. 2017). Two ids collide completely only
    if all k hashes agree, and their importance weights still differ.

    Importance weights: the paper keeps one row of k weights per id. With the
    default ``num_weights=None`` that is what this layer does (a
    ``(num_embeddings, k)`` table, grown by :meth:`grow`); ids beyond it (this
    base takes any 64-bit id) share rows of that table by hashing. For
    vocabularies too large for even k floats per id, pass ``num_weights`` smaller
    than ``num_embeddings``: every id then takes its importance row by hashing
    (a departure from the paper that keeps memory independent of the id range).

    Args:
        num_embeddings: number of ids the layer is sized for (nominal: any id in
            ``[0, 2**63 - 1]`` is accepted).
        embedding_dim: D, size of each output vector.
        padding_idx: id whose output is zero and receives no gradient.
        num_buckets: B, rows in the shared pool; default ``ceil(num_embeddings / 16)``
            (at least ``num_hashes``).
        num_hashes: k, hash functions per id (``1 <= k <= num_buckets``).
        num_weights: rows of the importance table; None = one per id.
        seed: selects the hash functions (saved with the layer).
        sparse: sparse gradients for the pool and importance tables.
        init_std: standard deviation of outputs at initialisation (1.0 like
            ``torch.nn.Embedding``).
        check_finite: raise :class:`~synthembed.errors.NonFiniteError` at the first
            NaN or infinity in an output, naming the layer and the ids.

    Shape:
        ``(*)`` long ids -> ``(*, embedding_dim)``.

    Example:
        >>> emb = HashEmbedding(1_000_000, 16, num_buckets=1000, num_hashes=2)
        >>> emb(torch.tensor([[3, 2**62]])).shape
        torch.Size([1, 2, 16])
    """

    accepts_any_id: ClassVar[bool] = True

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
    ) -> None:
        owner = type(self).__name__
        padding_idx = self._check_common(num_embeddings, embedding_dim, padding_idx)
        check_int(owner, "num_hashes", num_hashes, 1)
        if num_buckets is None:
            num_buckets = max(num_hashes, math.ceil(num_embeddings / 16))
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
        self._salts = _salts(self.seed, self.num_hashes + 1)  # the last one hashes importance rows
        rows = num_embeddings if num_weights is None else int(num_weights)
        self.pool = _table(self.num_buckets, embedding_dim, self.sparse, device, dtype)
        self.importance = _table(rows, self.num_hashes, self.sparse, device, dtype)
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
            _normal_(self.pool.weight, math.sqrt(self.init_std / self.num_hashes))
        if isinstance(self.importance, nn.Embedding):
            _normal_(self.importance.weight, math.sqrt(self.init_std))

    def buckets(self, ids: torch.Tensor) -> torch.Tensor:
        """The k pool rows of each id: ``(*)`` -> ``(*, k)`` long."""
        cols = [(mix64(ids + s) & _MASK63) % self.num_buckets for s in self._salts[:-1]]
        return torch.stack(cols, dim=-1)

    def weight_rows(self, ids: torch.Tensor) -> torch.Tensor:
        """The importance-table row of each id: ``(*)`` -> ``(*)`` long."""
        rows = self.num_weights
        direct = self.per_id_weights or rows >= self.num_embeddings
        if direct and (ids.numel() == 0 or int(ids.max()) < rows):
            return ids
        hashed = (mix64(ids + self._salts[-1]) & _MASK63) % rows
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
        if isinstance(self.pool, nn.Embedding):
            # Fused: one weighted bag of k pool rows per id.
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
        the importance table gains ``n`` rows. Rebuild optimizers afterwards.
        """
        check_int(type(self).__name__ + ".grow", "n", n, 0)
        if self.per_id_weights:
            self.importance = _grow_table(self.importance, n)
        start, self.num_embeddings = self.num_embeddings, self.num_embeddings + n
        return torch.arange(start, self.num_embeddings, device=self._device())

    def get_config(self) -> dict[str, Any]:
        """The JSON-safe arguments that rebuild this layer (weights not included)."""
        return {
            "num_embeddings": self.num_embeddings,
            "embedding_dim": self.embedding_dim,
            "padding_idx": self.padding_idx,
            "num_buckets": self.num_buckets,
            "num_hashes": self.num_hashes,
            "num_weights": None if self.per_id_weights else self.num_weights,
            "seed": self.seed,
            "sparse": self.sparse,
            "init_std": self.init_std,
            **self._config_extras(),
        }

    def extra_repr(self) -> str:
        return (
            super().extra_repr()
            + f", num_buckets={self.num_buckets}, num_hashes={self.num_hashes}"
            + ("" if self.per_id_weights else f", num_weights={self.num_weights}")
        )


# --------------------------------------------------------------------------- quotient-remainder
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
    num_embeddings: int, num_partitions: int, num_buckets: int | None
) -> list[int]:
    """Table sizes of a mixed-radix (generalised quotient-remainder) partition.

    The first size is the remainder's (``num_buckets``, default the
    ``num_partitions``-th root of ``num_embeddings``); the others split the
    quotient range evenly; their product covers ``num_embeddings``.
    """
    first = num_buckets if num_buckets is not None else _iroot_ceil(num_embeddings, num_partitions)
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
class QREmbedding(_CompressedBase):
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
        num_buckets: m, rows of the remainder table; default the
            ``num_partitions``-th root of ``num_embeddings``.
        num_partitions: number of tables (>= 2); default 2, or ``len(table_sizes)``.
        table_sizes: explicit rows of each table (remainder first), overriding
            ``num_buckets`` and the sizing rule; :meth:`get_config` records them so
            that a grown layer (whose ``num_embeddings`` no longer determines its
            tables) rebuilds with the same tables.
        operation: ``"product"``, ``"sum"`` or ``"concat"`` (then each table holds
            about ``D / num_partitions`` columns).
        seed: the hash for ids beyond capacity.
        sparse: sparse gradients for the tables.
        init_std: standard deviation of outputs at initialisation.
        check_finite: raise :class:`~synthembed.errors.NonFiniteError` at the first
            NaN or infinity in an output, naming the layer and the ids.

    Shape:
        ``(*)`` long ids -> ``(*, embedding_dim)``.

    Example:
        >>> emb = QREmbedding(100_000_000, 32, num_buckets=10_000)
        >>> [t.num_embeddings for t in emb.tables]
        [10000, 10000]
        >>> emb(torch.tensor([0, 99_999_999, 2**63 - 1])).shape
        torch.Size([3, 32])
    """

    accepts_any_id: ClassVar[bool] = True

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        *,
        num_buckets: int | None = None,
        num_partitions: int | None = None,
        table_sizes: Sequence[int] | None = None,
        operation: QROperation = "product",
        seed: int = 0,
        sparse: bool = False,
        init_std: float = 1.0,
        check_finite: bool = False,
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        owner = type(self).__name__
        padding_idx = self._check_common(num_embeddings, embedding_dim, padding_idx)
        check_int(owner, "num_buckets", num_buckets, 1, optional=True)
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
            if num_buckets is not None and num_buckets != sizes[0]:
                raise ConfigError(
                    f"{owner} got num_buckets={num_buckets} but table_sizes[0]={sizes[0]} (the "
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
            sizes = qr_partition_sizes(num_embeddings, num_partitions, num_buckets)
        self.sizes = [int(size) for size in sizes]
        self.num_buckets = self.sizes[0]
        self.num_partitions = int(num_partitions)
        self.operation: QROperation = operation
        self.seed = int(seed)
        self.sparse = bool(sparse)
        self.init_std = float(init_std)
        self.capacity = math.prod(self.sizes)
        self._salt = _salts(self.seed, 1)[0]
        if operation == "concat":
            q, r = divmod(embedding_dim, num_partitions)
            self.dims = [q + (1 if j < r else 0) for j in range(num_partitions)]
        else:
            self.dims = [embedding_dim] * num_partitions
        self.tables = nn.ModuleList(
            _table(s, d, self.sparse, device, dtype) for s, d in zip(self.sizes, self.dims)
        )
        self.reset_parameters()

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
                _normal_(t.weight, std)

    def digits(self, ids: torch.Tensor) -> list[torch.Tensor]:
        """The row of each table for each id (mixed-radix digits): n tensors of shape ``(*)``."""
        if ids.numel() and int(ids.max()) >= self.capacity:
            hashed = (mix64(ids + self._salt) & _MASK63) % self.capacity
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

    def get_config(self) -> dict[str, Any]:
        """The JSON-safe arguments that rebuild this layer (weights not included)."""
        return {
            "num_embeddings": self.num_embeddings,
            "embedding_dim": self.embedding_dim,
            "padding_idx": self.padding_idx,
            "num_buckets": self.num_buckets,
            "num_partitions": self.num_partitions,
            "table_sizes": list(self.sizes),
            "operation": self.operation,
            "seed": self.seed,
            "sparse": self.sparse,
            "init_std": self.init_std,
            **self._config_extras(),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any:
        """Rebuild from :meth:`get_config`: the recorded table sizes, not re-derived ones.

        A grown layer's ``num_embeddings`` no longer gives its tables' sizes, so they
        are rebuilt from ``table_sizes`` (``_sizes`` in files saved before it existed).
        """
        cfg = dict(config)
        legacy = cfg.pop("_sizes", None)
        if legacy is not None and cfg.get("table_sizes") is None:
            cfg["table_sizes"] = legacy
        return super().from_config(cfg)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", sizes={self.sizes}, operation={self.operation!r}"


# --------------------------------------------------------------------------- deep hash embedding
DHEDistribution = Literal["uniform", "gaussian"]


@register_savable
@register_base("dhe")
class DHEEmbedding(_CompressedBase):
    r"""Deep hash embedding: dense hash codes of the id through an MLP, no table.

    Each id is encoded by k stable hashes into ``[0, hash_range)``, normalised to
    ``[-1, 1]`` (``"uniform"``) or to a standard normal through Box-Muller
    (``"gaussian"``), and decoded to D by an MLP (Kang et al., KDD 2021). All
    parameters are in the MLP; memory does not depend on the number of ids.

    Departures from the paper: Mish activations as in the paper but no batch
    normalisation (it couples a lookup to its batch); hash codes are computed
    in chunks of rows to bound memory.

    Args:
        num_embeddings: nominal number of ids (any id in ``[0, 2**63 - 1]`` works).
        embedding_dim: D, size of each output vector.
        padding_idx: id whose output is zero.
        num_hashes: k, length of the dense hash code (paper: 1024).
        hidden_dims: widths of the MLP's hidden layers.
        hash_range: m, each hash takes values in ``[0, m)`` (paper: 10**6).
        distribution: ``"uniform"`` or ``"gaussian"`` (k must be even).
        seed: selects the hash functions.
        check_finite: raise :class:`~synthembed.errors.NonFiniteError` at the first
            NaN or infinity in an output, naming the layer and the ids.

    Shape:
        ``(*)`` long ids -> ``(*, embedding_dim)``.

    Example:
        >>> emb = DHEEmbedding(10**9, 8, num_hashes=32, hidden_dims=(16,))
        >>> emb(torch.tensor([5, 10**12])).shape
        torch.Size([2, 8])
    """

    accepts_any_id: ClassVar[bool] = True
    salts: torch.Tensor
    _CHUNK_ELEMENTS = 1 << 22  # int64 hash temporaries per chunk (32 MiB)

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        *,
        num_hashes: int = 1024,
        hidden_dims: Sequence[int] = (512, 256),
        hash_range: int = 1_000_000,
        distribution: DHEDistribution = "uniform",
        seed: int = 0,
        check_finite: bool = False,
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        owner = type(self).__name__
        padding_idx = self._check_common(num_embeddings, embedding_dim, padding_idx)
        check_int(owner, "num_hashes", num_hashes, 1)
        check_int(owner, "hash_range", hash_range, 2)
        check_choice(owner, "distribution", distribution, ("uniform", "gaussian"))
        if distribution == "gaussian" and num_hashes % 2:
            raise ConfigError(
                f"distribution='gaussian' pairs hash codes (Box-Muller), so num_hashes must be "
                f"even. Got {num_hashes} instead."
            )
        hidden = list(hidden_dims)
        for width in hidden:
            check_int(owner, "hidden_dims[i]", width, 1)
        check_int(owner, "seed", seed, 0)
        super().__init__()
        self._setup(num_embeddings, embedding_dim, padding_idx, check_finite)
        self.num_hashes = int(num_hashes)
        self.hidden_dims = hidden
        self.hash_range = int(hash_range)
        self.distribution: DHEDistribution = distribution
        self.seed = int(seed)
        salts = torch.tensor(_salts(self.seed, self.num_hashes), dtype=torch.long, device=device)
        self.register_buffer("salts", salts, persistent=False)
        layers: list[nn.Module] = []
        width = self.num_hashes
        for h in hidden:
            layers += [nn.Linear(width, h, device=device, dtype=dtype), nn.Mish()]
            width = h
        layers.append(nn.Linear(width, embedding_dim, device=device, dtype=dtype))
        self.mlp = nn.Sequential(*layers)

    def reset_parameters(self) -> None:
        """Re-initialise the MLP (PyTorch's default Linear initialisation)."""
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                m.reset_parameters()

    def encode(self, ids: torch.Tensor) -> torch.Tensor:
        """The dense hash code of each id: ``(N,)`` long -> ``(N, k)`` float32."""
        n, k, m = ids.numel(), self.num_hashes, self.hash_range
        out = torch.empty((n, k), dtype=torch.float32, device=ids.device)
        step = max(1, self._CHUNK_ELEMENTS // k)
        for start in range(0, n, step):
            chunk = ids[start : start + step].unsqueeze(1) + self.salts  # (c, k)
            h = ((mix64(chunk) & _MASK63) % m).to(torch.float64)
            if self.distribution == "uniform":
                out[start : start + step] = (h * (2.0 / (m - 1)) - 1.0).to(torch.float32)
            else:  # Box-Muller on pairs of codes, both uniform in (0, 1]
                u = (h + 1.0) / m
                u1, u2 = u[:, 0::2], u[:, 1::2]
                r = torch.sqrt(-2.0 * torch.log(u1))
                z = torch.stack(
                    (r * torch.cos(2 * math.pi * u2), r * torch.sin(2 * math.pi * u2)), dim=-1
                )
                out[start : start + step] = z.reshape(-1, k).to(torch.float32)
        return out

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Encode ids and decode them with the MLP.

        Raises:
            InvalidIndexError: negative ids.
            ShapeError: non-integer ids.
            NonFiniteError: NaN/inf in the output, with ``check_finite=True``.
        """
        ids = self._prepare(input)
        first = self.mlp[0]
        assert isinstance(first, nn.Linear)
        codes = self.encode(ids.reshape(-1)).to(first.weight.dtype)  # (N, k)
        out = self.mlp(codes).reshape(*ids.shape, self.embedding_dim)
        return self._finish(out, ids)

    def grow(self, n: int) -> torch.Tensor:
        """Count ``n`` more ids and return them; nothing to allocate (no table)."""
        check_int(type(self).__name__ + ".grow", "n", n, 0)
        start, self.num_embeddings = self.num_embeddings, self.num_embeddings + n
        return torch.arange(start, self.num_embeddings, device=self.salts.device)

    def get_config(self) -> dict[str, Any]:
        """The JSON-safe arguments that rebuild this layer (weights not included)."""
        return {
            "num_embeddings": self.num_embeddings,
            "embedding_dim": self.embedding_dim,
            "padding_idx": self.padding_idx,
            "num_hashes": self.num_hashes,
            "hidden_dims": list(self.hidden_dims),
            "hash_range": self.hash_range,
            "distribution": self.distribution,
            "seed": self.seed,
            **self._config_extras(),
        }

    def extra_repr(self) -> str:
        return (
            super().extra_repr()
            + f", num_hashes={self.num_hashes}, hidden_dims={self.hidden_dims}"
            + ("" if self.distribution == "uniform" else f", distribution={self.distribution!r}")
        )


# --------------------------------------------------------------------------- low rank
@register_savable
@register_base("lowrank")
class LowRankEmbedding(_CompressedBase):
    r"""A factorised table: ``out = A[id] @ B`` with ``A`` of ``(V, r)`` and ``B`` of ``(r, D)``.

    ``r * (V + D)`` parameters instead of ``V * D``: about ``D / r`` times fewer.

    Args:
        num_embeddings: V, number of ids (checked: ids must lie in ``[0, V)``).
        embedding_dim: D.
        padding_idx: id whose output is zero and receives no gradient.
        rank: r (``1 <= r <= D``); default ``max(1, D // 8)``.
        sparse: sparse gradients for ``A``.
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
    ) -> None:
        owner = type(self).__name__
        padding_idx = self._check_common(num_embeddings, embedding_dim, padding_idx)
        if rank is None:
            rank = max(1, embedding_dim // 8)
        check_int(owner, "rank", rank, 1, embedding_dim)
        check_float(owner, "init_std", init_std, 0.0, low_closed=False)
        super().__init__()
        self._setup(num_embeddings, embedding_dim, padding_idx, check_finite)
        self.rank = int(rank)
        self.sparse = bool(sparse)
        self.init_std = float(init_std)
        self.factor = _table(num_embeddings, self.rank, self.sparse, device, dtype)
        self.projection = nn.Linear(
            self.rank, embedding_dim, bias=False, device=device, dtype=dtype
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """A ~ N(0, init_std), B ~ N(0, init_std / r): outputs have std ``init_std``.

        Balanced factors (both ~ sqrt(init_std)): Adam-like steps move both alike.
        """
        if isinstance(self.factor, nn.Embedding):
            _normal_(self.factor.weight, math.sqrt(self.init_std))
        _normal_(self.projection.weight, math.sqrt(self.init_std / self.rank))

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
        """Append ``n`` rows to ``A`` (N(0, 1)) and return the new ids. Rebuild optimizers."""
        check_int(type(self).__name__ + ".grow", "n", n, 0)
        self.factor = _grow_table(self.factor, n)
        start, self.num_embeddings = self.num_embeddings, self.num_embeddings + n
        return torch.arange(start, self.num_embeddings, device=self.projection.weight.device)

    def get_config(self) -> dict[str, Any]:
        """The JSON-safe arguments that rebuild this layer (weights not included)."""
        return {
            "num_embeddings": self.num_embeddings,
            "embedding_dim": self.embedding_dim,
            "padding_idx": self.padding_idx,
            "rank": self.rank,
            "sparse": self.sparse,
            "init_std": self.init_std,
            **self._config_extras(),
        }

    def extra_repr(self) -> str:
        return super().extra_repr() + f", rank={self.rank}"


# --------------------------------------------------------------------------- mixed dimensions
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
class MixedDimEmbedding(_CompressedBase):
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
    ) -> None:
        owner = type(self).__name__
        padding_idx = self._check_common(num_embeddings, embedding_dim, padding_idx)
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
        self.init_std = float(init_std)
        self.reordered = rank_of is not None
        if rank_of is not None:
            self.register_buffer("rank_of", rank_of.to(device))
        else:
            self.rank_of = None
        self.register_buffer("starts", self._starts(), persistent=False)
        self.tables = nn.ModuleList(
            _table(s, d, self.sparse, device, dtype) for s, d in zip(sizes, dims)
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
                _normal_(p.weight, math.sqrt(self.init_std / d))
                std = math.sqrt(self.init_std)
            else:
                std = self.init_std
            if isinstance(t, nn.Embedding):
                _normal_(t.weight, std)

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
        """Append ``n`` ids to the last (rarest) block and return them. Rebuild optimizers."""
        check_int(type(self).__name__ + ".grow", "n", n, 0)
        self.tables[-1] = _grow_table(self.tables[-1], n)
        self.block_sizes[-1] += n
        start, self.num_embeddings = self.num_embeddings, self.num_embeddings + n
        device = self.starts.device
        new_ids = torch.arange(start, self.num_embeddings, device=device)
        if self.rank_of is not None:
            self.rank_of = torch.cat([self.rank_of, new_ids])
        return new_ids

    def get_config(self) -> dict[str, Any]:
        """The JSON-safe arguments that rebuild this layer (weights and rank buffer not included)."""
        return {
            "num_embeddings": self.num_embeddings,
            "embedding_dim": self.embedding_dim,
            "padding_idx": self.padding_idx,
            "alpha": self.alpha,
            "block_sizes": list(self.block_sizes),
            "block_dims": list(self.block_dims),
            "sparse": self.sparse,
            "init_std": self.init_std,
            "reordered": self.reordered,
            **self._config_extras(),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any:
        """Rebuild from :meth:`get_config`; a saved rank buffer is restored by :func:`load`."""
        cfg = dict(config)
        if cfg.pop("reordered", False):
            # Any non-identity permutation allocates the buffer; load() overwrites it.
            v = int(cfg["num_embeddings"])
            cfg["order"] = torch.arange(v).roll(1) if v > 1 else None
        return super().from_config(cfg)

    def extra_repr(self) -> str:
        return (
            super().extra_repr() + f", block_sizes={self.block_sizes}, block_dims={self.block_dims}"
        )
