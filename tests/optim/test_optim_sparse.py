"""synthembed.optim.sparse (and its save/load): row-wise sparse optimizers against hand-computed
references."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import torch

import synthembed
from synthembed.errors import ConfigError, FileFormatError
from synthembed.optim import (
    RowWiseAdagrad,
    SparseAdagrad,
    SparseAdamW,
    SparseSGD,
    load_optimizer,
    save_optimizer,
)

V, D = 6, 3
# Duplicates (row 1 twice in the first batch), rows untouched for several steps
# (row 4 only in batches 0 and 4), and an all-padding batch (padding_idx=0).
BATCHES = [[1, 1, 4], [2, 3], [0, 0], [1, 2], [4, 1, 1, 5], [3]]
FACTORY: list[Callable[..., torch.optim.Optimizer]] = [
    lambda p: SparseSGD(p, lr=0.1, weight_decay=0.05),
    lambda p: SparseAdagrad(p, lr=0.1, lr_decay=0.01, weight_decay=0.05),
    lambda p: RowWiseAdagrad(p, lr=0.1, weight_decay=0.05),
    lambda p: SparseAdamW(p, lr=0.1, weight_decay=0.05),
    lambda p: SparseAdamW(p, lr=0.1, weight_decay=0.05, lazy_correction=True),
]
IDS = ["sgd", "adagrad", "rowwise", "adamw", "adamw-corrected"]


def _table(seed: int = 0) -> torch.nn.Embedding:
    torch.manual_seed(seed)
    return torch.nn.Embedding(V, D, padding_idx=0, sparse=True).double()


def _targets() -> torch.Tensor:
    return torch.linspace(-1, 1, V * D, dtype=torch.float64).reshape(V, D)


def _loss(emb: torch.nn.Embedding, batch: list[int]) -> torch.Tensor:
    ids = torch.tensor(batch)
    return ((emb(ids) - _targets()[ids]) ** 2).sum()


def _grad_rows(emb: torch.nn.Embedding, batch: list[int]) -> dict[int, torch.Tensor]:
    """The coalesced gradient row of each id (duplicates summed), computed densely."""
    w = emb.weight.detach().clone().requires_grad_(True)
    ids = torch.tensor(batch)
    ((w[ids] - _targets()[ids]) ** 2).sum().backward()
    assert w.grad is not None
    return {r: w.grad[r].clone() for r in sorted(set(batch)) if r != 0}


def _train(opt: torch.optim.Optimizer, emb: torch.nn.Embedding, batches: list[list[int]]) -> None:
    for batch in batches:
        opt.zero_grad()
        _loss(emb, batch).backward()
        opt.step()


# -- hand-computed references: loops over rows, plain float64 arithmetic ---------------


def _ref_sgd(w: torch.Tensor, batches: list[list[int]], lr: float, wd: float) -> torch.Tensor:
    emb = _table()
    emb.weight.data.copy_(w)
    for batch in batches:
        for r, g in _grad_rows(emb, batch).items():
            emb.weight.data[r] -= lr * (g + wd * emb.weight.data[r])
    return emb.weight.data


def _ref_adagrad(w: torch.Tensor, batches: list[list[int]], lr: float, decay: float, wd: float):
    emb = _table()
    emb.weight.data.copy_(w)
    s = torch.zeros(V, D, dtype=torch.float64)
    t = 0
    for batch in batches:
        rows = _grad_rows(emb, batch)
        if not rows:
            continue
        t += 1
        for r, g in rows.items():
            g = g + wd * emb.weight.data[r]
            s[r] += g * g
            emb.weight.data[r] -= lr / (1 + (t - 1) * decay) * g / (s[r].sqrt() + 1e-10)
    return emb.weight.data


def _ref_rowwise(w: torch.Tensor, batches: list[list[int]], lr: float, wd: float) -> torch.Tensor:
    emb = _table()
    emb.weight.data.copy_(w)
    s = [0.0] * V
    for batch in batches:
        for r, g in _grad_rows(emb, batch).items():
            g = g + wd * emb.weight.data[r]
            s[r] += sum(float(x) ** 2 for x in g) / D
            emb.weight.data[r] -= lr * g / (math.sqrt(s[r]) + 1e-8)
    return emb.weight.data


def _ref_adamw(
    w: torch.Tensor, batches: list[list[int]], lr: float, wd: float, correct: bool
) -> torch.Tensor:
    b1, b2, eps = 0.9, 0.999, 1e-8
    emb = _table()
    emb.weight.data.copy_(w)
    m = torch.zeros(V, D, dtype=torch.float64)
    v = torch.zeros(V, D, dtype=torch.float64)
    last = [0] * V
    t = 0
    for batch in batches:
        rows = _grad_rows(emb, batch)
        if not rows:
            continue
        t += 1
        for r, g in rows.items():
            if correct:
                k = t - last[r] - 1
                m[r] *= b1**k
                v[r] *= b2**k
            emb.weight.data[r] *= 1 - lr * wd
            m[r] = b1 * m[r] + (1 - b1) * g
            v[r] = b2 * v[r] + (1 - b2) * g * g
            m_hat = m[r] / (1 - b1**t)
            v_hat = v[r] / (1 - b2**t)
            emb.weight.data[r] -= lr * m_hat / (v_hat.sqrt() + eps)
            last[r] = t
    return emb.weight.data


REFERENCES: list[Callable[[torch.Tensor, list[list[int]]], torch.Tensor]] = [
    lambda w, b: _ref_sgd(w, b, 0.1, 0.05),
    lambda w, b: _ref_adagrad(w, b, 0.1, 0.01, 0.05),
    lambda w, b: _ref_rowwise(w, b, 0.1, 0.05),
    lambda w, b: _ref_adamw(w, b, 0.1, 0.05, False),
    lambda w, b: _ref_adamw(w, b, 0.1, 0.05, True),
]


@pytest.mark.parametrize("index", range(len(IDS)), ids=IDS)
def test_matches_hand_computed_reference(index: int) -> None:
    emb = _table()
    start = emb.weight.detach().clone()
    opt = FACTORY[index](emb.parameters())
    _train(opt, emb, BATCHES)
    expected = REFERENCES[index](start, BATCHES)
    torch.testing.assert_close(emb.weight.detach(), expected, rtol=1e-12, atol=1e-12)
    # untouched rows never move: padding row 0 was in no non-padding batch
    assert torch.equal(emb.weight[0], start[0])


def test_lazy_correction_changes_only_rows_that_missed_steps() -> None:
    a, b = _table(), _table()
    plain = SparseAdamW(a.parameters(), lr=0.1, weight_decay=0.0)
    corrected = SparseAdamW(b.parameters(), lr=0.1, weight_decay=0.0, lazy_correction=True)
    _train(plain, a, [[1, 2], [1, 2], [1, 2]])
    _train(corrected, b, [[1, 2], [1, 2], [1, 2]])
    assert torch.equal(a.weight, b.weight)  # rows seen every step: no correction
    _train(plain, a, [[1], [1], [2]])
    _train(corrected, b, [[1], [1], [2]])
    assert torch.equal(a.weight[1], b.weight[1])
    assert not torch.allclose(a.weight[2], b.weight[2])  # row 2 missed two steps
    state = corrected.state[b.weight]
    assert state["last_step"].tolist() == [0, 5, 6, 0, 0, 0]


@pytest.mark.parametrize("index", range(len(IDS)), ids=IDS)
def test_all_padding_batch_is_a_no_op(index: int) -> None:
    emb = synthembed.Embedding(V, D, padding_idx=0, sparse=True)
    opt = FACTORY[index](emb.parameters())
    emb(torch.tensor([2, 3])).sum().backward()
    opt.step()
    before_w = emb.weight.detach().clone()
    before_state = copy.deepcopy(opt.state_dict())
    opt.zero_grad()
    emb(torch.tensor([0, 0, 0])).sum().backward()
    assert emb.weight.grad is not None and emb.weight.grad.indices().shape[1] == 0
    opt.step()
    assert torch.equal(emb.weight, before_w)
    after = opt.state_dict()["state"][0]
    for key, value in before_state["state"][0].items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(after[key], value)
        else:
            assert after[key] == value


def test_first_batch_all_padding_creates_no_state() -> None:
    emb = torch.nn.Embedding(V, D, padding_idx=0, sparse=True)
    opt = SparseAdamW(emb.parameters())
    emb(torch.tensor([0])).sum().backward()
    opt.step()
    assert not opt.state


def test_sparse_sgd_equals_torch_sgd() -> None:
    a, b = _table(), _table()
    ours = SparseSGD(a.parameters(), lr=0.05)
    theirs = torch.optim.SGD(b.parameters(), lr=0.05)
    for batch in BATCHES:
        _train(ours, a, [batch])
        _train(theirs, b, [batch])
    torch.testing.assert_close(a.weight, b.weight, rtol=0, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Sparse invariant checks:UserWarning")
def test_sparse_adagrad_equals_torch_adagrad() -> None:
    batches = [b for b in BATCHES if set(b) != {0}]  # torch counts empty steps too
    a, b = _table(), _table()
    a.float(), b.float()
    kw: dict[str, Any] = {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1}
    ours = SparseAdagrad(a.parameters(), **kw)
    theirs = torch.optim.Adagrad(b.parameters(), **kw)
    for batch in batches:
        for emb, opt in ((a, ours), (b, theirs)):
            opt.zero_grad()
            ids = torch.tensor(batch)
            ((emb(ids) - _targets()[ids].float()) ** 2).sum().backward()
            opt.step()
    torch.testing.assert_close(a.weight, b.weight, rtol=0, atol=1e-6)


def test_sparse_adamw_without_decay_matches_torch_sparse_adam() -> None:
    batches = [b for b in BATCHES if set(b) != {0}]  # torch's SparseAdam crashes on those
    a, b = _table(), _table()
    ours = SparseAdamW(a.parameters(), lr=0.01, weight_decay=0.0)
    theirs = torch.optim.SparseAdam(list(b.parameters()), lr=0.01)
    for batch in batches:
        _train(ours, a, [batch])
        _train(theirs, b, [batch])
    torch.testing.assert_close(a.weight, b.weight, rtol=0, atol=1e-6)


def test_rowwise_state_is_one_value_per_row() -> None:
    emb = _table()
    opt = RowWiseAdagrad(emb.parameters(), lr=0.1)
    _train(opt, emb, [[1, 1, 2]])
    assert opt.state[emb.weight]["sum"].shape == (V,)


# -- misuse -------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(IDS)), ids=IDS)
def test_dense_gradient_is_a_clear_error(index: int) -> None:
    emb = torch.nn.Embedding(V, D)
    opt = FACTORY[index](emb.parameters())
    emb(torch.tensor([1])).sum().backward()
    with pytest.raises(ConfigError, match=r"\(6, 3\).*sparse=True"):
        opt.step()


def test_dense_gradient_anywhere_changes_no_row() -> None:
    sparse, dense = _table(), torch.nn.Embedding(V, D).double()
    opt = SparseAdamW([*sparse.parameters(), *dense.parameters()], lr=0.1)
    before = sparse.weight.detach().clone()
    (_loss(sparse, [1, 2]) + dense(torch.tensor([1])).sum()).backward()
    with pytest.raises(ConfigError, match="dense one"):
        opt.step()
    assert torch.equal(sparse.weight, before)
    assert not opt.state


def test_gradient_sparse_over_two_dims_is_a_clear_error() -> None:
    w = torch.nn.Parameter(torch.zeros(V, D))
    w.grad = torch.sparse_coo_tensor(torch.tensor([[1], [2]]), torch.tensor([1.0]), (V, D))
    with pytest.raises(ConfigError, match="sparse_dim 2"):
        SparseSGD([w]).step()


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda p: SparseSGD(p, lr=-1.0), r"'lr'.*\[0, inf\).*-1\.0"),
        (lambda p: SparseSGD(p, weight_decay=-0.1), r"'weight_decay'.*\[0, inf\)"),
        (lambda p: SparseAdagrad(p, eps=0.0), r"'eps'.*\(0, inf\).*0\.0"),
        (lambda p: SparseAdagrad(p, lr_decay=-1.0), r"'lr_decay'"),
        (lambda p: RowWiseAdagrad(p, eps=-1e-8), r"'eps'.*\(0, inf\)"),
        (lambda p: RowWiseAdagrad(p, initial_accumulator_value=-1.0), r"initial_acc"),
        (lambda p: SparseAdamW(p, betas=(1.0, 0.999)), r"'betas\[0\]'.*\[0, 1\).*1\.0"),
        (lambda p: SparseAdamW(p, betas=(0.9, -0.1)), r"'betas\[1\]'.*\[0, 1\)"),
        (lambda p: SparseAdamW(p, betas=cast(Any, (0.9,))), r"'betas'.*pair"),
        (lambda p: SparseAdamW(p, lazy_correction=cast(Any, "yes")), r"'lazy_correction'.*bool"),
        (lambda p: SparseAdamW([{"params": p, "lr": -2.0}]), r"'lr'.*-2\.0"),
    ],
)
def test_bad_hyperparameters_raise_config_error(make: Callable[..., Any], pattern: str) -> None:
    emb = _table()
    with pytest.raises(ConfigError, match=pattern):
        make(list(emb.parameters()))


def test_bad_added_param_group_changes_nothing() -> None:
    a, b = _table(), _table(1)
    opt = SparseAdamW(a.parameters())
    with pytest.raises(ConfigError):
        opt.add_param_group({"params": b.parameters(), "eps": 0.0})
    assert len(opt.param_groups) == 1


# -- state save / restore ------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(IDS)), ids=IDS)
def test_state_dict_round_trip_resumes_bit_exactly(index: int) -> None:
    emb = _table()
    opt = FACTORY[index](emb.parameters())
    _train(opt, emb, BATCHES[:3])
    for entry in opt.state_dict()["state"].values():
        assert all(isinstance(v, (torch.Tensor, int, float)) for v in entry.values())
    saved_w = emb.weight.detach().clone()
    saved_opt = copy.deepcopy(opt.state_dict())
    _train(opt, emb, BATCHES[3:])

    resumed = _table(5)
    resumed.weight.data.copy_(saved_w)
    opt2 = FACTORY[index](resumed.parameters())
    opt2.load_state_dict(saved_opt)
    _train(opt2, resumed, BATCHES[3:])
    assert torch.equal(resumed.weight, emb.weight)


@pytest.mark.parametrize("index", range(len(IDS)), ids=IDS)
def test_save_and_load_optimizer_file_resumes_bit_exactly(index: int, tmp_path: Path) -> None:
    emb = _table()
    opt = FACTORY[index](emb.parameters())
    _train(opt, emb, BATCHES[:3])
    path = tmp_path / "opt.safetensors"
    save_optimizer(opt, path)
    saved_w = emb.weight.detach().clone()
    _train(opt, emb, BATCHES[3:])

    resumed = _table(5)
    resumed.weight.data.copy_(saved_w)
    opt2 = load_optimizer(FACTORY[index](resumed.parameters()), path)
    if "last_step" in opt2.state[resumed.weight]:
        assert opt2.state[resumed.weight]["last_step"].dtype == torch.int64
    _train(opt2, resumed, BATCHES[3:])
    assert torch.equal(resumed.weight, emb.weight)


def test_load_optimizer_rejects_other_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(FileFormatError, match=r"bad\.safetensors"):
        load_optimizer(SparseSGD(_table().parameters()), bad)


# -- unbound optimizers: specifications of fused tables -----------------------------


@pytest.mark.parametrize("cls", [SparseSGD, SparseAdagrad, RowWiseAdagrad, SparseAdamW])
def test_optimizer_without_parameters_is_a_specification(cls: Any) -> None:
    spec = cls(lr=0.5)
    assert spec.unbound and spec.param_groups == [] and spec.defaults["lr"] == 0.5
    assert repr(spec).startswith(f"{cls.__name__}(lr=0.5")
    with pytest.raises(ConfigError, match=rf"This {cls.__name__} was built without parameters"):
        spec.step()


def test_optimizer_without_parameters_still_checks_hyperparameters() -> None:
    with pytest.raises(ConfigError, match="lr"):
        RowWiseAdagrad(lr=-1.0)
