"""SyntheticEmbeddingLayer: count-aware rates, distillation toward trained rows, default
stand-alone fraction, compact per-id state, growth under an optimizer (issues 13 and 14)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from support import synthetic

import synthembed
from synthembed.errors import ConfigError
from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer

V, D, S = 10, 4, 3


def _layer(**kwargs: object) -> SyntheticEmbeddingLayer:
    torch.manual_seed(0)
    kwargs.setdefault("train_synthetic_fraction", 0.0)
    kwargs.setdefault("technique", "combination")  # no loss of its own beside distillation
    return SyntheticEmbeddingLayer(V, D, side_features=torch.rand(V, S), **kwargs).double()


# ---------------------------------------------------------------------- count-aware rate
def test_count_rate_follows_training_counts() -> None:
    layer = _layer(adaptive="count", synthesis_rate=0.5)  # k = 10: rate 0.5 at 10 trainings
    assert F.softplus(layer.rate_k).item() == pytest.approx(10.0)
    layer(torch.tensor([1, 2, 2, 2])).sum().backward()  # counts 0 before it: r = 1, no gradient
    assert layer.rate_k.grad is not None and layer.rate_k.grad.item() == 0.0
    layer(torch.tensor([2]), synthesis_rate=None).sum().backward()
    assert layer.rate_k.grad.abs().item() > 0  # k is learned
    layer.counts[2] = 3  # undo the extra training forward's count
    ids = torch.tensor([0, 1, 2])
    expected = torch.tensor([1.0, 10 / 11, 10 / 13], dtype=torch.float64)
    torch.testing.assert_close(layer.rates(ids), expected)
    layer.eval()
    with torch.no_grad():
        want = torch.lerp(layer.base(ids), synthetic(layer, ids), expected.unsqueeze(-1))
        torch.testing.assert_close(layer(ids), want)
    assert layer.current_rate().item() == pytest.approx(0.5)  # the rate at 10 trainings


def test_count_rate_with_schedule_and_per_call_rate() -> None:
    layer = _layer(adaptive="count", synthesis_rate=0.5, schedule=("linear", 4))
    layer(torch.tensor([1]))  # step 1 of 4: a quarter of the rate
    torch.testing.assert_close(
        layer.rates(torch.tensor([0, 1])),
        torch.tensor([0.25, 0.25 * 10 / 11], dtype=torch.float64),
    )
    ids = torch.tensor([1, 3])
    layer.eval()
    with torch.no_grad():  # a per-call rate overrides the per-id rates
        torch.testing.assert_close(layer(ids, synthesis_rate=0.0), layer.base(ids))


def test_count_rate_saves_and_loads(tmp_path) -> None:
    layer = _layer(adaptive="count", synthesis_rate=0.3)
    with torch.no_grad():
        layer.rate_k.fill_(1.5)
    layer(torch.tensor([4, 4, 5])).sum().backward()
    synthembed.save(layer, tmp_path / "layer")
    loaded = synthembed.load(tmp_path / "layer")
    assert loaded.config.adaptive == "count" and loaded.rate_k.item() == 1.5
    assert loaded.counts.dtype == torch.int32 and loaded.counts[4:6].tolist() == [2, 1]
    ids = torch.arange(V)
    assert torch.equal(loaded.eval()(ids), layer.eval()(ids))
    clone = copy.deepcopy(layer)  # after a training step: nothing stale on the module
    assert torch.equal(clone(ids), layer(ids))


def test_bad_adaptive_values_name_the_choices() -> None:
    with pytest.raises(
        ConfigError, match=r"'adaptive'.*must be False, True or 'count'. Got 'counts'"
    ):
        SyntheticEmbeddingLayer(V, D, adaptive="counts")
    with pytest.raises(ConfigError, match=r"adaptive='count'.*open range \(0, 1\). Got 1.0"):
        SyntheticEmbeddingLayer(V, D, adaptive="count", synthesis_rate=1.0)
    with pytest.raises(ConfigError, match="distill_min_count"):
        SyntheticEmbeddingLayer(V, D, distill_min_count=0)


# ---------------------------------------------------------------------- distillation
def test_distill_loss_pulls_stand_alone_vectors_of_trained_ids() -> None:
    layer = _layer(train_synthetic_fraction=1.0, distill_weight=2.0, distill_min_count=2)
    assert layer.get_config()["distill_weight"] == 2.0
    layer(torch.tensor([1, 1, 2]))  # counts before this forward: all 0, nothing to distil
    assert layer.get_loss().item() == 0.0
    layer(torch.tensor([1, 2, 3, 1]))  # id 1 trained twice before: its two positions count
    loss = layer.get_loss()
    one = torch.tensor([1])
    with torch.no_grad():
        gap = 1 - F.cosine_similarity(synthetic(layer, one, hidden=True), layer.base(one))
    torch.testing.assert_close(loss, 2.0 * gap[0])
    loss.backward()
    assert layer.weight.grad is None  # the rows are targets, not trained by it
    layer.eval()(torch.tensor([1]))
    assert layer.get_loss().item() == 0.0  # eval forwards add nothing


# ---------------------------------------------------------------------- default fraction
def test_default_technique_depends_on_side_features() -> None:
    assert SyntheticEmbeddingLayer(V, D, side_features=torch.rand(V, S)).technique == "autoencoder"
    assert SyntheticEmbeddingLayer(V, D).technique == "combination"
    assert SyntheticEmbeddingLayer(V, D, hidden_dims=(8,)).technique == "combination"
    tower = SyntheticEmbeddingLayer(
        V, D, side_features=torch.rand(V, S), technique="combination", hidden_dims=(8,)
    )
    assert tower.synthesizer.hidden_dims == (8,)
    with pytest.raises(
        ConfigError,
        match=r"SyntheticEmbeddingLayer got option\(s\) \['hidden_dims', 'norm'\], which the "
        r"default technique with side features, 'autoencoder', does not take \(it accepts "
        r"\['align', 'align_weight', 'bottleneck'\]\)\. Name the technique they belong to, "
        r"e\.g\. technique='combination'",
    ):
        SyntheticEmbeddingLayer(V, D, side_features=torch.rand(V, S), hidden_dims=(8,), norm=True)
    with pytest.raises(ConfigError, match=r"Unknown option\(s\) \['sparse'\] for synthesis "):
        SyntheticEmbeddingLayer(V, D, side_features=torch.rand(V, S), sparse=True)


def test_default_train_synthetic_fraction_depends_on_side_features() -> None:
    with_side = SyntheticEmbeddingLayer(V, D, side_features=torch.rand(V, S))
    assert with_side.config.train_synthetic_fraction == 0.3
    assert SyntheticEmbeddingLayer(V, D).config.train_synthetic_fraction == 0.0


# ---------------------------------------------------------------------- compact state
def test_layer_without_cold_start_needs_keeps_no_per_id_state() -> None:
    layer = SyntheticEmbeddingLayer(V, D)  # no side features, cold_threshold 0
    assert layer.counts is None and layer.added is None
    assert not {"counts", "added"} & set(layer.state_dict())
    layer(torch.tensor([1, 1])).sum().backward()
    assert layer.is_cold(torch.tensor([1])).tolist() == [False]
    layer.configure_synthesis(cold_threshold=1)  # counting starts now
    assert layer.counts.dtype == torch.int32 and int(layer.counts.sum()) == 0
    layer(torch.tensor([1, 1]))
    assert layer.counts[1].item() == 2
    big = SyntheticEmbeddingLayer(10**8, 8, base="hash", synthesis_rate=0.0, device="meta")
    assert big.counts is None and big.added is None


def test_side_features_keep_compact_counts_and_add_items_flags() -> None:
    layer = _layer()
    assert layer.counts.dtype == torch.int32 and layer.added is None
    new = layer.add_items(torch.rand(2, S, dtype=torch.float64))
    assert layer.added.tolist() == [False] * V + [True, True]
    assert layer.counts.tolist() == [0] * (V + 2) and layer.is_cold(new).all()


def test_old_state_dicts_with_int64_counts_and_added_flags_load() -> None:
    layer = _layer()
    layer(torch.tensor([3, 3]))
    old = {k: v.clone() for k, v in layer.state_dict().items()}
    old["counts"] = old["counts"].long()  # as saved before the counts were compact
    old["added"] = torch.zeros(V, dtype=torch.bool)
    fresh = _layer()
    fresh.load_state_dict(old)
    assert fresh.counts.dtype == torch.int32 and fresh.counts[3].item() == 2
    assert fresh.added is None
    # Flags of added ids are kept; a state without counts loads as "none trained".
    old["added"] = torch.tensor([False] * (V - 1) + [True])
    fresh = _layer()
    fresh.load_state_dict(old)
    assert fresh.added.tolist() == [False] * (V - 1) + [True] and fresh.is_cold(torch.tensor([9]))
    plain = SyntheticEmbeddingLayer(V, D, cold_threshold=1)
    counted = dict(SyntheticEmbeddingLayer(V, D).state_dict())
    plain.load_state_dict(counted)
    assert plain.counts.tolist() == [0] * V


def test_counts_kept_after_configuration_stops_needing_them_survive_save(tmp_path) -> None:
    layer = SyntheticEmbeddingLayer(V, D, cold_threshold=1)
    layer(torch.tensor([2, 2, 7]))
    layer.configure_synthesis(cold_threshold=0)
    synthembed.save(layer, tmp_path / "layer")
    loaded = synthembed.load(tmp_path / "layer")
    assert torch.equal(loaded.counts, layer.counts)


# ---------------------------------------------------------------------- growth and optimizers
def test_optimizer_built_before_add_items_keeps_training_the_table() -> None:
    # Needs the base to grow in place (Embedding.grow keeping its Parameter, issue 13
    # item 1); the layer itself replaces none of its parameters when it grows.
    layer = _layer()
    weight, own = layer.weight, [layer.rate_logit, layer.rate_k]
    opt = torch.optim.SGD(layer.parameters(), lr=1.0)
    new = layer.add_items(torch.rand(2, S, dtype=torch.float64))
    assert layer.weight is weight and [layer.rate_logit, layer.rate_k] == own
    before = layer.weight.detach().clone()
    layer(torch.cat([torch.tensor([1]), new])).sum().backward()
    opt.step()
    assert not torch.equal(layer.weight[1], before[1])
    assert not torch.equal(layer.weight[V], before[V])


def test_fused_optimizer_is_handed_to_the_base() -> None:
    from synthembed.layers.bases.registry import BASES, register_base
    from synthembed.optim import RowWiseAdagrad

    layer = SyntheticEmbeddingLayer(V, D, fused_optimizer=RowWiseAdagrad(lr=0.5))
    assert layer.base.fused_optimizer is not None
    before = layer.weight.detach().clone()
    layer(torch.tensor([1, 1, 3]), synthesis_rate=0.0).sum().backward()
    changed = (layer.weight.detach() != before).any(1)
    assert changed.tolist() == [i in (1, 3) for i in range(V)]  # updated inside backward

    @register_base("test_unfused")
    class Unfused(torch.nn.Embedding):
        pass

    try:
        with pytest.raises(ConfigError, match=r"the 'test_unfused' base does not\."):
            SyntheticEmbeddingLayer(
                V, D, base="test_unfused", fused_optimizer=RowWiseAdagrad(lr=0.5)
            )
    finally:
        del BASES["test_unfused"]
