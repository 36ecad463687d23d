"""Tests for synthembed._kernels: the switch, and each fast kernel against its reference twin."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import synthembed as se
from synthembed import _kernels
from synthembed._kernels import fast, reference
from synthembed.errors import ConfigError


def test_switch_set_use_and_errors() -> None:
    start = se.get_kernels()
    try:
        se.set_kernels("reference")
        assert se.get_kernels() == "reference"
        with se.use_kernels("fast"):
            assert se.get_kernels() == "fast"
        assert se.get_kernels() == "reference"
    finally:
        se.set_kernels(start)  # type: ignore[arg-type]
    with pytest.raises(
        ConfigError,
        match=r"set_kernels\(name\) must be one of \['fast', 'reference'\]; got 'quick'",
    ):
        se.set_kernels("quick")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="got 'slow'"), se.use_kernels("slow"):  # type: ignore[arg-type]
        pass
    assert se.get_kernels() == start


def test_environment_variable_picks_the_set() -> None:
    code = "import synthembed as se; print(se.get_kernels())"
    env = {**os.environ, "SYNTHEMBED_KERNELS": "reference"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "reference"
    env["SYNTHEMBED_KERNELS"] = "turbo"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "SYNTHEMBED_KERNELS must be one of ['fast', 'reference']; got 'turbo'" in bad.stderr


def _both(fn):
    """Run ``fn`` under each kernel set on fresh copies of the same tensors."""
    return [fn(kernel_set) for kernel_set in (fast, reference)]


@pytest.mark.parametrize("padding_idx", [None, 0, 3])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16], ids=str
)
def test_lookup_fast_equals_reference(padding_idx, sparse, dtype) -> None:
    torch.manual_seed(0)
    table = torch.randn(50, 7, dtype=dtype)
    ids = torch.randint(0, 50, (6, 9))
    ids[0, :4] = 3
    grad = torch.randn(6, 9, 7, dtype=dtype)

    def run(kernels):
        w = table.clone().requires_grad_()
        out = kernels.lookup(w, ids, padding_idx=padding_idx, sparse=sparse)
        out.backward(grad)
        g = w.grad.to_dense() if sparse else w.grad
        return out.detach(), g

    (o_f, g_f), (o_r, g_r) = _both(run)
    assert torch.equal(o_f, o_r)
    assert torch.equal(g_f, g_r)  # half precision too: rounded after each row, as torch


@pytest.mark.parametrize("padding_idx", [None, 2])
@pytest.mark.parametrize("ids_dtype", [torch.int64, torch.int32], ids=str)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32], ids=str)
def test_lookup_float32_accumulation_fast_equals_reference(dtype, ids_dtype, padding_idx) -> None:
    gen = torch.Generator().manual_seed(5)
    table = torch.randn(8, 5, generator=gen).to(dtype)
    ids = torch.randint(0, 8, (3_000,), generator=gen).to(ids_dtype)
    grad = torch.randn(3_000, 5, generator=gen).to(dtype)

    def run(kernels):
        w = table.clone().requires_grad_()
        out = kernels.lookup(w, ids, padding_idx=padding_idx, grad_accumulation="float32")
        out.backward(grad)
        return out.detach(), w.grad

    (o_f, g_f), (o_r, g_r) = _both(run)
    assert torch.equal(o_f, o_r) and torch.equal(o_f, table[ids.long()])
    assert torch.equal(g_f, g_r)
    exact = torch.zeros(8, 5).index_add_(0, ids.long(), grad.float())  # float32 sum
    if padding_idx is not None:
        exact[padding_idx] = 0
    assert torch.equal(g_f, exact.to(dtype))


def test_lookup_float32_accumulation_with_max_norm_renormalises_the_table() -> None:
    table = torch.full((4, 3), 2.0, dtype=torch.bfloat16)

    def run(kernels):
        w = table.clone().requires_grad_()
        out = kernels.lookup(w, torch.tensor([1, 1]), max_norm=1.0, grad_accumulation="float32")
        return out.detach(), w.detach()

    (o_f, w_f), (o_r, w_r) = _both(run)
    assert torch.equal(o_f, o_r) and torch.equal(w_f, w_r)
    assert torch.equal(w_r[0], table[0]) and w_r[1].float().norm() <= 1.0 + 1e-2


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8], ids=str)
def test_lookup_of_integer_and_zero_width_tables(dtype) -> None:
    ids = torch.tensor([[2, 0], [1, 1]])
    table = torch.arange(9).reshape(3, 3).to(dtype)
    assert torch.equal(fast.lookup(table, ids), reference.lookup(table, ids))
    empty_rows = torch.zeros(3, 0, requires_grad=True)
    for kernels in (fast, reference):
        out = kernels.lookup(empty_rows, ids, sparse=True)
        out.sum().backward()
        assert out.shape == (2, 2, 0) and empty_rows.grad is not None
        assert empty_rows.grad._indices().shape == (1, 0)  # torch lists no ids
        empty_rows.grad = None


@pytest.mark.filterwarnings("ignore:`torch.jit.trace` is deprecated:DeprecationWarning")
def test_tracing_and_in_graph_id_check() -> None:
    assert not _kernels.tracing()
    seen = []

    def probe(ids):
        seen.append(_kernels.tracing())
        _kernels.assert_in_range(ids, 5, "ids outside [0, 4]")
        return ids + 1

    traced = torch.jit.trace(probe, (torch.tensor([1, 2]),))
    assert seen[0]  # (trace then runs the function again, untraced, to check the trace)
    assert traced(torch.tensor([3])).tolist() == [4]
    # torch.jit.trace drops the assertion (torch.export and torch.compile keep it:
    # tests/test_export.py); a traced lookup still meets torch's own index check.
    assert traced(torch.tensor([7])).tolist() == [8]
    with pytest.raises(RuntimeError, match=r"ids outside \[0, 4\]"):
        _kernels.assert_in_range(torch.tensor([0, 5]), 5, "ids outside [0, 4]")
    _kernels.assert_in_range(torch.tensor([], dtype=torch.long), 0, "never")


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.5])
def test_lookup_max_norm_fast_equals_reference(norm_type) -> None:
    torch.manual_seed(1)
    table = torch.randn(30, 16) * 3
    ids = torch.randint(0, 30, (40,))

    def run(kernels):
        w = table.clone().requires_grad_()
        out = kernels.lookup(w, ids, max_norm=2.0, norm_type=norm_type)
        out.sum().backward()
        return out.detach(), w.detach(), w.grad

    first, second = _both(run)
    for a, b in zip(first, second):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-6)


# per_sample_weights apply to mode='sum' only, as in nn.EmbeddingBag.
@pytest.mark.parametrize(
    ("mode", "weighted"), [("sum", False), ("sum", True), ("mean", False), ("max", False)]
)
@pytest.mark.parametrize("padding_idx", [None, 0])
def test_bag_fast_equals_reference(mode, padding_idx, weighted) -> None:
    torch.manual_seed(2)
    table = torch.randn(20, 5, dtype=torch.float64)
    ids = torch.randint(0, 20, (8, 6))
    ids[1] = 0  # a bag of padding only
    psw = torch.rand(8, 6, dtype=torch.float64) if weighted else None
    grad = torch.randn(8, 5, dtype=torch.float64)

    def run(kernels):
        w = table.clone().requires_grad_()
        out = kernels.bag(w, ids, mode, per_sample_weights=psw, padding_idx=padding_idx)
        out.backward(grad)
        return out.detach(), w.grad

    (o_f, g_f), (o_r, g_r) = _both(run)
    assert torch.equal(o_f, o_r)
    assert torch.allclose(g_f, g_r, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_precision_bag_gradient_is_torchs(dtype, mode) -> None:
    gen = torch.Generator().manual_seed(6)
    table = torch.randn(10, 4, generator=gen).to(dtype)
    ids = torch.randint(0, 10, (300, 20), generator=gen)  # many repeats per row
    grad = torch.randn(300, 4, generator=gen).to(dtype)

    def run(kernels):
        w = table.clone().requires_grad_()
        kernels.bag(w, ids, mode, padding_idx=0).backward(grad)
        return w.grad

    g_f, g_r = _both(run)
    assert torch.equal(g_f, g_r)


def test_custom_autograd_functions_pass_gradcheck() -> None:
    torch.manual_seed(3)
    w = torch.randn(12, 4, dtype=torch.float64, requires_grad=True)
    ids = torch.tensor([[1, 2, 2], [0, 11, 5]])
    # No padding_idx here: its zeroed gradient row is a convention, not a derivative.
    assert torch.autograd.gradcheck(lambda t: fast.lookup(t, ids), (w,))
    for mode in ("sum", "mean", "max"):
        assert torch.autograd.gradcheck(lambda t, m=mode: fast.bag(t, ids, m), (w,))


def test_index_add_rows_id_range_column_sums_empty() -> None:
    torch.manual_seed(4)
    ids = torch.tensor([3, 1, 3, 0])
    rows = torch.randn(4, 6)
    a = fast.index_add_rows(torch.zeros(5, 6), ids, rows)
    b = reference.index_add_rows(torch.zeros(5, 6), ids, rows)
    assert torch.equal(a, b)
    big = torch.tensor([[7, -2], [40, 3]])
    assert fast.id_range(big) == reference.id_range(big) == (-2, 40)
    x = torch.randn(9, 3, dtype=torch.float64)
    assert torch.allclose(fast.column_sums(x), reference.column_sums(x))
    assert fast.column_sums(torch.zeros(0, 3)).tolist() == [0.0, 0.0, 0.0]
    for kernels in (fast, reference):
        t = kernels.empty(2, 3, dtype=torch.float64, zero=True)
        assert t.shape == (2, 3) and t.dtype == torch.float64 and not t.any()


def test_fast_defers_to_reference_inside_torch_func() -> None:
    from torch.func import grad, vmap

    w = torch.randn(10, 3)
    ids = torch.tensor([[1, 2], [3, 4]])

    def loss(weight, row):
        return fast.lookup(weight, row).pow(2).sum()

    per_sample = vmap(grad(loss), in_dims=(None, 0))(w, ids)
    assert per_sample.shape == (2, 10, 3)
    assert torch.allclose(per_sample[0, 1], 2 * w[1])
    assert not _kernels.functorch_active()


def test_set_kernels_inside_a_use_kernels_block() -> None:
    start = se.get_kernels()
    try:
        with se.use_kernels("reference"):
            se.set_kernels("fast")  # takes effect at once, and the block still exits cleanly
            assert se.get_kernels() == "fast"
        assert se.get_kernels() == "fast"
    finally:
        se.set_kernels(start)  # type: ignore[arg-type]


def test_bag_gradient_reaches_per_sample_weights_in_both_sets() -> None:
    torch.manual_seed(5)
    table = torch.randn(20, 5, dtype=torch.float64)
    ids = torch.randint(0, 20, (4, 6))
    psw = torch.rand(4, 6, dtype=torch.float64)

    def run(kernels):
        w = table.clone().requires_grad_()
        weights = psw.clone().requires_grad_()
        kernels.bag(w, ids, "sum", per_sample_weights=weights).pow(2).sum().backward()
        return w.grad, weights.grad

    (gw_f, gp_f), (gw_r, gp_r) = _both(run)
    assert gp_f is not None and torch.allclose(gp_f, gp_r)
    assert torch.allclose(gw_f, gw_r)


def test_few_ids_and_small_lookups_take_the_short_routes_with_equal_results() -> None:
    # id_range: up to 64 ids through a Python list, more through numpy; same answers.
    for ids in (torch.tensor([5, -3, 9], dtype=torch.int32), torch.arange(-70, 30)):
        assert fast.id_range(ids) == reference.id_range(ids)
    assert fast.id_range(torch.tensor([4])) == (4, 4)
    torch.manual_seed(7)
    weight = torch.randn(50, 8, requires_grad=True)
    ids = torch.tensor([[3, 0], [49, 3]])
    with torch.no_grad():  # small and no autograd: torch's kernel (same values)
        out = fast.lookup(weight, ids, padding_idx=0)
    assert out.grad_fn is None and torch.equal(out, weight.detach()[ids])
    # With autograd the tuned route runs, with nn.Embedding's gradient.
    out = fast.lookup(weight, ids, padding_idx=0)
    assert type(out.grad_fn).__name__ == "_LookupBackward"
    out.sum().backward()
    expected = torch.zeros(50, 8)
    expected[3], expected[49] = 2.0, 1.0
    assert torch.equal(weight.grad, expected)
    # opaque=True (a caller that knows it is traced or under torch.func): the reference.
    out = fast.lookup(weight, ids, padding_idx=0, opaque=True)
    assert type(out.grad_fn).__name__ == "EmbeddingBackward0"
