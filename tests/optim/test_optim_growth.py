"""synthembed.optim.growth: growing a table keeps the Parameter, grow_state pads optimizer
state, and a stale state is an error at the next step, never a silent one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import synthembed as se
from synthembed.layers.bases import HashEmbedding, LowRankEmbedding, MixedDimEmbedding
from synthembed.optim import (
    RowWiseAdagrad,
    SparseAdagrad,
    SparseAdamW,
    SparseSGD,
    StaleStateError,
    grow_state,
)
from synthembed.optim.fused import FusedRows

V, D, N = 5, 3, 4  # rows before growth, width, rows added

# (factory, sparse gradients?, state key the error names)
OPTIMIZERS: dict[str, tuple[Callable[[Any], torch.optim.Optimizer], bool, str]] = {
    "adam": (lambda p: torch.optim.Adam(p, lr=0.1), False, "exp_avg"),
    "adagrad": (
        lambda p: torch.optim.Adagrad(p, lr=0.1, initial_accumulator_value=0.2),
        False,
        "sum",
    ),
    "sgd-momentum": (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), False, "momentum_buffer"),
    "sparse-adam": (lambda p: torch.optim.SparseAdam(list(p), lr=0.1), True, "exp_avg"),
    "sparse-sgd": (lambda p: SparseSGD(p, lr=0.1), True, ""),
    "sparse-adagrad": (
        lambda p: SparseAdagrad(p, lr=0.1, initial_accumulator_value=0.2),
        True,
        "sum",
    ),
    "rowwise-adagrad": (
        lambda p: RowWiseAdagrad(p, lr=0.1, initial_accumulator_value=0.2),
        True,
        "sum",
    ),
    "sparse-adamw": (
        lambda p: SparseAdamW(p, lr=0.1, lazy_correction=True),
        True,
        "exp_avg",
    ),
}
BEFORE = [torch.tensor([1, 1, 3]), torch.tensor([2, 4])]
AFTER = [torch.tensor([1, 6, 8]), torch.tensor([7, 7, 2]), torch.tensor([5, 0])]


def _fused(layer: Any) -> FusedRows:
    assert isinstance(layer.fused, FusedRows)
    return layer.fused


def _loss(out: torch.Tensor) -> torch.Tensor:
    return (out * torch.arange(out.numel(), dtype=out.dtype).reshape(out.shape).cos()).sum()


def _step(opt: torch.optim.Optimizer, emb: torch.nn.Module, ids: torch.Tensor) -> None:
    opt.zero_grad()
    _loss(emb(ids)).backward()
    opt.step()


def test_grow_keeps_the_parameter_object() -> None:
    emb = se.Embedding(V, D)
    weight, old = emb.weight, emb.weight.detach().clone()
    new_ids = emb.grow(N)
    assert emb.weight is weight and weight.shape == (V + N, D)
    assert torch.equal(weight[:V], old) and new_ids.tolist() == list(range(V, V + N))
    layers: list[tuple[Any, str]] = [
        (HashEmbedding(V, D, num_buckets=3), "importance"),
        (LowRankEmbedding(V, D, rank=2), "factor"),
        (MixedDimEmbedding(20, D, num_blocks=2), "tables.1"),
    ]
    for layer, table in layers:
        param = layer.get_parameter(f"{table}.weight")
        rows = param.shape[0]
        layer.grow(N)
        assert layer.get_parameter(f"{table}.weight") is param and param.shape[0] == rows + N


def test_sgd_built_before_growth_trains_the_new_rows() -> None:
    emb = se.Embedding(V, D)
    opt = torch.optim.SGD(emb.parameters(), lr=0.1)
    _step(opt, emb, BEFORE[0])
    emb.grow(N)
    before = emb.weight.detach().clone()
    _step(opt, emb, torch.tensor([V + 1]))
    assert not torch.equal(emb.weight[V + 1], before[V + 1])
    assert torch.equal(emb.weight[:V], before[:V])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_stale_state_is_an_error_and_grow_state_equals_a_table_built_big(name: str) -> None:
    make, sparse, key = OPTIMIZERS[name]
    torch.manual_seed(0)
    init = torch.randn(V + N, D)
    grown = se.Embedding.from_pretrained(init[:V], freeze=False, sparse=sparse, copy=True)
    big = se.Embedding.from_pretrained(init, freeze=False, sparse=sparse, copy=True)
    opt_grown, opt_big = make(grown.parameters()), make(big.parameters())
    for ids in BEFORE:
        _step(opt_grown, grown, ids)
        _step(opt_big, big, ids)
    grown.grow(N, init=init[V:])
    if key:  # an optimizer with per-row state
        opt_grown.zero_grad()
        _loss(grown(AFTER[0])).backward()
        before = grown.weight.detach().clone()
        message = (
            f"{type(opt_grown).__name__} holds state '{key}' for {V} rows of Embedding.weight, "
            f"which now has {V + N} rows (synthembed grew it). Call "
            "synthembed.optim.grow_state(optimizer) after growing: it pads the state with "
            "fresh rows (or build a new optimizer)."
        )
        with pytest.raises(StaleStateError) as info:
            opt_grown.step()
        assert str(info.value) == message
        assert torch.equal(grown.weight, before)  # nothing moved
    assert grow_state(opt_grown) is opt_grown
    for ids in AFTER:
        _step(opt_grown, grown, ids)
        _step(opt_big, big, ids)
    assert torch.allclose(grown.weight, big.weight, rtol=0, atol=1e-6)
    for k, value in opt_big.state[big.weight].items():
        assert torch.allclose(
            torch.as_tensor(opt_grown.state[grown.weight][k]).double(),
            torch.as_tensor(value).double(),
            rtol=0,
            atol=1e-6,
        ), k


def test_an_optimizer_without_state_yet_needs_nothing() -> None:
    emb = se.Embedding(V, D)
    opt = torch.optim.Adam(emb.parameters(), lr=0.1)
    emb.grow(N)
    _step(opt, emb, torch.tensor([V + 2]))
    assert opt.state[emb.weight]["exp_avg"].shape == (V + N, D)


def test_stale_state_of_a_base_table_names_it() -> None:
    layer = LowRankEmbedding(V, D, rank=2)
    opt = torch.optim.Adagrad(layer.parameters(), lr=0.1)
    _step(opt, layer, BEFORE[0])
    layer.grow(N)
    opt.zero_grad()
    _loss(layer(torch.tensor([V]))).backward()
    with pytest.raises(StaleStateError, match=r"'sum' for 5 rows of LowRankEmbedding\.factor"):
        opt.step()
    grow_state(opt)
    opt.step()
    assert opt.state[layer.factor.weight]["sum"].shape == (V + N, 2)


def test_a_pending_gradient_is_padded() -> None:
    dense, sparse = se.Embedding(V, D), se.Embedding(V, D, sparse=True)
    for emb in (dense, sparse):
        _loss(emb(torch.tensor([1, 2]))).backward()
        grad = emb.weight.grad.to_dense().clone()  # type: ignore[union-attr]
        emb.grow(N)
        padded = emb.weight.grad.to_dense()  # type: ignore[union-attr]
        assert padded.shape == (V + N, D)
        assert torch.equal(padded[:V], grad) and not padded[V:].any()


@pytest.mark.parametrize(
    "spec",
    [
        SparseSGD(lr=0.1),
        RowWiseAdagrad(lr=0.1, initial_accumulator_value=0.2),
        SparseAdamW(lr=0.1, lazy_correction=True),
    ],
    ids=["sgd", "rowwise", "adamw"],
)
def test_fused_state_grows_with_the_table(spec: Any) -> None:
    torch.manual_seed(0)
    init = torch.randn(V + N, D)
    grown = se.Embedding.from_pretrained(init[:V], freeze=False, copy=True, fused_optimizer=spec)
    big = se.Embedding.from_pretrained(init, freeze=False, copy=True, fused_optimizer=spec)
    for ids in BEFORE:
        _loss(grown(ids)).backward()
        _loss(big(ids)).backward()
    grown.grow(N, init=init[V:])
    for ids in AFTER:
        _loss(grown(ids)).backward()
        _loss(big(ids)).backward()
    assert torch.allclose(grown.weight, big.weight, rtol=0, atol=1e-6)
    for key, value in _fused(big).state_dict().items():
        assert torch.allclose(
            _fused(grown).state_dict()[key].double(), value.double(), rtol=0, atol=1e-6
        ), key
