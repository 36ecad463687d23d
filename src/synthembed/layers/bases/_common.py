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

__all__ = ["HEAD_OPTIONS", "TAIL_OPTIONS", "CompressedBase", "grow_table", "make_table", "normal_"]


def normal_(weight: torch.Tensor, std: float) -> None:
    """Fill ``weight`` with N(0, std²) draws, outside autograd."""
    with torch.no_grad():
        weight.normal_(0.0, std)


def make_table(rows: int, cols: int, sparse: bool, device: Any, dtype: Any) -> nn.Embedding:
    """A ``(rows, cols)`` :class:`torch.nn.Embedding` table (initialised by the caller)."""
    return nn.Embedding(rows, cols, sparse=sparse, device=device, dtype=dtype)


def grow_table(old: nn.Module, n: int) -> nn.Embedding:
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
