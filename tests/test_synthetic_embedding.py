"""SyntheticEmbeddingLayer: blend modes, cold ids, soft input, configuration, errors, compile."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import torch

from synthembed.errors import (
    ConfigError,
    InvalidIndexError,
    NonFiniteError,
    NotFittedError,
    ShapeError,
)
from synthembed.io import load, save
from synthembed.layers.bases import BASES
from synthembed.layers.embedding import Embedding
from synthembed.layers.synthetic_embedding import (
    TECHNIQUES,
    SynthesisConfig,
    SyntheticEmbeddingLayer,
    register_technique,
)

V, D, F = 30, 8, 4


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def synthetic(
    layer: SyntheticEmbeddingLayer, ids: torch.Tensor, hidden: bool = False
) -> torch.Tensor:
    """The synthesizer's output for ids (base rows hidden from it if ``hidden``)."""
    side = None if layer.side_features is None else layer.side_features[ids]
    visible = torch.zeros(ids.shape, dtype=torch.bool) if hidden else None
    return layer.synthesizer(ids, layer.base(ids), side, visible)


# ---------------------------------------------------------------------- the documented contract
def test_founding_usage_and_exports() -> None:
    layer = SyntheticEmbeddingLayer(input_dim=1000, embedding_dim=128, synthesis_rate=0.1)
    out = layer.forward(torch.randint(0, 1000, (1, 10)))
    assert out.shape == (1, 10, 128) and out.dtype == torch.float32
    positional = SyntheticEmbeddingLayer(50, 16)
    assert positional.config == SynthesisConfig()  # rate 0.1, combination
    assert {"combination", "autoencoder", "gan", "manifold"} <= set(TECHNIQUES)
    assert callable(register_technique)


def test_rate_zero_is_exactly_embedding() -> None:
    torch.manual_seed(3)
    layer = SyntheticEmbeddingLayer(V, D, 0.0, padding_idx=2)
    torch.manual_seed(3)
    plain = Embedding(V, D, padding_idx=2)
    assert torch.equal(layer.weight, plain.weight)
    ids = torch.randint(0, V, (4, 5))
    ids[0, 0] = 2
    out, ref = layer(ids), plain(ids)
    assert torch.equal(out, ref)
    grad = torch.randn(4, 5, D)
    out.backward(grad)
    ref.backward(grad)
    assert torch.equal(layer.weight.grad, plain.weight.grad)
    assert all(p.grad is None for p in layer.synthesizer.parameters())  # synthesizer skipped
    assert layer.get_loss().item() == 0.0


def test_per_call_rate_float_and_tensor() -> None:
    layer = SyntheticEmbeddingLayer(V, D, 0.1).eval()
    ids = torch.tensor([[1, 2, 3]])
    rows, syn = layer.base(ids), synthetic(layer, ids)
    torch.testing.assert_close(layer(ids), 0.9 * rows + 0.1 * syn)
    torch.testing.assert_close(layer(ids, synthesis_rate=0.3), 0.7 * rows + 0.3 * syn)
    torch.testing.assert_close(layer(ids, synthesis_rate=1.0), syn)
    r = torch.tensor(0.25, requires_grad=True)
    out = layer(ids, synthesis_rate=r)
    out.sum().backward()
    torch.testing.assert_close(r.grad, (syn - rows).sum().detach())
    with pytest.raises(ConfigError, match=r"'synthesis_rate' parameter .* range \[0, 1\]. Got 1.5"):
        layer(ids, synthesis_rate=1.5)
    with pytest.raises(ConfigError, match="floating 0-d tensor"):
        layer(ids, synthesis_rate=torch.tensor([0.1, 0.2]))


def test_linear_schedule_rises_from_zero_over_training_steps() -> None:
    layer = SyntheticEmbeddingLayer(V, D, 0.4, schedule=("linear", 4))
    ids = torch.tensor([5, 6])
    rates = []
    for _ in range(6):
        rates.append(float(layer.current_rate()))
        layer(ids)
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.4])
    assert int(layer.step) == 6
    layer.eval()
    layer(ids)
    assert int(layer.step) == 6  # eval forwards do not advance the schedule
    with pytest.raises(ConfigError, match=r"'schedule warmup_steps' parameter .* Got -3"):
        SyntheticEmbeddingLayer(V, D, schedule=("linear", -3))
    with pytest.raises(ConfigError, match=r"'schedule kind' parameter .* 'linear'"):
        SyntheticEmbeddingLayer(V, D, schedule=("cosine", 3))


def test_adaptive_rate_is_learned() -> None:
    layer = SyntheticEmbeddingLayer(V, D, 0.2, adaptive=True)
    assert layer.rate_logit is not None
    assert float(layer.current_rate().detach()) == pytest.approx(0.2)
    layer(torch.tensor([1, 2, 3])).pow(2).sum().backward()
    assert layer.rate_logit.grad is not None and layer.rate_logit.grad.item() != 0.0
    with pytest.raises(ConfigError, match=r"open range \(0, 1\)"):
        SyntheticEmbeddingLayer(V, D, 0.0, adaptive=True)


def test_cold_ids_are_fully_synthetic_in_eval_mode() -> None:
    side = torch.rand(V, F)
    layer = SyntheticEmbeddingLayer(V, D, 0.2, side_features=side, cold_threshold=2)
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
        V, D, 0.2, side_features=torch.rand(V, F), train_synthetic_fraction=1.0
    )
    ids = torch.tensor([3, 4, 5])
    torch.testing.assert_close(layer(ids), synthetic(layer, ids, hidden=True))
    layer.eval()
    torch.testing.assert_close(layer(ids), 0.8 * layer.base(ids) + 0.2 * synthetic(layer, ids))


def test_padding_id_gets_no_synthetic_part_and_no_gradient() -> None:
    layer = SyntheticEmbeddingLayer(V, D, 0.5, padding_idx=0)
    out = layer(torch.tensor([0, 0, 3]))
    assert torch.equal(out[:2], torch.zeros(2, D))
    out.sum().backward()
    assert torch.equal(layer.weight.grad[0], torch.zeros(D))
    assert layer.weight.grad[3].abs().sum() > 0


def test_soft_lookup_for_float_input() -> None:
    side = torch.rand(V, F)
    layer = SyntheticEmbeddingLayer(V, D, 0.3, side_features=side).eval()
    x = torch.rand(2, 3, V)
    out = layer(x)
    assert out.shape == (2, 3, D)
    rows = x @ layer.weight
    syn = layer.synthesizer(x, rows, x @ side)
    torch.testing.assert_close(out, 0.7 * rows + 0.3 * syn)
    one_hot = torch.nn.functional.one_hot(torch.tensor([4, 9]), V).float()
    torch.testing.assert_close(layer(one_hot), layer(torch.tensor([4, 9])))
    with pytest.raises(ShapeError, match=r"must have shape \(\*, 30\); got \(2, 7\)"):
        layer(torch.rand(2, 7))
    with pytest.raises(NonFiniteError, match="1 NaN"):
        layer(
            torch.full((1, V), float("nan"))
            .nan_to_num(0)
            .index_fill(1, torch.tensor([0]), float("nan"))
        )


def test_explicit_backward_soft_input_and_adaptive_rate_equal_autograd() -> None:
    torch.manual_seed(0)
    layer = SyntheticEmbeddingLayer(
        V, D, 0.3, adaptive=True, side_features=torch.rand(V, F)
    ).double()
    twin = copy.deepcopy(layer)
    x = torch.rand(4, V, dtype=torch.float64)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    grad = torch.randn(4, D, dtype=torch.float64)
    layer(x1).backward(grad)
    twin(x2)
    twin.backward(grad)
    for (name, p), q in zip(layer.named_parameters(), twin.parameters()):
        torch.testing.assert_close(q.grad, p.grad, atol=1e-6, rtol=1e-6, msg=name)
    torch.testing.assert_close(x2.grad, x1.grad, atol=1e-6, rtol=1e-6)


def test_backward_errors() -> None:
    layer = SyntheticEmbeddingLayer(V, D)
    with pytest.raises(NotFittedError, match="call layer\\(input\\) first"):
        layer.backward(torch.ones(2, D))
    layer(torch.tensor([1, 2]))
    with pytest.raises(ShapeError, match=r"shape \(2, 8\); got \(3, 8\)"):
        layer.backward(torch.ones(3, D))
    layer.backward(torch.ones(2, D))  # the failed call left the forward pending
    with pytest.raises(NotFittedError, match="there is none pending"):
        layer.backward(torch.ones(2, D))
    assert isinstance(NotFittedError("x"), RuntimeError)


# ---------------------------------------------------------------------- configuration
def test_configure_synthesis_replaces_config_and_synthesizer() -> None:
    layer = SyntheticEmbeddingLayer(V, D, side_features=torch.rand(V, F))
    before = layer.synthesizer
    assert layer.configure_synthesis(synthesis_rate=0.5, cold_threshold=3) is layer
    assert layer.synthesizer is before and layer.config.synthesis_rate == 0.5
    layer.configure_synthesis(technique="autoencoder", schedule=("linear", 10), bottleneck=3)
    assert layer.technique == "autoencoder" and layer.synthesizer.bottleneck == 3
    assert layer.config.schedule == ("linear", 10) and layer.config.cold_threshold == 3
    layer.configure_synthesis(align_weight=0.5)  # options of the current technique merge
    assert layer.synthesizer.bottleneck == 3 and layer.synthesizer.align_weight == 0.5
    layer.configure_synthesis(schedule=None, adaptive=True)
    assert layer.config.schedule is None and layer.rate_logit is not None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"synthesis_rate": -0.1}, ConfigError, r"'synthesis_rate' parameter"),
        ({"technique": "nope"}, ConfigError, r"registered techniques are \["),
        ({"cold_threshold": -1}, ConfigError, r"'cold_threshold' parameter"),
        ({"schedule": ("linear", -1)}, ConfigError, "warmup_steps"),
        ({"technique": "autoencoder", "bottleneck": 0}, ConfigError, r"'bottleneck' parameter"),
        ({"technique": "manifold"}, ConfigError, "needs side features"),
        ({"train_synthetic_fraction": 2.0}, ConfigError, "train_synthetic_fraction"),
        ({"no_such_option": 1}, ConfigError, r"Unknown option\(s\) \['no_such_option'\]"),
    ],
)
def test_configure_synthesis_validates_before_changing_state(kwargs, error, match) -> None:  # type: ignore[no-untyped-def]
    layer = SyntheticEmbeddingLayer(V, D, 0.2)
    config, synth = layer.config, layer.synthesizer
    with pytest.raises(error, match=match):
        layer.configure_synthesis(**kwargs)
    assert layer.config is config and layer.synthesizer is synth


# ---------------------------------------------------------------------- errors
def test_bad_ids_and_side_features_raise_clear_errors() -> None:
    layer = SyntheticEmbeddingLayer(V, D)
    with pytest.raises(InvalidIndexError, match=r"outside the valid range \[0, 29\].*largest 30"):
        layer(torch.tensor([1, 30]))
    with pytest.raises(IndexError, match="negative ids are never valid"):
        layer(torch.tensor([-1]))
    with pytest.raises(ShapeError, match="boolean tensor"):
        layer(torch.tensor([True]))
    with pytest.raises(ShapeError, match=r"side_features must have shape \(30, F\).*got \(29, 4\)"):
        SyntheticEmbeddingLayer(V, D, side_features=torch.rand(V - 1, F))
    with pytest.raises(NonFiniteError, match="side_features contains 1 NaN"):
        SyntheticEmbeddingLayer(
            V,
            D,
            side_features=torch.rand(V, F)
            .index_fill(0, torch.tensor([3]), 0)
            .fill_diagonal_(0)
            .index_put((torch.tensor([0]), torch.tensor([0])), torch.tensor(float("nan"))),
        )
    with pytest.raises(ConfigError, match=r"'synthesis_rate' parameter .* Got 2"):
        SyntheticEmbeddingLayer(V, D, 2)
    with pytest.raises(ConfigError, match=r"Unknown base 'nope'"):
        SyntheticEmbeddingLayer(V, D, base="nope")
    with pytest.raises(ConfigError, match="pooling"):
        SyntheticEmbeddingLayer(V, D, base_options={"mode": "mean"})


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


def test_save_load_keeps_rate_modes_and_counts(tmp_path) -> None:
    layer = SyntheticEmbeddingLayer(
        V,
        D,
        0.3,
        adaptive=True,
        schedule=("linear", 5),
        padding_idx=0,
        cold_threshold=1,
        base_options={"dtype": torch.float64},
    )
    for _ in range(3):
        layer(torch.randint(0, V, (10,)))
    path = tmp_path / "layer.safetensors"
    save(layer, path)
    loaded = load(path)
    assert loaded.get_config() == layer.get_config() and int(loaded.step) == 3
    assert loaded.weight.dtype == torch.float64
    for m in (layer, loaded):
        m.eval()
    ids = torch.arange(V)
    assert torch.equal(loaded(ids), layer(ids))


# ---------------------------------------------------------------------- compile


@pytest.mark.slow
def test_torch_compile_forward() -> None:
    # One test, so that the worker imports and warms up dynamo once. Inductor code
    # generation takes several seconds on 2 cores: marked slow, still run by default.
    layer = SyntheticEmbeddingLayer(V, D, 0.3, side_features=torch.rand(V, F), cold_threshold=1)
    ids = torch.randint(0, V, (4, 3))
    # Training mode through dynamo: buffer updates (counts, step) and backward work.
    traced = torch.compile(layer, backend="eager")
    traced(ids).sum().backward()
    assert layer.counts.sum().item() == 12 and int(layer.step) == 1
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    # Eval mode through inductor (the default backend) gives the eager outputs.
    plain = SyntheticEmbeddingLayer(V, D, 0.3).eval()
    compiled = torch.compile(plain)
    torch.testing.assert_close(compiled(ids), plain(ids))


def test_configure_same_technique_keeps_trained_synthesizer() -> None:
    layer = SyntheticEmbeddingLayer(V, D)
    synth = layer.synthesizer
    layer.configure_synthesis(technique="combination")
    assert layer.synthesizer is synth


def test_failed_forward_keeps_pending_backward() -> None:
    layer = SyntheticEmbeddingLayer(V, D)
    layer(torch.tensor([1, 2]))
    with pytest.raises(InvalidIndexError):
        layer(torch.tensor([V]))
    layer.backward(torch.ones(2, D))
    assert layer.weight.grad is not None


def test_add_items_warns_when_synthesizer_never_trained_alone() -> None:
    layer = SyntheticEmbeddingLayer(V, D)
    layer.add_items(num_items=1)  # untrained layer: nothing to warn about
    layer(torch.tensor([1, 2]))
    with pytest.warns(UserWarning, match="train_synthetic_fraction=0"):
        layer.add_items(num_items=1)


@pytest.mark.parametrize("base", sorted(BASES))
def test_every_registered_base_blends_backprops_grows_and_saves(base: str, tmp_path) -> None:
    torch.manual_seed(0)
    layer = SyntheticEmbeddingLayer(
        V, D, 0.3, base=base, side_features=torch.rand(V, F), train_synthetic_fraction=0.2
    ).double()
    twin = copy.deepcopy(layer)
    ids = torch.randint(0, V, (6,))
    grad = torch.randn(6, D, dtype=torch.float64)
    torch.manual_seed(1)
    layer(ids).backward(grad)
    torch.manual_seed(1)
    twin(ids)
    twin.backward(grad)
    for (name, p), q in zip(layer.named_parameters(), twin.parameters()):
        if p.grad is not None:
            torch.testing.assert_close(q.grad, p.grad, atol=1e-6, rtol=1e-6, msg=name)
    new = layer.add_items(torch.rand(2, F, dtype=torch.float64))
    save(layer, tmp_path / "layer.safetensors")
    loaded = load(tmp_path / "layer.safetensors")
    layer.eval()
    loaded.eval()
    all_ids = torch.arange(V + 2)
    assert torch.equal(loaded(all_ids), layer(all_ids))
    assert loaded.is_cold(new).all()


# ---------------------------------------------------------------------- 64-bit ids, check_finite
BIG = torch.tensor([3, 2**40, 2**63 - 1, 2**40])


@pytest.mark.parametrize(
    "base", sorted(b for b in BASES if getattr(BASES[b], "accepts_any_id", False))
)
def test_hashing_base_takes_any_nonnegative_64bit_id(base: str) -> None:
    torch.manual_seed(0)
    layer = SyntheticEmbeddingLayer(V, D, 0.3, base=base).double()
    twin = copy.deepcopy(layer)
    out = layer(BIG)
    assert out.shape == (4, D) and torch.isfinite(out).all()
    torch.testing.assert_close(out[1], out[3])  # the same id, the same vector
    rows = layer.base(BIG)
    torch.testing.assert_close(out, 0.7 * rows + 0.3 * synthetic(layer, BIG))
    # Only ids inside [0, input_dim) are counted; explicit backward still equals autograd.
    assert int(layer.counts.sum()) == 1 and int(layer.counts[3]) == 1
    grad = torch.randn(4, D, dtype=torch.float64)
    out.backward(grad)
    twin(BIG)
    twin.backward(grad)
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
    layer = SyntheticEmbeddingLayer(V, D, 0.3, base="hash", side_features=side)
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


def test_check_finite_names_layer_and_ids_and_changes_nothing(tmp_path) -> None:
    layer = SyntheticEmbeddingLayer(V, D, 0.2, check_finite=True)
    assert layer.get_config()["check_finite"] is True and "check_finite=True" in repr(layer)
    layer(torch.tensor([1, 2]))
    counts, step = layer.counts.clone(), int(layer.step)
    with torch.no_grad():
        layer.weight[5, 0] = float("nan")
        layer.weight[7, 1] = float("inf")
    with pytest.raises(
        NonFiniteError, match=r"SyntheticEmbeddingLayer produced NaN/inf from ids \[5, 7\]"
    ):
        layer(torch.tensor([[1, 5], [7, 5]]))
    assert torch.equal(layer.counts, counts) and int(layer.step) == step
    layer.backward(torch.ones(2, D))  # the failed forward left the earlier one pending
    with pytest.raises(NonFiniteError, match="produced NaN/inf"):  # soft lookup: no ids to name
        layer(torch.nn.functional.one_hot(torch.tensor([5]), V).float())
    unchecked = SyntheticEmbeddingLayer(V, D, 0.2)
    unchecked.load_state_dict(layer.state_dict())
    assert not torch.isfinite(unchecked(torch.tensor([5]))).all()  # off by default
    # A NaN made by the synthesizer is caught too, and the flag survives save/load.
    with torch.no_grad():
        layer.weight[5, 0], layer.weight[7, 1] = 0.0, 0.0
        layer.synthesizer.bias[0] = float("nan")
    with pytest.raises(NonFiniteError, match=r"from ids \[3\]"):
        layer(torch.tensor([3]))
    save(layer, tmp_path / "layer.safetensors")
    assert load(tmp_path / "layer.safetensors").check_finite is True
    with pytest.raises(ConfigError, match=r"'check_finite' parameter .* must be a bool"):
        SyntheticEmbeddingLayer(V, D, check_finite="yes")
