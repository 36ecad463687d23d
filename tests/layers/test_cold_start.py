"""synthembed.layers.cold_start: cold ids, hidden rows in training, add_items, ids past the table."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from support import synthetic

from synthembed.errors import (
    ConfigError,
    InvalidIndexError,
    NonFiniteError,
    ShapeError,
)
from synthembed.layers.bases import BASES
from synthembed.layers.synthetic_embedding import (
    SyntheticEmbeddingLayer,
)

V, D, F = 30, 8, 4


def test_cold_ids_are_fully_synthetic_in_eval_mode() -> None:
    side = torch.rand(V, F)
    layer = SyntheticEmbeddingLayer(
        V, D, synthesis_rate=0.2, side_features=side, cold_threshold=2, train_synthetic_fraction=0
    )
    layer(torch.tensor([1, 1, 2]))  # id 1 seen twice (warm), id 2 once (cold)
    assert layer.counts[:3].tolist() == [0, 2, 1]
    layer.eval()
    ids = torch.tensor([1, 2, 0])
    out = layer(ids)
    assert layer.counts[:3].tolist() == [0, 2, 1]  # eval forwards are not counted
    torch.testing.assert_close(
        out[0], 0.8 * layer.base(ids[:1])[0] + 0.2 * synthetic(layer, ids[:1])[0]
    )
    torch.testing.assert_close(out[1:], synthetic(layer, ids[1:], hidden=True))
    assert layer.is_cold(ids).tolist() == [False, True, True]
    # In training mode cold ids are blended like the rest.
    layer.train()
    torch.testing.assert_close(
        layer(ids[1:]), 0.8 * layer.base(ids[1:]) + 0.2 * synthetic(layer, ids[1:])
    )


def test_train_synthetic_fraction_hides_rows_in_training_only() -> None:
    layer = SyntheticEmbeddingLayer(
        V, D, synthesis_rate=0.2, side_features=torch.rand(V, F), train_synthetic_fraction=1.0
    )
    ids = torch.tensor([3, 4, 5])
    torch.testing.assert_close(layer(ids), synthetic(layer, ids, hidden=True))
    layer.eval()
    torch.testing.assert_close(layer(ids), 0.8 * layer.base(ids) + 0.2 * synthetic(layer, ids))


def test_add_items_validation_leaves_layer_untouched() -> None:
    layer = SyntheticEmbeddingLayer(V, D, side_features=torch.rand(V, F))
    with pytest.raises(ConfigError, match=r"needs the new items' side features.*\(n, 4\)"):
        layer.add_items(num_items=2)
    with pytest.raises(ShapeError, match=r"shape \(n, 4\); got \(2, 3\)"):
        layer.add_items(torch.rand(2, 3))
    with pytest.raises(NonFiniteError, match="NaN"):
        layer.add_items(torch.full((1, F), float("nan")))
    assert layer.input_dim == V and layer.side_features.shape == (V, F)
    plain = SyntheticEmbeddingLayer(V, D)
    with pytest.raises(ConfigError, match="built without side features; pass num_items"):
        plain.add_items(torch.rand(2, F))
    assert plain.add_items(num_items=0).numel() == 0
    new = plain.add_items(num_items=2)
    assert new.tolist() == [V, V + 1]
    # New rows start at the mean of the existing rows.
    torch.testing.assert_close(plain.weight[V], plain.weight[:V].mean(0))
    plain.eval()
    out = plain(new)
    torch.testing.assert_close(out[0], out[1])  # nothing distinguishes featureless new ids


def test_load_state_dict_restores_cold_flags(tmp_path) -> None:
    layer = SyntheticEmbeddingLayer(V, D, side_features=torch.rand(V, F))
    new = layer.add_items(torch.rand(2, F))
    fresh = SyntheticEmbeddingLayer(V + 2, D, side_features=torch.zeros(V + 2, F))
    fresh.load_state_dict(layer.state_dict())
    fresh.eval()
    layer.eval()
    assert torch.equal(fresh(new), layer(new))
    assert fresh.is_cold(new).all()


def test_add_items_warns_when_synthesizer_never_trained_alone() -> None:
    layer = SyntheticEmbeddingLayer(
        V, D, side_features=torch.rand(V, F), train_synthetic_fraction=0
    )
    layer.add_items(torch.rand(1, F))  # untrained layer: nothing to warn about
    layer(torch.tensor([1, 2]))
    with pytest.warns(UserWarning, match="train_synthetic_fraction=0"):
        layer.add_items(torch.rand(1, F))
    # Without side features there is nothing to stand alone on: 0 is the default, no warning.
    plain = SyntheticEmbeddingLayer(V, D)
    assert plain.config.train_synthetic_fraction == 0.0
    plain(torch.tensor([1, 2]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain.add_items(num_items=1)


BIG = torch.tensor([3, 2**40, 2**63 - 1, 2**40])


@pytest.mark.parametrize(
    "base", sorted(b for b in BASES if getattr(BASES[b], "accepts_any_id", False))
)
def test_hashing_base_takes_any_nonnegative_64bit_id(base: str) -> None:
    torch.manual_seed(0)
    layer = SyntheticEmbeddingLayer(V, D, synthesis_rate=0.3, base=base, cold_threshold=1).double()
    twin = copy.deepcopy(layer)
    out = layer(BIG)
    assert out.shape == (4, D) and torch.isfinite(out).all()
    torch.testing.assert_close(out[1], out[3])  # the same id, the same vector
    rows = layer.base(BIG)
    torch.testing.assert_close(out, 0.7 * rows + 0.3 * synthetic(layer, BIG))
    # Only ids inside [0, input_dim) are counted; layer.backward equals out.backward.
    assert int(layer.counts.sum()) == 1 and int(layer.counts[3]) == 1
    grad = torch.randn(4, D, dtype=torch.float64)
    out.backward(grad)
    out_twin = twin(BIG)
    twin.backward(grad)
    del out_twin
    for (name, p), q in zip(layer.named_parameters(), twin.parameters()):
        if p.grad is not None:
            torch.testing.assert_close(q.grad, p.grad, atol=1e-6, rtol=1e-6, msg=name)
    # Eval mode: ids past the counts table were never seen, so they are cold.
    layer.configure_synthesis(cold_threshold=1).eval()
    assert layer.is_cold(BIG).tolist() == [False, True, True, True]
    hidden = synthetic(layer, BIG[1:], hidden=True)
    torch.testing.assert_close(layer(BIG)[1:], hidden)
    with pytest.raises(InvalidIndexError, match=r"1 negative id\(s\) \(smallest offending id -5\)"):
        layer(torch.tensor([1, -5]))


def test_ids_past_input_dim_that_need_side_features_raise_before_counting() -> None:
    side = torch.rand(V, F)
    layer = SyntheticEmbeddingLayer(
        V, D, synthesis_rate=0.3, base="hash", side_features=side, train_synthetic_fraction=0
    )
    with pytest.raises(
        InvalidIndexError,
        match=r"3 id\(s\) at or beyond input_dim=30 \(largest 9223372036854775807\).*'hash' base "
        r"takes any 64-bit id, but side features exist only for ids in \[0, 29\]",
    ):
        layer(BIG)
    assert int(layer.counts.sum()) == 0 and int(layer.step) == 0
    # Served from the base alone (rate 0), they need no side features.
    torch.testing.assert_close(layer(BIG, synthesis_rate=0.0), layer.base(BIG))
    graph = torch.rand(V, V)
    manifold = SyntheticEmbeddingLayer(V, D, base="hash", technique="manifold", affinity=graph)
    with pytest.raises(InvalidIndexError, match="'manifold' technique keeps per-id state"):
        manifold(BIG)
    full = SyntheticEmbeddingLayer(V, D, base="full")
    with pytest.raises(InvalidIndexError, match=r"outside the valid range \[0, 29\]"):
        full(BIG)
