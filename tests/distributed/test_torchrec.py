"""synthembed.distributed.torchrec: tables to TorchRec collections and back, and a synthetic
layer whose base is sharded by DistributedModelParallel (two gloo processes) training as
one process does."""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Mapping
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from spawn_support import spawn
from torch import nn

import synthembed as se
from synthembed.errors import ConfigError
from synthembed.layers.bases import HashEmbedding, QREmbedding, make_base

if importlib.util.find_spec("torchrec") is None or importlib.util.find_spec("fbgemm_gpu") is None:
    pytest.skip(
        "torchrec / fbgemm-gpu-cpu are not installed (the 'distributed' extra; see "
        "docs/guides/distributed.md for the install commands)",
        allow_module_level=True,
    )

import synthembed.distributed as sd

pytestmark = pytest.mark.xdist_group("distributed")  # one worker runs them: 2 processes each

V, D, B, STEPS, LR = 40, 4, 6, 3, 0.1
IDS = torch.tensor([[0, 5, 39], [7, 7, 12]])


def tables() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {
        "full": se.Embedding(V, D),
        "full_padded": se.Embedding(V, D, padding_idx=0),
        "hash": HashEmbedding(V, D, num_buckets=9),
        "qr": QREmbedding(V, D),
        "qr_concat3": QREmbedding(V, D, num_partitions=3, operation="concat"),
        "qr_sum": QREmbedding(V, D, operation="sum"),
    }


@pytest.mark.parametrize("name", ["full", "full_padded", "hash", "qr", "qr_concat3", "qr_sum"])
def test_torchrec_base_equals_the_base_and_converts_back(name: str) -> None:
    base = tables()[name]
    wrapped = sd.TorchRecBase(base, name="movies")
    torch.testing.assert_close(wrapped(IDS), base(IDS), rtol=0, atol=1e-6)
    big = torch.tensor([2**40, 2**62 + 3])  # hashing bases take any 64-bit id
    if base.accepts_any_id if hasattr(base, "accepts_any_id") else False:
        torch.testing.assert_close(wrapped(big), base(big), rtol=0, atol=1e-6)
    back = wrapped.to_base()
    assert type(back) is type(base)
    assert torch.equal(back(IDS), base(IDS))


@pytest.mark.parametrize("name", ["full", "qr"])
def test_embedding_collection_round_trip(name: str) -> None:
    base: Any = tables()[name]
    collection = sd.to_torchrec(base, name="movies")
    assert type(collection).__name__ == "EmbeddingCollection"
    fresh = type(base).from_config(base.get_config())  # other weights, same layout
    back = sd.from_torchrec(collection, fresh, name="movies")
    assert torch.equal(back(IDS), base(IDS))
    assert not torch.equal(fresh(IDS), base(IDS))  # `like` is left alone


def test_embedding_bag_collection_pools_as_the_layer() -> None:
    from torchrec import KeyedJaggedTensor

    torch.manual_seed(0)
    bag = se.Embedding(V, D, mode="mean")
    collection = sd.to_torchrec(bag, name="movies", pooled=True)
    assert type(collection).__name__ == "EmbeddingBagCollection"
    kjt = KeyedJaggedTensor(keys=["movies"], values=IDS.reshape(-1), lengths=torch.tensor([3, 3]))
    pooled = collection(kjt)["movies"]  # (2, D)
    torch.testing.assert_close(pooled, bag(IDS), rtol=0, atol=1e-6)
    hashed = HashEmbedding(V, D, num_buckets=9)
    names = list(sd.to_torchrec(hashed, pooled=True).embedding_bags)
    assert names == ["table_pool", "table_importance"]
    back = sd.from_torchrec(sd.to_torchrec(hashed, pooled=True), HashEmbedding(V, D, num_buckets=9))
    assert torch.equal(back(IDS), hashed(IDS))


def test_conversion_errors_name_the_problem() -> None:
    with pytest.raises(
        ConfigError, match=r"tables of one width; this HashEmbedding has \{'table_pool': 4"
    ):
        sd.to_torchrec(HashEmbedding(V, D, num_buckets=9))
    with pytest.raises(ConfigError, match="converts Embedding, HashEmbedding and QREmbedding"):
        sd.to_torchrec(make_base("dhe", V, D))
    with pytest.raises(ConfigError, match="mode='max'"):
        sd.to_torchrec(se.Embedding(V, D, mode="max"), pooled=True)
    collection = sd.to_torchrec(se.Embedding(V, D), name="movies")
    with pytest.raises(ConfigError, match=r"table 'other' of shape \(40, 4\) is needed"):
        sd.from_torchrec(collection, se.Embedding(V, D), name="other")
    with pytest.raises(ConfigError, match="cannot grow its tables once they are TorchRec's"):
        sd.TorchRecBase(se.Embedding(V, D)).grow(2)
    qr = sd.TorchRecBase(QREmbedding(V, D))
    assert qr.grow(2).tolist() == [V, V + 1] and qr.num_embeddings == V + 2


# ------------------------------------------------------------------ sharded training
class Tower(nn.Module):
    def __init__(self, embedding: nn.Module) -> None:
        super().__init__()
        self.embedding = embedding
        self.head = nn.Linear(D, D)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedding(ids))  # type: ignore[no-any-return]


def build(model: str, base: str) -> Tower:
    torch.manual_seed(0)
    if model == "synthetic":
        side = torch.rand(V, 3, generator=torch.Generator().manual_seed(7))
        layer: nn.Module = se.SyntheticEmbeddingLayer(
            V, D, side_features=side, base=base, synthesis_rate=0.3,
            train_synthetic_fraction=0.0, cold_threshold=2,
        )  # fmt: skip
    else:
        layer = make_base(base, V, D)
    return Tower(layer)


def batch(step: int, rank: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 + step)
    ids = torch.randint(0, V, (2 * B,), generator=g)
    target = torch.randn(2 * B, D, generator=g)
    if rank is None:
        return ids, target
    return ids[rank * B : (rank + 1) * B], target[rank * B : (rank + 1) * B]


def run_sharded(rank: int, world: int, cases: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for case in cases:
        model_kind, base, sharding = case.split("-")
        model = build(model_kind, base)
        reference = copy.deepcopy(model)
        initial = copy.deepcopy(model.embedding)
        if isinstance(model.embedding, se.SyntheticEmbeddingLayer):
            model.embedding.base = sd.TorchRecBase(model.embedding.base, name="movies")
        else:
            model.embedding = sd.TorchRecBase(model.embedding, name="movies")
        dmp = sd.shard(model, learning_rate=LR, sharding=sharding)
        opt = torch.optim.SGD(sd.replicated_parameters(dmp), lr=LR)
        sd.sync_state(dmp)
        for step in range(STEPS):
            ids, target = batch(step, rank)
            loss = F.mse_loss(dmp(ids), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sd.sync_state(dmp)
        wrapped = next(m for m in dmp.modules() if isinstance(m, sd.TorchRecBase))
        plan = {n: type(m).__name__ for n, m in wrapped.collections.items()}
        table = wrapped.to_base()  # a collective: every rank
        if rank != 0:
            continue
        ref_opt = torch.optim.SGD(reference.parameters(), lr=LR)
        for step in range(STEPS):
            ids, target = batch(step, None)
            loss = F.mse_loss(reference(ids), target)
            ref_opt.zero_grad()
            loss.backward()
            ref_opt.step()
        ref_layer = reference.embedding
        ref_table = (
            ref_layer.base if isinstance(ref_layer, se.SyntheticEmbeddingLayer) else ref_layer
        )
        diffs = {"table": _max_diff(table.state_dict(), ref_table.state_dict())}
        start = initial.base if isinstance(initial, se.SyntheticEmbeddingLayer) else initial
        moved = _max_diff(table.state_dict(), start.state_dict())
        mine = dict(model.named_parameters())
        others = {n: p for n, p in reference.named_parameters() if n in mine and "base" not in n}
        diffs["replicated"] = _max_diff({n: mine[n] for n in others}, others)
        layer = model.embedding
        if isinstance(layer, se.SyntheticEmbeddingLayer) and layer.counts is not None:
            diffs["counts"] = float((layer.counts - ref_layer.counts).abs().max())  # type: ignore[operator]
        out[case] = {
            "diffs": diffs,
            "moved": moved,
            "plan": plan,
            "replicated_names": sorted(others),
        }
    return out


def _max_diff(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    assert sorted(a) == sorted(b), (sorted(a), sorted(b))
    return max(float((a[k].detach().double() - b[k].detach().double()).abs().max()) for k in a)


CASES = [
    "tower-full-table_wise",
    "tower-full-row_wise",
    "tower-qr-table_wise",
    "tower-hash-row_wise",
    "synthetic-full-table_wise",
    "synthetic-full-row_wise",
    "synthetic-qr-row_wise",
    "synthetic-hash-table_wise",
]


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return spawn(run_sharded, tmp_path_factory.mktemp("dmp"), CASES)  # type: ignore[no-any-return]


@pytest.mark.parametrize("case", CASES)
def test_sharded_training_equals_one_process(sharded: dict[str, Any], case: str) -> None:
    result = sharded[case]
    assert set(result["plan"].values()) == {"ShardedEmbeddingCollection"}  # DMP sharded them
    assert result["replicated_names"]  # the head (and the synthesizer) were compared too
    assert result["moved"] > 1e-3  # the sharded tables trained
    for what, diff in result["diffs"].items():
        assert diff < 1e-5, (what, diff)
    if case.startswith("synthetic"):
        assert result["diffs"]["counts"] == 0.0
        assert any("synthesizer" in n for n in result["replicated_names"])


def test_table_names_that_torchrec_cannot_hold() -> None:
    with pytest.raises(
        ConfigError, match=r"not an attribute of torch\.nn\.ModuleDict .* Got 'items' instead"
    ):
        sd.to_torchrec(se.Embedding(V, D), name="items")
