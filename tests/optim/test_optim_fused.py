"""synthembed.optim.fused: tables whose optimizer runs inside backward equal the unfused
optimizer fed sparse gradients, keep their state across save/load, and refuse misuse."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import synthembed as se
from synthembed.errors import ConfigError
from synthembed.layers.bases import (
    DHEEmbedding,
    HashEmbedding,
    LowRankEmbedding,
    MixedDimEmbedding,
    QREmbedding,
)
from synthembed.optim import (
    RowWiseAdagrad,
    SparseAdagrad,
    SparseAdamW,
    SparseSGD,
    dense_parameters,
    fused_parameters,
)
from synthembed.optim.fused import FusedRows

SPECS: list[tuple[type[Any], dict[str, Any]]] = [
    (SparseSGD, {"lr": 0.1, "weight_decay": 0.05}),
    (SparseAdagrad, {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.05}),
    (RowWiseAdagrad, {"lr": 0.1, "weight_decay": 0.05}),
    (SparseAdamW, {"lr": 0.05, "weight_decay": 0.05}),
    (SparseAdamW, {"lr": 0.05, "weight_decay": 0.05, "lazy_correction": True}),
]
SPEC_IDS = ["sgd", "adagrad", "rowwise", "adamw", "adamw-corrected"]
V, D, PAD = 30, 6, 0


def _batches(mode: str | None, steps: int = 5) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """Batches with duplicate ids and padding; bags of 5 with per-sample weights for ``sum``."""
    g = torch.Generator().manual_seed(1)
    out = []
    for _ in range(steps):
        ids = torch.randint(0, 12, (8, 5), generator=g)  # 12 of 30 rows: many duplicates
        psw = torch.rand(8, 5, generator=g) if mode == "sum" else None
        out.append((ids, psw))
    out.append((torch.zeros(4, 5, dtype=torch.long), None))  # an all-padding batch
    return out


def _fused(layer: Any) -> FusedRows:
    """The fused state of a layer built with fused_optimizer=."""
    assert isinstance(layer.fused, FusedRows)
    return layer.fused


def _loss(out: torch.Tensor) -> torch.Tensor:
    weights = torch.arange(out.numel(), dtype=out.dtype).reshape(out.shape).sin()
    return (out * weights).sum() + out.pow(2).sum()


def _train_embedding(fused: bool, cls: Any, hyper: dict[str, Any], **options: Any) -> torch.Tensor:
    torch.manual_seed(0)
    mode = options.get("mode")
    if fused:
        emb = se.Embedding(V, D, padding_idx=PAD, fused_optimizer=cls(**hyper), **options)
    else:
        emb = se.Embedding(V, D, padding_idx=PAD, sparse=True, **options)
        opt = cls(emb.parameters(), **hyper)
    for ids, psw in _batches(mode):
        out = emb(ids, per_sample_weights=psw) if mode else emb(ids)
        _loss(out).backward()
        if fused:
            assert emb.weight.grad is None
        else:
            opt.step()
            opt.zero_grad()
    return emb.weight.detach().clone()


@pytest.mark.parametrize(("cls", "hyper"), SPECS, ids=SPEC_IDS)
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"max_norm": 1.5},
        {"mode": "sum"},  # with per-sample weights
        {"mode": "mean", "max_norm": 2.0},
    ],
    ids=["lookup", "max_norm", "sum-bags-weighted", "mean-bags"],
)
def test_fused_embedding_equals_unfused_optimizer(
    cls: Any, hyper: dict[str, Any], options: dict[str, Any]
) -> None:
    fused = _train_embedding(True, cls, hyper, **options)
    unfused = _train_embedding(False, cls, hyper, **options)
    assert torch.allclose(fused, unfused, rtol=0, atol=1e-6)
    start = _train_embedding(True, cls, {**hyper, "lr": 0.0}, **options)
    assert not torch.allclose(fused, start)  # it did train
    assert torch.equal(fused[PAD], torch.zeros(D))  # the padding row never moves


@pytest.mark.parametrize(
    "options", [{"mode": "max"}, {"scale_grad_by_freq": True}], ids=["max-bags", "scale-by-freq"]
)
def test_fused_sgd_equals_dense_sgd_where_torch_has_no_sparse_gradient(
    options: dict[str, Any],
) -> None:
    """torch has no sparse gradient for mode='max' or scale_grad_by_freq; fused SGD equals
    torch's dense SGD there."""
    torch.manual_seed(0)
    fused = se.Embedding(V, D, fused_optimizer=SparseSGD(lr=0.1), **options)
    torch.manual_seed(0)
    dense = se.Embedding(V, D, **options)
    opt = torch.optim.SGD(dense.parameters(), lr=0.1)
    for ids, _ in _batches(None)[:-1]:
        _loss(fused(ids)).backward()
        opt.zero_grad()
        _loss(dense(ids)).backward()
        opt.step()
    assert torch.allclose(fused.weight, dense.weight, rtol=0, atol=1e-6)


def test_fused_table_gets_no_gradient_and_no_step_without_backward() -> None:
    emb = se.Embedding(10, 4, fused_optimizer=RowWiseAdagrad(lr=0.1))
    before = emb.weight.detach().clone()
    with torch.no_grad():
        emb(torch.tensor([1, 2]))
    emb.eval()
    out = emb(torch.tensor([1, 2]))  # eval mode still trains if a backward follows
    assert torch.equal(emb.weight, before) and int(_fused(emb).step) == 0
    out.sum().backward()
    assert emb.weight.grad is None and int(_fused(emb).step) == 1
    assert not torch.equal(emb.weight[1], before[1]) and torch.equal(emb.weight[3], before[3])


def test_fused_state_is_in_the_state_dict() -> None:
    emb = se.Embedding(10, 4, fused_optimizer=SparseAdamW(lr=0.1))
    keys = set(emb.state_dict())
    assert keys == {
        "weight",
        "fused.exp_avg",
        "fused.exp_avg_sq",
        "fused.last_step",
        "fused.step",
    }
    assert emb.state_dict()["fused.last_step"].dtype == torch.int64


@pytest.mark.parametrize(("cls", "hyper"), SPECS, ids=SPEC_IDS)
def test_save_load_round_trip_resumes_bit_exactly(
    cls: Any, hyper: dict[str, Any], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    emb = se.Embedding(V, D, padding_idx=PAD, fused_optimizer=cls(**hyper))
    batches = _batches(None)
    for ids, _ in batches[:3]:
        _loss(emb(ids)).backward()
    path = tmp_path / "emb.safetensors"
    se.save(emb, path)
    for ids, _ in batches[3:]:
        _loss(emb(ids)).backward()

    resumed = se.load(path)
    assert isinstance(resumed.fused_optimizer, cls)
    assert resumed.fused_optimizer.defaults == cls(**hyper).defaults
    for ids, _ in batches[3:]:
        _loss(resumed(ids)).backward()
    assert torch.equal(resumed.weight, emb.weight)
    for key, value in _fused(emb).state_dict().items():
        assert torch.equal(_fused(resumed).state_dict()[key], value), key


def test_deepcopy_keeps_training_its_own_table() -> None:
    emb = se.Embedding(10, 4, fused_optimizer=RowWiseAdagrad(lr=0.1))
    emb(torch.tensor([1])).sum().backward()
    twin = copy.deepcopy(emb)
    twin(torch.tensor([2])).sum().backward()
    assert int(_fused(twin).step) == 2 and int(_fused(emb).step) == 1
    assert not torch.equal(twin.weight[2], emb.weight[2])


def test_dense_parameters_leave_out_fused_tables() -> None:
    table = se.Embedding(10, 4, fused_optimizer=RowWiseAdagrad(lr=0.1))
    plain = se.Embedding(10, 4)
    head = torch.nn.Linear(4, 1)
    model = torch.nn.ModuleList([table, plain, head])
    assert [id(p) for p in fused_parameters(model)] == [id(table.weight)]
    assert [id(p) for p in dense_parameters(model)] == [
        id(plain.weight),
        id(head.weight),
        id(head.bias),
    ]
    hashed = HashEmbedding(100, 4, num_buckets=10, fused_optimizer=SparseSGD(lr=0.1))
    assert len(fused_parameters(hashed)) == 2 and dense_parameters(hashed) == []


def test_fused_with_sparse_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"Embedding takes sparse=True or fused_optimizer"):
        se.Embedding(10, 4, sparse=True, fused_optimizer=SparseSGD(lr=0.1))
    with pytest.raises(ConfigError, match=r"HashEmbedding takes sparse=True or fused_optimizer"):
        HashEmbedding(10, 4, sparse=True, fused_optimizer=SparseSGD(lr=0.1))


def test_fused_optimizer_must_be_unbound_and_ours() -> None:
    emb = se.Embedding(10, 4)
    with pytest.raises(ConfigError, match=r"must be built without parameters"):
        se.Embedding(10, 4, fused_optimizer=SparseSGD(emb.parameters(), lr=0.1))
    with pytest.raises(ConfigError, match=r"must be one of .*RowWiseAdagrad.*Got 'adam'"):
        se.Embedding(10, 4, fused_optimizer="adam")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"must be one of"):
        se.Embedding(10, 4, fused_optimizer=torch.optim.SGD(emb.parameters(), lr=0.1))  # type: ignore[arg-type]


def test_soft_lookup_of_a_fused_table_is_a_clear_error() -> None:
    emb = se.Embedding(3, 2, fused_optimizer=SparseSGD(lr=0.1))
    with pytest.raises(ConfigError, match=r"soft lookup .* fused_optimizer"):
        emb(torch.eye(3))
    with torch.no_grad():
        assert emb(torch.eye(3)).shape == (3, 2)  # inference needs no gradient


def test_dhe_has_no_table_to_fuse() -> None:
    with pytest.raises(ConfigError, match=r"DHEEmbedding \(base 'dhe'\) has no table"):
        DHEEmbedding(100, 4, num_hashes=8, hidden_dims=(8,), fused_optimizer=SparseSGD(lr=0.1))


# -- the bases with tables ----------------------------------------------------------

BASES: dict[str, Callable[..., torch.nn.Module]] = {
    "hash": lambda **kw: HashEmbedding(40, D, padding_idx=PAD, num_buckets=7, **kw),
    "qr": lambda **kw: QREmbedding(40, D, padding_idx=PAD, num_collisions=5, **kw),
    "lowrank": lambda **kw: LowRankEmbedding(40, D, padding_idx=PAD, rank=3, **kw),
    "mixed": lambda **kw: MixedDimEmbedding(40, D, padding_idx=PAD, num_blocks=2, **kw),
}


def _train_base(name: str, fused: bool, cls: Any, hyper: dict[str, Any]) -> list[torch.Tensor]:
    torch.manual_seed(0)
    if fused:
        base = BASES[name](fused_optimizer=cls(**hyper))
    else:
        base = BASES[name](sparse=True)
    for p in base.parameters():  # projections (lowrank, mixed) stay fixed here
        if p.dim() == 2 and not any(p is m.weight for m in base.modules() if _is_table(m)):
            p.requires_grad_(False)
    tables = [m.weight for m in base.modules() if _is_table(m)]
    opt = None if fused else cls(tables, **hyper)
    g = torch.Generator().manual_seed(2)
    for _ in range(4):
        ids = torch.randint(0, 40, (16,), generator=g)
        _loss(base(ids)).backward()
        if opt is not None:
            opt.step()
            opt.zero_grad()
    assert all(t.grad is None for t in tables) or not fused
    return [p.detach().clone() for p in base.parameters()]


def _is_table(m: torch.nn.Module) -> bool:
    return isinstance(m, torch.nn.Embedding)


@pytest.mark.parametrize("name", sorted(BASES))
@pytest.mark.parametrize(("cls", "hyper"), SPECS[2:4], ids=SPEC_IDS[2:4])
def test_fused_bases_equal_unfused_optimizer(name: str, cls: Any, hyper: dict[str, Any]) -> None:
    fused = _train_base(name, True, cls, hyper)
    unfused = _train_base(name, False, cls, hyper)
    assert len(fused) == len(unfused)
    for a, b in zip(fused, unfused):
        assert torch.allclose(a, b, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", sorted(BASES))
def test_fused_base_saves_and_resumes_bit_exactly(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    base = BASES[name](fused_optimizer=SparseAdamW(lr=0.05))
    ids = torch.arange(1, 30)
    _loss(base(ids)).backward()
    path = tmp_path / "base.safetensors"
    se.save(base, path)
    _loss(base(ids)).backward()
    resumed = se.load(path)
    assert isinstance(resumed.fused_optimizer, SparseAdamW)
    _loss(resumed(ids)).backward()
    for (key, a), b in zip(base.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), key


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_fused_bags_pass_gradients_to_inputs_like_unfused(mode: Any) -> None:
    """The bag kernel's backward: rows updated as unfused, and per-sample weights (sum)
    get the same gradient as through torch's bag."""
    results = []
    for fused in (True, False):
        torch.manual_seed(0)
        if fused:
            emb = se.Embedding(V, D, padding_idx=PAD, mode=mode, fused_optimizer=SparseSGD(lr=0.1))
        else:
            emb = se.Embedding(V, D, padding_idx=PAD, mode=mode, sparse=True)
        ids = torch.tensor([[1, 2, 2, 0], [0, 0, 0, 0], [5, 1, 0, 3]])
        psw = torch.rand(3, 4, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
        out = emb(ids, per_sample_weights=psw) if mode == "sum" else emb(ids)
        _loss(out).backward()
        if not fused:
            SparseSGD(emb.parameters(), lr=0.1).step()
        results.append((emb.weight.detach().clone(), out.detach(), psw.grad))
    (w_f, out_f, g_f), (w_u, out_u, g_u) = results
    assert torch.allclose(out_f, out_u, rtol=0, atol=1e-6)
    assert torch.allclose(w_f, w_u, rtol=0, atol=1e-6)
    if mode == "sum":
        assert g_f is not None and g_u is not None
        assert torch.allclose(g_f, g_u, rtol=0, atol=1e-5)


def test_interceptor_receives_the_update_and_step_rows_applies_it() -> None:
    torch.manual_seed(0)
    table = se.Embedding(10, 4, fused_optimizer=RowWiseAdagrad(lr=0.1))
    twin = copy.deepcopy(table)
    held: list[tuple[torch.Tensor, torch.Tensor]] = []
    table.fused.interceptor = lambda rows, weight, ids, grad: held.append((ids, grad.clone()))
    before = table.weight.detach().clone()
    table(torch.tensor([3, 1, 3])).sum().backward()
    assert torch.equal(table.weight.detach(), before)  # held back, not applied
    assert len(held) == 1 and held[0][0].tolist() == [1, 3]
    assert torch.equal(held[0][1], torch.tensor([[1.0] * 4, [2.0] * 4]))  # summed duplicates
    table.fused.step_rows(table.weight, *held[0])
    twin(torch.tensor([3, 1, 3])).sum().backward()
    assert torch.equal(table.weight.detach(), twin.weight.detach())
