"""Tests for synthembed._kernels.alloc: tables on 2 MiB pages and the buffer pool."""

from __future__ import annotations

import copy
import gc
import threading

import numpy as np
import torch

from synthembed._kernels import BufferPool, use_kernels
from synthembed._kernels.alloc import empty
from synthembed.layers.embedding import Embedding

CPU = torch.device("cpu")


def test_empty_shapes_dtypes_and_zeros() -> None:
    t = empty(3, 2, zero=True)
    assert t.shape == (3, 2) and t.dtype == torch.float32 and torch.count_nonzero(t) == 0
    assert empty(2, 2, dtype=torch.float64).dtype == torch.float64
    bf = empty(2, 2, dtype=torch.bfloat16, zero=True)
    assert bf.dtype == torch.bfloat16 and torch.count_nonzero(bf) == 0
    bf.fill_(1.5)  # the int16 stand-in is viewed back: values are bfloat16 values
    assert bf.float().tolist() == [[1.5, 1.5], [1.5, 1.5]]
    assert empty(0, 4).shape == (0, 4)
    assert empty(2, 3, dtype=torch.int64, zero=True).tolist() == [[0, 0, 0], [0, 0, 0]]


def test_pool_reuses_only_buffers_nothing_holds() -> None:
    pool = BufferPool(2)
    a = pool.zeros(3, 2, CPU, torch.float32)
    a += 1
    b = pool.zeros(3, 2, CPU, torch.float32)  # a is in use: a new buffer
    assert a.data_ptr() != b.data_ptr() and float(a.sum()) == 6.0
    ptr = a.data_ptr()
    del a
    c = pool.zeros(3, 2, CPU, torch.float32)  # a's buffer is idle again, handed out zeroed
    assert c.data_ptr() == ptr and float(c.abs().sum()) == 0.0
    assert pool.zeros(2, 2, CPU, torch.float64).dtype == torch.float64
    assert BufferPool(0).zeros(2, 2, CPU, torch.float32).shape == (2, 2)


def test_pool_keeps_a_buffer_while_a_view_or_a_grad_holds_it() -> None:
    pool = BufferPool(2)
    a = pool.empty(4, 4, CPU, torch.float32)
    ptr = a.data_ptr()
    view = a[1:]  # a view shares the memory: the buffer stays in use
    del a
    other = pool.empty(4, 4, CPU, torch.float32)  # held, so it never goes idle
    assert other.data_ptr() != ptr
    del view
    gc.collect()
    assert pool.empty(4, 4, CPU, torch.float32).data_ptr() == ptr
    param = torch.nn.Parameter(torch.zeros(4, 4))
    param.grad = pool.zeros(4, 4, CPU, torch.float32)
    grad_ptr = param.grad.data_ptr()
    another = pool.zeros(4, 4, CPU, torch.float32)
    assert another.data_ptr() != grad_ptr
    param.grad = None
    assert pool.zeros(4, 4, CPU, torch.float32).data_ptr() == grad_ptr


def test_pool_keeps_at_most_size_idle_buffers_and_clears() -> None:
    pool = BufferPool(2)
    held = [pool.empty(8, 8, CPU, torch.float32) for _ in range(4)]
    del held
    assert len(pool._idle) == 2
    pool.clear()
    assert pool._idle == []


def test_pool_is_scratch_space_in_copies() -> None:
    layer = Embedding(5, 2)
    layer(torch.tensor([1])).sum().backward()
    layer.weight.grad = None
    clone = copy.deepcopy(layer)
    assert clone.grad_buffers._idle == [] and clone.grad_buffers is not layer.grad_buffers


def test_pool_is_safe_from_many_threads() -> None:
    pool = BufferPool(2)
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for _ in range(200):
                t = pool.zeros(16, 4, CPU, torch.float32)
                assert float(t.abs().sum()) == 0.0  # never a buffer another thread writes
                t.fill_(seed)
                assert float(t.sum()) == seed * 64
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i + 1,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_layer_outputs_are_never_overwritten_while_held() -> None:
    with use_kernels("fast"):
        layer = Embedding(5000, 128)  # outputs >= 2**18 values go through the output pool
        ids_a = torch.randint(0, 5000, (2048,))
        ids_b = torch.randint(0, 5000, (2048,))
        with torch.no_grad():
            first = layer(ids_a)
            second = layer(ids_b)
            assert first.data_ptr() != second.data_ptr()
            assert torch.equal(first, layer.weight[ids_a])
            ptr = second.data_ptr()
            del second
            third = layer(ids_a)  # the idle buffer is reused
            assert third.data_ptr() == ptr and torch.equal(third, first)
        out = layer(ids_b)
        out.sum().backward()
        assert torch.equal(out, layer.weight[ids_b])
        counts = torch.bincount(ids_b, minlength=5000) * 128.0
        assert torch.equal(layer.weight.grad.sum(1), counts)
        assert np.isfinite(layer.weight.detach().numpy()).all()
