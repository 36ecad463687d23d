"""Lower-precision tables: row-wise int8 for inference, float16/bfloat16 for training.

Row-wise int8 (:func:`quantize`): every table of a model becomes a
:class:`~synthembed.layers.quantized.QuantizedEmbedding` (8-bit codes with a
per-row scale and offset; its module states the error bound).

Half precision (:func:`to_half`): float16 or bfloat16 parameters and buffers
(2 bytes per element). bfloat16 keeps float32's range and suits training on
the CPU; float16 has more mantissa bits but overflows above 65504.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from synthembed._validation import check_choice, check_int
from synthembed.layers.quantized import (
    QuantizedEmbedding,
    is_table,
    quantize_table,
    quantize_tables,
)

__all__ = ["QuantizedEmbedding", "quantize", "quantize_tables", "to_bfloat16", "to_half"]


def quantize(module: nn.Module, *, inplace: bool = False, min_embedding_dim: int = 8) -> nn.Module:
    """Row-wise int8 quantization of every embedding table in ``module``, for inference.

    A table (:class:`~synthembed.Embedding` or :class:`torch.nn.Embedding`)
    becomes a :class:`QuantizedEmbedding`; any other module gets each of its
    tables (e.g. the pool of a hash embedding, the tables of a QR embedding)
    replaced, its other parameters (MLPs, projections) left in float. The
    quantized compressed bases save and load with :func:`synthembed.save`.

    Args:
        module: a table or a model holding tables.
        inplace: replace the tables inside ``module`` itself instead of a copy.
        min_embedding_dim: tables inside ``module`` narrower than this stay in
            float: with 8 bytes of scale and offset per row, int8 saves little
            on narrow rows (and a hash embedding's k importance weights are
            worth keeping exact). A table passed directly is always quantized.

    Returns:
        The quantized module (``module`` itself when ``inplace``; a new
        :class:`QuantizedEmbedding` when ``module`` is a table).

    Example:
        >>> from synthembed.layers.embedding import Embedding
        >>> q = quantize(Embedding(1000, 16))
        >>> type(q).__name__, q.qweight.dtype
        ('QuantizedEmbedding', torch.uint8)
    """
    if is_table(module):
        return quantize_table(module)
    target = module if inplace else copy.deepcopy(module)
    check_int("quantize", "min_embedding_dim", min_embedding_dim, 1)
    names = [
        n
        for n, m in target.named_modules()
        if n and is_table(m) and int(m.embedding_dim) >= min_embedding_dim
    ]
    if not names:
        warnings.warn(
            f"{type(module).__name__} holds no embedding table of width >= "
            f"{min_embedding_dim} to quantize (a DHE base, say, is all MLP); it is returned "
            "unchanged.",
            stacklevel=2,
        )
    quantize_tables(target, names)
    return target


def to_half(module: nn.Module, dtype: torch.dtype = torch.float16) -> nn.Module:
    """Cast floating parameters and buffers to float16 (or bfloat16), in place; returns ``module``.

    int8 tables (:class:`QuantizedEmbedding`) keep their float32 scales and
    offsets. Optimizers built before the cast hold the old tensors: rebuild them.

    Example:
        >>> from synthembed.layers.embedding import Embedding
        >>> to_half(Embedding(10, 4)).weight.dtype
        torch.float16
    """
    check_choice("to_half", "dtype", dtype, (torch.float16, torch.bfloat16, torch.float32))
    for m in module.modules():
        if isinstance(m, QuantizedEmbedding):
            m.out_dtype = dtype
            continue
        for p in list(m.parameters(recurse=False)):
            if p.is_floating_point():
                p.data = p.data.to(dtype)
        for name, b in list(m.named_buffers(recurse=False)):
            if b is not None and b.is_floating_point():
                setattr(m, name, b.to(dtype))
    return module


def to_bfloat16(module: nn.Module) -> nn.Module:
    """:func:`to_half` with bfloat16: float32's range in 2 bytes, for training on the CPU."""
    return to_half(module, torch.bfloat16)
