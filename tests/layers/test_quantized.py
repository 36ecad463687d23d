"""Tests of synthembed.layers.quantized.QuantizedEmbedding: row-wise int8 tables."""

from __future__ import annotations

import pytest
import torch

from synthembed.errors import InvalidIndexError, ShapeError
from synthembed.layers.quantized import QuantizedEmbedding


def table() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(500, 32, generator=gen)
    w[1] *= 1000.0  # a wide row
    w[2] = 0.25  # a constant row: exact
    w[3] = torch.linspace(-1e-6, 1e-6, 32)  # a tiny row
    w[4] += 50.0  # a row far from zero
    return w


def test_round_trip_error_is_within_the_documented_bound() -> None:
    w = table()
    q = QuantizedEmbedding.from_float(w)
    err = (q.dequantize() - w).abs()
    step = (w.amax(1) - w.amin(1)) / 255
    bound = q.error_bound()
    assert bool((err.amax(1) <= bound).all())
    # The bound is half a step plus float32 rounding, and it is nearly reached.
    assert bool((bound <= (step / 2 + w.abs().amax(1) * 2.0**-21) * (1 + 1e-5)).all())
    wide = err.amax(1) / step.clamp(min=1e-30)
    assert float(wide[5:].max()) > 0.45
    assert torch.equal(q.dequantize()[2], w[2])


def test_lookup_dequantizes_the_rows() -> None:
    w = table()
    q = QuantizedEmbedding.from_float(w)
    ids = torch.tensor([[1, 2], [499, 0]])
    out = q(ids)
    assert out.shape == (2, 2, 32) and out.dtype == torch.float32
    assert torch.equal(out, q.dequantize()[ids])
    assert q.qweight.dtype == torch.uint8 and q.scale.dtype == torch.float32
    with pytest.raises(InvalidIndexError, match=r"valid range \[0, 499\]"):
        q(torch.tensor([500]))
    with pytest.raises(ShapeError, match=r"ids must be integers"):
        q(torch.tensor([0.5]))
