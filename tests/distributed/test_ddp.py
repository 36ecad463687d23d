"""synthembed.distributed.ddp: every layer trains under DDP (two gloo processes) and the
replicas, per-id state included, stay equal to each other and to one process on the
global batch."""

from __future__ import annotations

import contextlib
import copy
import gc
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from spawn_support import gathered_max_diff, spawn, state_tensors
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import synthembed as se
import synthembed.distributed as sd
from synthembed.errors import ConfigError
from synthembed.layers.bases import BASES, make_base
from synthembed.optim import RowWiseAdagrad, dense_parameters

pytestmark = pytest.mark.xdist_group("distributed")  # one worker runs them: 2 processes each

V, D, B, STEPS = 30, 4, 6, 3
SPARSE_BASES = ("hash", "qr", "lowrank", "mixed")


def _side() -> torch.Tensor:
    return torch.rand(V, 3, generator=torch.Generator().manual_seed(7))


class _Box:
    def __init__(self, value: torch.Tensor) -> None:
        self.value = value


class _Boxed(nn.Module):
    """A model whose output is an object DDP's output hooks cannot look into."""

    def __init__(self, table: nn.Module) -> None:
        super().__init__()
        self.table = table
        self.head = nn.Linear(D, D)

    def forward(self, ids: torch.Tensor) -> _Box:
        return _Box(self.head(self.table(ids)))


def build(case: str) -> nn.Module:
    """The layer of ``case`` (under torch.manual_seed(0): the same on every rank)."""
    torch.manual_seed(0)
    name, _, kind = case.partition("_")
    if name == "synthetic":
        options: dict[str, Any] = {"synthesis_rate": 0.3, "train_synthetic_fraction": 0.0}
        # The content tower, or the autoencoder (the default with side features).
        options["technique"] = "combination" if kind == "" else "autoencoder"
        if kind == "hash":
            options["base"] = "hash"
        if kind == "dropout":
            options["train_synthetic_fraction"] = 0.3
        if kind == "fused":
            options["fused_optimizer"] = RowWiseAdagrad(lr=0.1)
        if kind == "sparse":
            options["base_options"] = {"sparse": True}
        return se.SyntheticEmbeddingLayer(V, D, side_features=_side(), cold_threshold=2, **options)
    if kind == "sparse":
        return make_base(name, V, D, sparse=True)
    if kind == "fused":  # the rest of a model beside the fused table, for DDP to average
        table = make_base(name, V, D, fused_optimizer=RowWiseAdagrad(lr=0.1))
        return nn.Sequential(table, nn.Linear(D, D))
    return make_base(name, V, D)


def batch(step: int, rank: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Step ``step``'s global batch (2B ids, targets), or ``rank``'s half of it."""
    g = torch.Generator().manual_seed(100 + step)
    ids = torch.randint(0, V, (2 * B,), generator=g)
    target = torch.randn(2 * B, D, generator=g)
    if rank is None:
        return ids, target
    return ids[rank * B : (rank + 1) * B], target[rank * B : (rank + 1) * B]


def train_step(model: nn.Module, layer: nn.Module, opt: torch.optim.Optimizer, ids, target) -> None:
    loss = F.mse_loss(model(ids), target)
    if isinstance(layer, se.SyntheticEmbeddingLayer):
        loss = loss + layer.get_loss()
    opt.zero_grad()
    loss.backward()
    opt.step()


def run_cases(rank: int, world: int, cases: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for case in cases:
        layer = build(case)
        reference: Any = copy.deepcopy(layer)
        # A batch may reach only some of a mixed base's tables.
        model = sd.data_parallel(layer, find_unused_parameters=case.startswith("mixed"))
        opt = torch.optim.SGD(dense_parameters(layer), lr=0.1)
        for step in range(STEPS):
            train_step(model, layer, opt, *batch(step, rank))
        result: dict[str, Any] = {"replicas": gathered_max_diff(state_tensors(layer))}
        if rank == 0:
            ref_opt = torch.optim.SGD(dense_parameters(reference), lr=0.1)
            for step in range(STEPS):
                train_step(reference, reference, ref_opt, *batch(step, None))
            mine, ref = state_tensors(layer), state_tensors(reference)
            result["single"] = max(
                float((a.double() - b.double()).abs().max()) for a, b in zip(mine, ref)
            )
            if isinstance(layer, se.SyntheticEmbeddingLayer) and layer.counts is not None:
                result["counts"] = layer.counts.tolist()
                result["ref_counts"] = reference.counts.tolist()
        out[case] = result
    return out


def run_state(rank: int, world: int) -> dict[str, Any]:
    """Plain DDP against data_parallel; sync_every; add_items; a rank that added alone."""
    out: dict[str, Any] = {}
    # Plain DDP (broadcast_buffers=True): rank 0's counts overwrite the others' each forward.
    layer: Any = build("synthetic")
    model = DistributedDataParallel(layer)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    for step in range(2):
        train_step(model, layer, opt, *batch(step, rank))
    out["plain_total"] = int(layer.counts.sum())
    out["plain_replicas"] = gathered_max_diff([layer.counts])
    # sync_every=2: equal after an even number of training forwards.
    layer = build("synthetic")
    model = sd.data_parallel(layer, sync_every=2)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    for step in range(2):
        train_step(model, layer, opt, *batch(step, rank))
    out["every2_total"] = int(layer.counts.sum())
    out["every2_replicas"] = gathered_max_diff([layer.counts])
    # add_items on every rank, with different random states: equal afterwards.
    layer = build("synthetic_hash")
    model = sd.data_parallel(layer)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    train_step(model, layer, opt, *batch(0, rank))
    del model, opt  # the old wrapper goes: the layer's tables grow
    torch.manual_seed(1000 + rank)  # a hash base's grown importance rows are random draws
    new_ids = sd.add_items(layer, torch.rand(2, 3, generator=torch.Generator().manual_seed(3)))
    out["new_ids"] = new_ids.tolist()
    out["added_replicas"] = gathered_max_diff(state_tensors(layer))
    out["cold_after_add"] = layer.eval().is_cold(new_ids).tolist()
    layer.train()
    model = sd.data_parallel(layer)  # new parameters: wrap again, new optimizer
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    ids = torch.tensor([int(new_ids[0])] * (rank + 1) + [1, 2])  # new id: 1 + 2 sightings
    train_step(model, layer, opt, ids, torch.randn(len(ids), D, generator=torch.Generator()))
    out["trained_replicas"] = gathered_max_diff(state_tensors(layer))
    out["new_counts"] = layer.counts[new_ids].tolist()
    # A fused table that one rank's batch never reaches (all padding there): that rank
    # still applies the other's update, and the replicas stay equal (no hang).
    torch.manual_seed(0)
    table = se.Embedding(V, D, padding_idx=0, fused_optimizer=RowWiseAdagrad(lr=0.1))
    before = table.weight.detach().clone()
    model = sd.data_parallel(nn.Sequential(table, nn.Linear(D, D)))
    ids = torch.zeros(B, dtype=torch.long) if rank == 1 else torch.arange(1, B + 1)
    model(ids).pow(2).mean().backward()
    out["padding_replicas"] = gathered_max_diff(state_tensors(table))
    out["padding_moved"] = sorted(
        int(i) for i in (table.weight.detach() != before).any(1).nonzero().flatten()
    )
    # The wrapper's life: a refused DDP option changes nothing; a copy of the module and
    # the module after its wrapper is dropped update their fused tables themselves.
    torch.manual_seed(0)
    table = se.Embedding(V, D, fused_optimizer=RowWiseAdagrad(lr=0.1))
    with contextlib.suppress(TypeError):
        sd.data_parallel(nn.Sequential(table, nn.Linear(D, D)), no_such_option=1)
    out["refused_interceptor"] = table.fused.interceptor is None
    model = sd.data_parallel(nn.Sequential(table, nn.Linear(D, D)))
    copied = copy.deepcopy(model.module)
    before = copied[0].weight.detach().clone()
    copied(torch.tensor([1, 2])).sum().backward()
    out["copy_trains"] = not torch.equal(copied[0].weight.detach(), before)
    del model
    gc.collect()
    before = table.weight.detach().clone()
    table(torch.tensor([1, 2])).sum().backward()
    out["dropped_trains"] = not torch.equal(table.weight.detach(), before)
    # An output backward cannot be traced through is a clear error.
    odd = sd.data_parallel(_Boxed(se.Embedding(V, D, fused_optimizer=RowWiseAdagrad(lr=0.1))))
    try:
        odd(torch.tensor([1]))
        out["boxed"] = None
    except ConfigError as exc:
        out["boxed"] = str(exc)
    # One rank adds items alone: sync_state refuses, on every rank, naming both.
    layer = build("synthetic")
    sd.sync_state(layer)
    if rank == 1:
        layer.add_items(torch.rand(1, 3))
    try:
        sd.sync_state(layer)
        out["mismatch"] = None
    except ConfigError as exc:
        out["mismatch"] = str(exc)
    try:
        sd.data_parallel(build("full"), broadcast_buffers=True)
        out["broadcast"] = None
    except ConfigError as exc:
        out["broadcast"] = str(exc)
    return out


BASE_CASES = sorted(n for n in BASES if n != "full")
CASES = [
    "full",
    "full_sparse",
    *BASE_CASES,
    # Not "mixed_sparse": a batch that misses one of its tables leaves a sparse gradient
    # undefined, which torch's DDP refuses ("Expected sparse gradient to be defined").
    *[f"{n}_sparse" for n in SPARSE_BASES if n != "mixed"],
    # Fused tables: their updates are averaged at the end of backward (a mixed base's
    # batch may miss one of its tables on one rank and not on the other).
    *[f"{n}_fused" for n in ("full", *BASE_CASES) if n != "dhe"],  # dhe: no table to fuse
    "synthetic",
    "synthetic_autoencoder",
    "synthetic_hash",
    "synthetic_dropout",
    "synthetic_fused",
    "synthetic_sparse",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return spawn(run_cases, tmp_path_factory.mktemp("ddp_cases"), CASES)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return spawn(run_state, tmp_path_factory.mktemp("ddp_state"))  # type: ignore[no-any-return]


@pytest.mark.parametrize("case", CASES)
def test_replicas_equal_and_match_one_process(trained: dict[str, Any], case: str) -> None:
    result = trained[case]
    assert result["replicas"] == 0.0  # parameters and buffers, bit for bit
    if case != "synthetic_dropout":  # its random r = 1 positions differ from one process's
        assert result["single"] < 1e-5


def test_synthetic_counts_are_the_global_counts(trained: dict[str, Any]) -> None:
    for case in ("synthetic", "synthetic_autoencoder", "synthetic_hash"):
        result = trained[case]
        assert result["counts"] == result["ref_counts"]
        assert sum(result["counts"]) == STEPS * 2 * B


def test_plain_ddp_loses_counts_and_data_parallel_keeps_them(state: dict[str, Any]) -> None:
    # The reason for sync_state: DDP's buffer broadcast keeps rank 0's sightings only.
    assert state["plain_total"] < 2 * 2 * B
    assert state["every2_total"] == 2 * 2 * B
    assert state["every2_replicas"] == 0.0


def test_add_items_under_ddp(state: dict[str, Any]) -> None:
    assert state["new_ids"] == [V, V + 1]
    assert state["added_replicas"] == 0.0  # rank 0's random importance rows everywhere
    assert state["cold_after_add"] == [True, True]
    assert state["trained_replicas"] == 0.0
    assert state["new_counts"] == [1 + 2, 0]  # rank 0 saw it once, rank 1 twice


def test_ranks_that_disagree_are_named(state: dict[str, Any]) -> None:
    message = state["mismatch"]
    assert message is not None and "same num_embeddings" in message
    assert f"rank 0: 1 layer(s) (num_embeddings={V}," in message
    assert f"rank 1: 1 layer(s) (num_embeddings={V + 1}," in message
    assert "broadcast_buffers=True" in state["broadcast"]


def test_sync_state_needs_a_process_group() -> None:
    with pytest.raises(ConfigError, match=r"needs torch\.distributed initialised"):
        sd.sync_state(build("synthetic"))
    with pytest.raises(
        ConfigError, match="add_items takes a SyntheticEmbeddingLayer; got Embedding"
    ):
        sd.add_items(build("full"), num_items=1)


def test_fused_table_that_one_rank_never_reaches(state: dict[str, Any]) -> None:
    assert state["padding_replicas"] == 0.0
    assert state["padding_moved"] == list(range(1, B + 1))  # rank 0's rows, on both ranks


def test_the_wrapper_life_leaves_tables_that_train(state: dict[str, Any]) -> None:
    assert state["refused_interceptor"]  # DDP refused an option: the table is as it was
    assert state["copy_trains"]  # deepcopy of the module: its own updates
    assert state["dropped_trains"]  # the wrapper dropped: the table trains by itself again
    assert state["boxed"] == (
        "data_parallel: the model returned a _Box; fused tables apply their updates at the "
        "end of the backward that reaches the output, so it must be a tensor, or a list, "
        "tuple or dict of tensors."
    )
