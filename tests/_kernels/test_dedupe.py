"""Kernels of the synthetic layer's one-synthesis-per-distinct-id path: each fast kernel
against its reference twin, and the custom autograd function under gradcheck."""

from __future__ import annotations

import pytest
import torch

from synthembed import _kernels
from synthembed._kernels import alloc, fast, reference


def keys_cases() -> list[tuple[torch.Tensor, int | None, int | None]]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 50, (200,), generator=g)
    hidden = torch.rand(200, generator=g) < 0.3
    mixed = torch.where(hidden, -1 - ids, ids)  # the layer's keys for hidden positions
    big = torch.tensor([3, 2**40, 2**63 - 1, 2**40, 3])
    return [
        (ids, 0, 50),  # presence table
        (ids, None, None),  # sort
        (mixed, -50, 50),  # presence table over negative keys
        (mixed, None, None),
        (big, None, None),
        (torch.zeros(0, dtype=torch.long), 0, 10),
        (torch.arange(10**6, 10**6 + 5), 0, 10**7),  # range too wide for a table: sort
    ]


@pytest.mark.parametrize(("keys", "low", "high"), keys_cases())
def test_unique_ids_fast_equals_reference_and_torch_unique(
    keys: torch.Tensor, low: int | None, high: int | None
) -> None:
    uniq_f, inv_f = fast.unique_ids(keys, low=low, high=high)
    uniq_r, inv_r = reference.unique_ids(keys, low=low, high=high)
    assert torch.equal(uniq_f, uniq_r) and torch.equal(inv_f, inv_r)
    assert uniq_f.dtype == inv_f.dtype == torch.long
    assert torch.equal(uniq_f[inv_f], keys)
    assert torch.equal(uniq_f, torch.unique(keys))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_expand_rows_and_segment_sum_fast_equal_reference(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(1)
    inverse = torch.randint(0, 7, (40,), generator=g)
    src = torch.randn(7, 5, generator=g, dtype=dtype)
    grad = torch.randn(40, 5, generator=g, dtype=dtype)
    outs, grads = [], []
    for impl in (fast, reference):
        x = src.clone().requires_grad_()
        out = impl.expand_rows(x, inverse, _kernels.BufferPool())
        out.backward(grad)
        outs.append(out.detach())
        grads.append(x.grad)
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], src[inverse])
    torch.testing.assert_close(grads[0], grads[1])
    torch.testing.assert_close(
        fast.segment_sum(grad, inverse, 7), reference.segment_sum(grad, inverse, 7)
    )
    # Rows no position maps to get a zero gradient.
    assert torch.equal(fast.segment_sum(grad[:0], inverse[:0], 3), torch.zeros(3, 5, dtype=dtype))


def test_expand_rows_passes_gradcheck() -> None:
    g = torch.Generator().manual_seed(2)
    inverse = torch.randint(0, 4, (9,), generator=g)
    src = torch.randn(4, 3, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: fast.expand_rows(s, inverse, None), (src,))
    assert torch.autograd.gradcheck(lambda s: reference.expand_rows(s, inverse, None), (src,))


def test_expand_rows_reuses_pooled_output_once_dropped() -> None:
    pool = _kernels.BufferPool()
    n = alloc.POOL_MIN_ELEMENTS // 8  # (n, 8): large enough for the pool
    src = torch.randn(3, 8)
    inverse = torch.randint(0, 3, (n,))
    first = fast.expand_rows(src, inverse, pool)
    address = first.data_ptr()
    del first
    again = fast.expand_rows(src, inverse, pool)
    assert again.data_ptr() == address
    assert torch.equal(again, src[inverse])


def test_dispatch_follows_the_switch() -> None:
    keys = torch.tensor([4, 1, 4])
    for name in ("fast", "reference"):
        with _kernels.use_kernels(name):  # type: ignore[arg-type]
            uniq, inverse = _kernels.unique_ids(keys, low=0, high=5)
            assert uniq.tolist() == [1, 4] and inverse.tolist() == [1, 0, 1]
            out = _kernels.expand_rows(torch.eye(2), inverse)
            assert torch.equal(out, torch.eye(2)[inverse])
            summed = _kernels.segment_sum(torch.ones(3, 2), inverse, 2)
            assert summed.tolist() == [[1.0, 1.0], [2.0, 2.0]]
