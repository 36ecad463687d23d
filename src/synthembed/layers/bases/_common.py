"""What the compressed bases share: id checks, padding, config plumbing, table helpers.

Tables live in :class:`torch.nn.Embedding` submodules, so
:func:`synthembed.quantize.quantize` can swap them for int8 tables.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from synthembed._config import DTYPE, Configurable, Option
from synthembed._validation import (
    check_ids,
    check_int,
    check_integer_ids,
    check_nonnegative_ids,
    check_output_finite,
)
from synthembed.errors import ConfigError
from synthembed.layers.quantized import QuantizedEmbedding, quantize_tables
from synthembed.optim.fused import FUSED_OPTIMIZER, FusedRows, check_fused_optimizer
from synthembed.optim.growth import grow_parameter
from synthembed.optim.sparse import SparseRowOptimizer

__all__ = [
    "FUSED_OPTION",
    "HEAD_OPTIONS",
    "TAIL_OPTIONS",
    "CompressedBase",
    "FusedTable",
    "check_fused",
    "grow_table",
    "make_table",
    "normal_",
]

#: The ``fused_optimizer`` option of the bases with tables.
FUSED_OPTION = Option("fused_optimizer", codec=FUSED_OPTIMIZER)


def normal_(weight: torch.Tensor, std: float) -> None:
    """Fill ``weight`` with N(0, std²) draws, outside autograd."""
    with torch.no_grad():
        weight.normal_(0.0, std)


class FusedTable(nn.Embedding):
    """A base's table whose optimizer runs inside backward: the rows a batch reached are
    updated in place, ``weight.grad`` stays None (:mod:`synthembed.optim.fused`); the
    optimizer state is saved with the layer (``<table>.fused.*``)."""

    def __init__(
        self, rows: int, cols: int, spec: SparseRowOptimizer, device: Any, dtype: Any
    ) -> None:
        super().__init__(rows, cols, device=device, dtype=dtype)
        self.fused = FusedRows(spec, self.weight)

    def fusing(self) -> bool:
        """Whether a lookup now records the fused update (a trainable table, grad enabled)."""
        return self.weight.requires_grad and torch.is_grad_enabled()

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self.fusing():
            return self.fused.lookup(self.weight, input)
        return super().forward(input)


def check_fused(owner: str, fused_optimizer: Any, sparse: bool) -> SparseRowOptimizer | None:
    """The checked ``fused_optimizer`` of a base (None when not given).

    Raises:
        ConfigError: not an unbound optimizer of :mod:`synthembed.optim`, or with ``sparse``.
    """
    spec = check_fused_optimizer(owner, fused_optimizer)
    if spec is not None and sparse:
        raise ConfigError(
            f"{owner} takes sparse=True or fused_optimizer, not both: fused tables produce "
            "no gradient at all. Drop sparse=True."
        )
    return spec


def make_table(
    rows: int,
    cols: int,
    sparse: bool,
    device: Any,
    dtype: Any,
    fused: SparseRowOptimizer | None = None,
) -> nn.Embedding:
    """A ``(rows, cols)`` table (initialised by the caller): a :class:`torch.nn.Embedding`,
    or a :class:`FusedTable` when ``fused`` gives an optimizer."""
    if fused is not None:
        return FusedTable(rows, cols, fused, device, dtype)
    return nn.Embedding(rows, cols, sparse=sparse, device=device, dtype=dtype)


def grow_table(old: nn.Module, n: int, name: str = "table") -> nn.Embedding:
    """Append ``n`` rows (N(0, 1)) to a table in place and return it.

    The weight stays the same Parameter (optimizers keep training it; see
    :mod:`synthembed.optim.growth`); a fused table's optimizer state grows too.
    ``name`` names the parameter in a stale-optimizer-state error.
    """
    if not isinstance(old, nn.Embedding):
        raise ConfigError(
            "Cannot grow an int8-quantized table; grow the float layer, then quantize again."
        )
    weight = old.weight
    rows = old.num_embeddings + n
    table = torch.empty(rows, old.embedding_dim, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        table[: old.num_embeddings].copy_(weight)
        table[old.num_embeddings :].normal_()
    grow_parameter(weight, table, f"{name}.weight")
    old.num_embeddings = rows
    if isinstance(old, FusedTable):
        old.fused.grow(rows)
    return old


def _dtype_of(module: nn.Module) -> torch.dtype:
    floats = [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]
    return floats[0].dtype if floats else torch.float32


#: The options every base starts with (nn.Embedding's first three arguments) ...
HEAD_OPTIONS = (
    Option("num_embeddings", positional=True),
    Option("embedding_dim", positional=True),
    Option("padding_idx"),
)
#: ... and ends with: the finiteness check, the dtype and the int8-quantized tables.
TAIL_OPTIONS = (
    Option("check_finite"),
    Option("dtype", get=_dtype_of, codec=DTYPE, show=False),
    Option("quantized", get=lambda m: m._quantized_children(), show=False),
)


class CompressedBase(Configurable, nn.Module):
    """What every compressed base shares: id checks, padding, config plumbing.

    A subclass whose class attribute ``accepts_any_id`` is True hashes its ids and
    takes any id in ``[0, 2**63 - 1]`` (only negative ids are rejected); the others
    check ids against ``[0, num_embeddings)`` like :class:`~synthembed.Embedding`.
    """

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
        return sorted(n for n, m in self.named_modules() if isinstance(m, QuantizedEmbedding))

    @classmethod
    def from_config(cls, config: dict[str, Any], **extra: Any) -> Any:
        """Rebuild a layer (fresh weights; int8 tables re-created) from ``get_config()``."""
        if not isinstance(config, dict):
            raise ConfigError(
                f"A {cls.__name__} configuration must be a JSON object; got {config!r}."
            )
        cfg = dict(config)
        quantized = cfg.pop("quantized", [])
        module = super().from_config(cfg, **extra)
        if quantized:
            quantize_tables(module, quantized)
        return module
