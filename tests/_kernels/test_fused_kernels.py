"""The row-optimizer kernels (fused_reference / fused_fast): each fast kernel against its
reference twin, and the fused lookup's backward against a hand-written dedupe."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from synthembed import _kernels
from synthembed._kernels import fused_fast, fused_reference

ROWS, D = 50, 8


def _case(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(ROWS, D, generator=g)
    rows = torch.randperm(ROWS, generator=g)[:20].sort().values
    grad = torch.randn(20, D, generator=g)
    return weight, rows, grad


def _run(module: Any, name: str, **hyper: Any) -> list[torch.Tensor]:
    weight, rows, grad = _case()
    g = torch.Generator().manual_seed(3)
    if name == "sgd_rows":
        module.sgd_rows(weight, rows, grad, **hyper)
        return [weight]
    if name in ("adagrad_rows", "rowwise_adagrad_rows"):
        shape = (ROWS, D) if name == "adagrad_rows" else (ROWS,)
        total = torch.rand(shape, generator=g)
        getattr(module, name)(weight, total, rows, grad, **hyper)
        return [weight, total]
    m, v = torch.randn(ROWS, D, generator=g), torch.rand(ROWS, D, generator=g)
    last = torch.randint(0, 6, (ROWS,), generator=g)
    module.adamw_rows(weight, m, v, last, rows, grad, **hyper)
    return [weight, m, v, last]


ADAMW = {"step": 7, "lr": 0.1, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8, "weight_decay": 0.1}
CASES = [
    ("sgd_rows", {"lr": 0.1, "weight_decay": 0.0}),
    ("sgd_rows", {"lr": 0.1, "weight_decay": 0.3}),
    ("adagrad_rows", {"lr": 0.1, "weight_decay": 0.3, "eps": 1e-10}),
    ("rowwise_adagrad_rows", {"lr": 0.1, "weight_decay": 0.0, "eps": 1e-8}),
    ("rowwise_adagrad_rows", {"lr": 0.1, "weight_decay": 0.3, "eps": 1e-8}),
    ("adamw_rows", {**ADAMW, "lazy_correction": False}),
    ("adamw_rows", {**ADAMW, "lazy_correction": True}),
]


@pytest.mark.parametrize(("name", "hyper"), CASES)
def test_row_update_fast_equals_reference(name: str, hyper: dict[str, Any]) -> None:
    fast = _run(fused_fast, name, **hyper)
    ref = _run(fused_reference, name, **hyper)
    start = _run(fused_reference, name, **{**hyper, "lr": 0.0})
    for a, b in zip(fast, ref):
        assert a.dtype == b.dtype
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-7)
    weight, rows, _ = _case()
    untouched = torch.ones(ROWS, dtype=torch.bool)
    untouched[rows] = False
    assert torch.equal(fast[0][untouched], weight[untouched])  # only touched rows move
    assert not torch.equal(ref[0], start[0]) or hyper["lr"] == 0.0


@pytest.mark.parametrize("module", [fused_fast, fused_reference], ids=["fast", "reference"])
@pytest.mark.parametrize("padding_idx", [None, 2])
@pytest.mark.parametrize("scale", [False, True])
def test_fused_lookup_updates_with_deduplicated_summed_rows(
    module: Any, padding_idx: int | None, scale: bool
) -> None:
    weight = torch.randn(10, 4, requires_grad=True)
    ids = torch.tensor([[3, 2, 3], [7, 3, 2]])
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    out = module.fused_lookup(
        weight,
        ids,
        lambda r, g: calls.append((r.clone(), g.clone())),
        padding_idx=padding_idx,
        scale_grad_by_freq=scale,
    )
    assert torch.equal(out, weight.detach()[ids])
    upstream = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    out.backward(upstream)
    assert weight.grad is None and len(calls) == 1
    rows, grad = calls[0]
    expected_rows = [2, 3, 7] if padding_idx is None else [3, 7]
    assert rows.tolist() == expected_rows
    flat_ids, flat_up = ids.reshape(-1), upstream.reshape(-1, 4)
    for r, g in zip(expected_rows, grad):
        hits = flat_ids == r
        want = flat_up[hits].sum(0) / (int(hits.sum()) if scale else 1)
        assert torch.allclose(g, want)


def test_fused_lookup_of_only_padding_never_calls_update() -> None:
    weight = torch.randn(5, 2, requires_grad=True)
    calls: list[Any] = []
    out = _kernels.fused_lookup(
        weight, torch.zeros(4, dtype=torch.long), lambda r, g: calls.append(r), padding_idx=0
    )
    out.sum().backward()
    assert calls == [] and weight.grad is None


def test_dispatch_follows_the_kernel_set() -> None:
    weight = torch.randn(5, 2)
    rows, grad = torch.tensor([1, 3]), torch.ones(2, 2)
    results = []
    for name in ("fast", "reference"):
        w = weight.clone()
        with _kernels.use_kernels(name):  # type: ignore[arg-type]
            _kernels.sgd_rows(w, rows, grad, lr=0.5, weight_decay=0.0)
        results.append(w)
    assert torch.equal(results[0], results[1])
    assert torch.equal(results[0][1], weight[1] - 0.5)


@pytest.mark.parametrize("mode", ["sum", "mean"])
@pytest.mark.parametrize("weighted", [False, True])
def test_fused_bag_fast_equals_reference(mode: str, weighted: bool) -> None:
    ids = torch.tensor([[3, 2, 3, 0], [0, 0, 0, 0], [7, 3, 2, 9]])
    upstream = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    got = []
    for module in (fused_fast, fused_reference):
        weight = torch.randn(10, 4, generator=torch.Generator().manual_seed(0))
        weight.requires_grad_(True)
        psw = None
        if weighted and mode == "sum":
            psw = torch.linspace(0.5, 2.0, 12).reshape(3, 4).requires_grad_(True)
        calls: list[tuple[torch.Tensor, torch.Tensor]] = []
        out = module.fused_bag(
            weight,
            ids,
            mode,
            lambda r, g, calls=calls: calls.append((r, g.clone())),  # type: ignore[misc]
            per_sample_weights=psw,
            padding_idx=0,
        )
        want = torch.nn.functional.embedding_bag(
            ids, weight.detach(), mode=mode, per_sample_weights=psw, padding_idx=0
        )
        assert torch.allclose(out, want)
        out.backward(upstream)
        assert weight.grad is None and len(calls) == 1
        got.append((calls[0], None if psw is None else psw.grad))
    (rows_f, grad_f), psw_f = got[0]
    (rows_r, grad_r), psw_r = got[1]
    assert rows_f.tolist() == rows_r.tolist() == [2, 3, 7, 9]
    assert torch.allclose(grad_f, grad_r, atol=1e-6)
    if psw_f is not None:
        assert psw_r is not None and torch.allclose(psw_f, psw_r, atol=1e-6)
        assert not psw_f[1].any()  # padding entries get no gradient


@pytest.mark.parametrize("rows", [10, 10_000_000])  # a presence table, then np.unique's sort
def test_distinct_ids_match_torch_unique(rows: int) -> None:
    flat = torch.tensor([9, 3, 9, 0, rows - 1, 3, 3])
    uniq, inverse = fused_fast._distinct(flat, rows)
    want, want_inverse = torch.unique(flat, sorted=True, return_inverse=True)
    assert uniq.tolist() == want.tolist() == [0, 3, 9] + ([] if rows == 10 else [rows - 1])
    assert inverse.tolist() == want_inverse.tolist()


@pytest.mark.parametrize("mode", ["sum", "mean"])
@pytest.mark.parametrize("scale", [False, True])
@pytest.mark.parametrize("length", [4, 70])  # a scatter per column, then one gathered scatter
# 12 rows: most ids repeat (scatters); 1,000: few repeat (each row gathers a bag, then adds)
@pytest.mark.parametrize("table", [12, 1000])
def test_fused_bag_without_padding_or_weights_equals_reference(
    mode: str, scale: bool, length: int, table: int
) -> None:
    gen = torch.Generator().manual_seed(2)
    ids = torch.randint(0, table, (5, length), generator=gen)
    upstream = torch.randn(5, 3, generator=gen)
    got = []
    for module in (fused_fast, fused_reference):
        weight = torch.randn(table, 3, generator=torch.Generator().manual_seed(0))
        weight.requires_grad_(True)
        calls: list[tuple[torch.Tensor, torch.Tensor]] = []
        out = module.fused_bag(
            weight,
            ids,
            mode,
            lambda r, g, calls=calls: calls.append((r, g.clone())),  # type: ignore[misc]
            scale_grad_by_freq=scale,
        )
        want = torch.nn.functional.embedding_bag(ids, weight.detach(), mode=mode)
        assert torch.allclose(out, want, atol=1e-6)
        out.backward(upstream)
        assert weight.grad is None and len(calls) == 1
        got.append(calls[0])
    (rows_f, grad_f), (rows_r, grad_r) = got
    assert rows_f.tolist() == rows_r.tolist() == ids.unique().tolist()
    # by hand: each entry adds its bag's gradient (/ L for mean) to its id's row
    by_hand = torch.zeros(table, 3)
    for b in range(5):
        for i in ids[b].tolist():
            by_hand[i] += upstream[b] / (length if mode == "mean" else 1)
    if scale:
        by_hand /= torch.bincount(ids.reshape(-1), minlength=table).clamp(min=1).unsqueeze(1)
    assert torch.allclose(grad_f, grad_r, atol=1e-6)
    assert torch.allclose(grad_f, by_hand[rows_f], atol=1e-5)
