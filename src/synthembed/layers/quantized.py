"""QuantizedEmbedding: a read-only table stored as row-wise int8, dequantized on lookup.

Each row ``w`` of a table is stored as 8-bit codes ``q = round((w - min(w)) / s)``
with a float32 scale ``s = (max(w) - min(w)) / 255`` and offset ``min(w)`` per
row, and dequantized on lookup as ``q * s + min(w)``.

**Error bound.** Every element of a dequantized row differs from the float
original by at most half a quantization step, ``(max(w) - min(w)) / 510``, plus
float32 rounding of the dequantization (at most ``2**-21 * max|w|`` of that
row). :meth:`QuantizedEmbedding.error_bound` returns this per-row bound. A
``(V, D)`` float32 table of ``4 V D`` bytes becomes ``V D + 8 V`` bytes: 3.76x
smaller at D = 128, 3.2x at D = 32. :func:`synthembed.quantize` turns the tables
of a whole model into these.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from synthembed._config import DTYPE, Configurable, Option
from synthembed._validation import (
    check_choice,
    check_ids,
    check_int,
    check_integer_ids,
    check_output_finite,
)
from synthembed.errors import ConfigError, ShapeError
from synthembed.io import register_savable
from synthembed.layers.embedding import Embedding, pool_bags

__all__ = ["QuantizedEmbedding", "is_table", "quantize_table", "quantize_tables"]

_LEVELS = 255


@register_savable
class QuantizedEmbedding(Configurable, nn.Module):
    r"""A read-only table stored as row-wise int8 (per-row scale and offset), dequantized on lookup.

    Build it with :func:`quantize` (or :meth:`from_float`); the codes, scales
    and offsets are buffers, so the layer trains nothing. Same lookup interface
    as :class:`~synthembed.Embedding` for integer ids, including ``mode``
    pooling over bags.

    Args:
        num_embeddings: V, number of rows.
        embedding_dim: D.
        padding_idx: id left out of pooled bags (its row is kept as quantized).
        mode: ``"sum"``, ``"mean"`` or ``"max"`` pooling over the last input
            dimension, or None for plain lookup.
        dtype: floating dtype of the dequantized output (default float32).
        check_finite: raise :class:`~synthembed.errors.NonFiniteError` at the first
            NaN or infinity in an output (a float16 output overflows above 65504),
            naming the layer and the ids.

    Shape:
        ``(*)`` long ids -> ``(*, embedding_dim)``; with ``mode``, ``(*, L)`` -> ``(*, D)``.

    Example:
        >>> q = QuantizedEmbedding.from_float(torch.randn(100, 8))
        >>> q(torch.tensor([1, 2])).shape
        torch.Size([2, 8])
        >>> q.qweight.dtype
        torch.uint8
    """

    config_options = (
        Option("num_embeddings", positional=True),
        Option("embedding_dim", positional=True),
        Option("padding_idx"),
        Option("mode"),
        Option("check_finite"),
        Option("dtype", attr="out_dtype", codec=DTYPE, show=False),
    )

    qweight: torch.Tensor
    scale: torch.Tensor
    offset: torch.Tensor

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        *,
        mode: Literal["sum", "mean", "max"] | None = None,
        check_finite: bool = False,
        dtype: torch.dtype | None = None,
        device: Any = None,
    ) -> None:
        owner = type(self).__name__
        check_int(owner, "num_embeddings", num_embeddings, 0)
        check_int(owner, "embedding_dim", embedding_dim, 1)
        if padding_idx is not None:
            check_int(owner, "padding_idx", padding_idx, -num_embeddings, num_embeddings - 1)
            padding_idx += num_embeddings if padding_idx < 0 else 0
        if mode is not None:
            check_choice(owner, "mode", mode, ("sum", "mean", "max"))
        out_dtype = dtype or torch.float32
        if not out_dtype.is_floating_point:
            raise ConfigError(f"dtype must be a floating dtype; got {out_dtype}.")
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        self.mode = mode
        self.check_finite = bool(check_finite)
        self.out_dtype = out_dtype
        self.register_buffer(
            "qweight",
            torch.zeros((num_embeddings, embedding_dim), dtype=torch.uint8, device=device),
        )
        self.register_buffer(
            "scale", torch.zeros(num_embeddings, dtype=torch.float32, device=device)
        )
        self.register_buffer(
            "offset", torch.zeros(num_embeddings, dtype=torch.float32, device=device)
        )

    @classmethod
    def from_float(
        cls,
        weight: torch.Tensor,
        padding_idx: int | None = None,
        *,
        mode: Literal["sum", "mean", "max"] | None = None,
        check_finite: bool = False,
    ) -> QuantizedEmbedding:
        """Quantize a ``(V, D)`` float table row by row.

        Raises:
            ShapeError: ``weight`` is not a 2-d floating tensor.
            NonFiniteError: ``weight`` holds NaN or infinity.
        """
        from synthembed._validation import check_finite as check_all_finite

        if weight.dim() != 2 or not weight.is_floating_point():
            raise ShapeError(
                f"quantize needs a 2-d floating (V, D) table; got shape {tuple(weight.shape)} "
                f"and dtype {weight.dtype}."
            )
        check_all_finite(weight, "The table to quantize")
        layer = cls(
            int(weight.shape[0]),
            int(weight.shape[1]),
            padding_idx,
            mode=mode,
            check_finite=check_finite,
            dtype=weight.dtype,
            device=weight.device,
        )
        layer.load_float_(weight)
        return layer

    @torch.no_grad()
    def load_float_(self, weight: torch.Tensor) -> QuantizedEmbedding:
        """Quantize ``weight`` into this layer's buffers (in place); returns self."""
        w = weight.detach().to(torch.float64)  # exact min/max/step arithmetic
        if tuple(w.shape) != (self.num_embeddings, self.embedding_dim):
            raise ShapeError(
                f"weight must have shape ({self.num_embeddings}, {self.embedding_dim}); "
                f"got {tuple(w.shape)}."
            )
        if w.shape[0] == 0:
            return self
        lo = w.amin(dim=1)
        hi = w.amax(dim=1)
        scale = ((hi - lo) / _LEVELS).to(torch.float32)
        lo32 = lo.to(torch.float32)
        # The codes are chosen against the float32 scale and offset actually stored.
        step = scale.to(torch.float64).clamp(min=torch.finfo(torch.float64).tiny)
        q = torch.round((w - lo32.to(torch.float64).unsqueeze(1)) / step.unsqueeze(1))
        self.qweight.copy_(q.clamp_(0, _LEVELS).to(torch.uint8))
        self.scale.copy_(scale)
        self.offset.copy_(lo32)
        return self

    def dequantize(self) -> torch.Tensor:
        """The whole table as floats, ``(V, D)``."""
        return self._rows(torch.arange(self.num_embeddings, device=self.qweight.device))

    def error_bound(self) -> torch.Tensor:
        """Per-row bound on ``|dequantized - original|``: half a step plus float32 rounding, ``(V,)``."""
        absmax = torch.maximum(self.offset.abs(), (self.offset + self.scale * _LEVELS).abs())
        return self.scale / 2 + absmax * 2.0**-21

    def _rows(self, ids: torch.Tensor) -> torch.Tensor:
        flat = ids.reshape(-1)
        codes = self.qweight.index_select(0, flat).to(torch.float32)  # (N, D)
        scale = self.scale.index_select(0, flat).unsqueeze(1)  # (N, 1)
        offset = self.offset.index_select(0, flat).unsqueeze(1)  # (N, 1)
        out = torch.addcmul(offset, codes, scale)  # codes * scale + offset, one pass
        return out.reshape(*ids.shape, self.embedding_dim).to(self.out_dtype)

    def forward(self, input: torch.Tensor, *, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Look up (and, with ``mode``, pool) dequantized rows.

        Raises:
            InvalidIndexError: ids outside ``[0, num_embeddings)``.
            ShapeError: non-integer ids.
            NonFiniteError: NaN/inf in the output, with ``check_finite=True``.
        """
        owner = type(self).__name__
        ids = check_integer_ids(input, owner)
        check_ids(ids, self.num_embeddings, owner)
        if self.mode is not None and ids.dim() == 0:
            raise ShapeError(f"mode={self.mode!r} pools over the last dimension; got a 0-d id.")
        ids = ids.long()
        out = self._rows(ids)
        if self.mode is not None:
            valid = mask
            if self.padding_idx is not None:
                not_pad = ids != self.padding_idx
                valid = not_pad if valid is None else valid & not_pad
            out = pool_bags(out, self.mode, None, valid)
        if self.check_finite:
            check_output_finite(out, ids, owner)
        return out

    def extra_repr(self) -> str:
        base = super().extra_repr().split(", ")
        return ", ".join([*base[:2], "int8 rows", *base[2:]])


def quantize_table(m: nn.Module) -> QuantizedEmbedding:
    """An int8 copy of one table (:class:`~synthembed.Embedding` or ``nn.Embedding``)."""
    if isinstance(m, Embedding):  # keeps the table's check_finite
        return QuantizedEmbedding.from_float(
            m.weight, m.padding_idx, mode=m.mode, check_finite=m.check_finite
        )
    if isinstance(m, nn.Embedding):
        return QuantizedEmbedding.from_float(m.weight, m.padding_idx)
    raise ConfigError(f"Only embedding tables can be quantized; got {type(m).__name__}.")


def is_table(m: nn.Module) -> bool:
    """Whether ``m`` is a float table :func:`quantize_table` takes."""
    return isinstance(m, (Embedding, nn.Embedding))


def quantize_tables(module: nn.Module, names: list[str]) -> nn.Module:
    """Replace the tables at the dotted submodule paths ``names`` with int8 tables, in place."""
    for name in names:
        parent_name, _, attr = name.rpartition(".")
        parent = module.get_submodule(parent_name)
        child = parent.get_submodule(attr)
        if not isinstance(child, QuantizedEmbedding):
            # Module.__setattr__ registers under the same key ("0" inside a ModuleList too).
            setattr(parent, attr, quantize_table(child))
    return module
