"""Exact memory reports."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from synthembed.errors import ConfigError
from synthembed.layers.compressed import DHEEmbedding, HashEmbedding, QREmbedding
from synthembed.layers.embedding import Embedding
from synthembed.memory import format_bytes, memory_report


def test_dense_table_is_numel_times_element_size() -> None:
    layer = Embedding(1000, 16)
    report = memory_report(layer)
    assert report.total_bytes == 1000 * 16 * 4 == report.full_float32_bytes
    assert report.compression_ratio == 1.0
    (entry,) = report.tensors
    assert (entry.name, entry.kind, entry.shape, entry.dtype) == (
        "weight",
        "parameter",
        (1000, 16),
        "float32",
    )
    assert entry.numel == 16000 and entry.element_size == 4 and entry.nbytes == 64000
    # The founding tutorial's sys.getsizeof sees the Python object, not the storage.
    assert sys.getsizeof(layer) < 1000 < report.total_bytes


def test_compressed_bases_match_hand_computed_sizes() -> None:
    h = HashEmbedding(10_000, 32, num_buckets=500, num_hashes=3)
    report = memory_report(h)
    assert report.parameter_bytes == (500 * 32 + 10_000 * 3) * 4
    assert report.full_float32_bytes == 10_000 * 32 * 4
    assert report.compression_ratio == pytest.approx(10_000 * 32 / (500 * 32 + 10_000 * 3))
    q = QREmbedding(10_000, 32, num_collisions=100)
    assert memory_report(q).total_bytes == (100 * 32 + 100 * 32) * 4
    d = DHEEmbedding(10_000, 32, num_hashes=64, hidden_dims=(16,))
    params = (64 * 16 + 16 + 16 * 32 + 32) * 4
    salts = 64 * 8  # a non-persistent int64 buffer, still memory
    r = memory_report(d)
    assert (r.parameter_bytes, r.buffer_bytes, r.total_bytes) == (params, salts, params + salts)


def test_shared_storage_is_counted_once() -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Embedding(100, 8)
            self.decoder = nn.Linear(8, 100, bias=False)
            self.decoder.weight = self.encoder.weight
            self.register_buffer("first_rows", self.encoder.weight.detach()[:10])
            self.register_buffer("own", torch.zeros(5, dtype=torch.float64))

    report = memory_report(Tied())
    names = [t.name for t in report.tensors]
    assert names == ["encoder.weight", "decoder.weight", "first_rows", "own"]
    tied, view = report.tensors[1], report.tensors[2]
    assert tied.shared_with == "encoder.weight" and tied.counted_bytes == 0 and tied.nbytes == 3200
    assert view.shared_with == "encoder.weight" and view.counted_bytes == 0 and view.nbytes == 320
    assert report.total_bytes == 100 * 8 * 4 + 5 * 8
    assert report.full_float32_bytes is None and report.compression_ratio is None


def test_meta_device_sizes_a_table_without_allocating_it() -> None:
    big = nn.Embedding(100_000_000, 128, device="meta")
    assert memory_report(big).total_bytes == 100_000_000 * 128 * 4  # 51.2 GB
    q = QREmbedding(100_000_000, 128, num_collisions=10_000, device="meta")
    report = memory_report(q)
    assert report.total_bytes == 2 * 10_000 * 128 * 4
    assert report.compression_ratio == pytest.approx(100_000_000 / 20_000)


def test_half_and_optimizer_state() -> None:
    layer = nn.Embedding(100, 8).half()
    assert memory_report(layer, num_embeddings=100, embedding_dim=8).total_bytes == 100 * 8 * 2
    h = HashEmbedding(100, 8, num_buckets=10)
    opt = torch.optim.Adam(h.parameters())
    h(torch.arange(100)).sum().backward()
    opt.step()
    report = memory_report(h, optimizer=opt)
    params = (10 * 8 + 100 * 2) * 4
    steps = sum(t.nbytes for t in report.tensors if t.name.endswith(".step"))
    assert report.total_bytes == params
    assert report.optimizer_bytes == 2 * params + steps
    assert "optimizer state" in str(report)


def test_printed_table() -> None:
    text = str(memory_report(HashEmbedding(1000, 16, num_buckets=100)))
    lines = text.splitlines()
    assert lines[0].split() == ["tensor", "kind", "shape", "dtype", "bytes"]
    assert any(
        line.split()[:5] == ["pool.weight", "parameter", "100x16", "float32", "6,400"]
        for line in lines
    )
    assert "dense float32 table 1,000 x 16" in text and "64,000 B" in text
    assert "compression vs dense float32" in text and "4.44x" in text


def test_format_bytes_and_errors() -> None:
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.50 KiB"
    assert format_bytes(5 * 2**30) == "5.00 GiB"
    with pytest.raises(ConfigError, match=r"'num_embeddings' parameter of memory_report .* Got -1"):
        memory_report(nn.Linear(2, 2), num_embeddings=-1)
