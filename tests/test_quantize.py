"""Row-wise int8 tables and half-precision helpers."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from synthembed.errors import ConfigError, NonFiniteError, ShapeError
from synthembed.io import load, save
from synthembed.layers.compressed import DHEEmbedding, HashEmbedding, MixedDimEmbedding, QREmbedding
from synthembed.layers.embedding import Embedding
from synthembed.memory import memory_report
from synthembed.quantize import QuantizedEmbedding, quantize, to_bfloat16, to_half


def test_quantize_embedding_layers_keeps_padding_and_pooling() -> None:
    emb = Embedding(50, 16, padding_idx=0, mode="mean")
    q = quantize(emb)
    assert isinstance(q, QuantizedEmbedding) and q.padding_idx == 0 and q.mode == "mean"
    bags = torch.tensor([[1, 2, 0], [3, 0, 0]])
    torch.testing.assert_close(q(bags), emb(bags), atol=0.05, rtol=0)
    plain = quantize(nn.Embedding(10, 16))
    assert isinstance(plain, QuantizedEmbedding) and plain(torch.tensor([1])).shape == (1, 16)


def test_quantize_compressed_base_replaces_its_wide_tables_only() -> None:
    h = HashEmbedding(1000, 16, num_buckets=50, num_hashes=2)
    q = quantize(h)
    assert isinstance(h.pool, nn.Embedding)  # the original is untouched
    assert isinstance(q.pool, QuantizedEmbedding)
    assert isinstance(q.importance, nn.Embedding)  # 2 columns: stays float
    ids = torch.arange(1000)
    with torch.no_grad():
        bound = q.pool.error_bound().amax() * h.importance.weight.abs().sum(1).amax()
        assert float((q(ids) - h(ids)).abs().max()) <= float(bound)
    qr = quantize(QREmbedding(1000, 16), inplace=True)
    assert all(isinstance(t, QuantizedEmbedding) for t in qr.tables)


def test_quantized_base_saves_and_loads(tmp_path: Any) -> None:
    for module in (
        quantize(HashEmbedding(1000, 16, num_buckets=50)),
        quantize(MixedDimEmbedding(200, 16, num_blocks=2, alpha=0.0)),
        quantize(Embedding(30, 8, padding_idx=1)),
    ):
        path = tmp_path / f"{type(module).__name__}.safetensors"
        save(module, path)
        loaded = load(path)
        ids = torch.tensor([0, 5, 29])
        assert torch.equal(loaded(ids), module(ids))


def test_quantize_warns_when_there_is_no_table() -> None:
    dhe = DHEEmbedding(10, 4, num_hashes=8, hidden_dims=(4,))
    with pytest.warns(UserWarning, match=r"no embedding table of width >= 8"):
        out = quantize(dhe)
    assert isinstance(out, DHEEmbedding)


def test_quantize_errors() -> None:
    w = torch.randn(4, 3)
    w[1, 1] = float("nan")
    with pytest.raises(NonFiniteError, match=r"1 NaN"):
        QuantizedEmbedding.from_float(w)
    with pytest.raises(ShapeError, match=r"2-d floating \(V, D\) table; got shape \(4,\)"):
        QuantizedEmbedding.from_float(torch.randn(4))
    with pytest.raises(ConfigError, match=r"Only embedding tables can be quantized; got Linear"):
        from synthembed.quantize import quantize_tables

        quantize_tables(nn.Sequential(nn.Linear(2, 2)), ["0"])


def test_int8_memory_is_one_byte_per_element_plus_scale_and_offset() -> None:
    q = quantize(Embedding(1000, 128))
    assert memory_report(q).total_bytes == 1000 * 128 + 1000 * 8


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_tables(dtype: torch.dtype) -> None:
    h = HashEmbedding(100, 8, num_buckets=10)
    ids = torch.tensor([1, 50])
    ref = h(ids).detach()
    if dtype == torch.float16:
        to_half(h)
    else:
        to_bfloat16(h)
    assert h.pool.weight.dtype == dtype and h.importance.weight.dtype == dtype
    out = h(ids)
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), ref, atol=0.05, rtol=0.02)
    out.float().sum().backward()
    assert h.pool.weight.grad is not None and h.pool.weight.grad.dtype == dtype
    assert memory_report(h).total_bytes == (10 * 8 + 100 * 2) * 2
    with pytest.raises(ConfigError, match=r"'dtype' parameter of to_half"):
        to_half(h, torch.int8)


def test_half_keeps_int8_scales_in_float32() -> None:
    q = to_half(quantize(Embedding(10, 8)))
    assert q.scale.dtype == torch.float32 and q(torch.tensor([1])).dtype == torch.float16


def test_check_finite_names_the_ids_of_an_overflowing_half_output(tmp_path: Any) -> None:
    w = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    w[4] = 1e5  # finite in float32, beyond float16's 65504
    q = to_half(QuantizedEmbedding.from_float(w, check_finite=True))
    assert q.get_config()["check_finite"] is True and "check_finite=True" in repr(q)
    assert bool(torch.isfinite(q(torch.tensor([0, 5]))).all())
    with pytest.raises(
        NonFiniteError, match=r"^QuantizedEmbedding produced NaN/inf from ids \[4\]\."
    ):
        q(torch.tensor([[1, 4], [4, 2]]))
    save(q, tmp_path / "q.safetensors")
    loaded = load(tmp_path / "q.safetensors")
    assert loaded.check_finite is True
    silent = to_half(QuantizedEmbedding.from_float(w))  # off by default
    assert bool(torch.isinf(silent(torch.tensor([4]))).all())


def test_check_finite_on_pooled_bags_and_carried_over_from_embedding() -> None:
    emb = Embedding(6, 4, mode="sum", check_finite=True)
    with torch.no_grad():
        emb.weight[3] = 4e4  # two of these sum past float16's range
    q = quantize(emb)
    assert isinstance(q, QuantizedEmbedding) and q.check_finite is True
    to_half(q)
    bags = torch.tensor([[3, 3], [1, 2]])
    with pytest.raises(NonFiniteError, match=r"produced NaN/inf from ids \[3\]\."):
        q(bags)
    assert q(torch.tensor([[3, 1]])).shape == (1, 4)
