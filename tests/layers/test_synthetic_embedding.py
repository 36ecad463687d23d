"""SyntheticEmbeddingLayer: blend modes, soft input, backward, copies, errors, save, compile.

Cold ids and add_items: tests/layers/test_cold_start.py; configuration and the rate:
tests/layers/test_synthesis_config.py."""

from __future__ import annotations

import copy
import pickle
import weakref

import pytest
import torch
from support import synthetic

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
    layer = SyntheticEmbeddingLayer(V, D, synthesis_rate=0.0, padding_idx=2)
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
    layer = SyntheticEmbeddingLayer(V, D, synthesis_rate=0.1).eval()
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


def test_padding_id_gets_no_synthetic_part_and_no_gradient() -> None:
    layer = SyntheticEmbeddingLayer(V, D, synthesis_rate=0.5, padding_idx=0)
    out = layer(torch.tensor([0, 0, 3]))
    assert torch.equal(out[:2], torch.zeros(2, D))
    out.sum().backward()
    assert torch.equal(layer.weight.grad[0], torch.zeros(D))
    assert layer.weight.grad[3].abs().sum() > 0


def test_soft_lookup_for_float_input() -> None:
    side = torch.rand(V, F)
    layer = SyntheticEmbeddingLayer(V, D, synthesis_rate=0.3, side_features=side).eval()
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


def test_layer_backward_soft_input_and_adaptive_rate_equal_autograd() -> None:
    torch.manual_seed(0)
    layer = SyntheticEmbeddingLayer(
        V, D, synthesis_rate=0.3, adaptive=True, side_features=torch.rand(V, F)
    ).double()
    twin = copy.deepcopy(layer)
    x = torch.rand(4, V, dtype=torch.float64)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    grad = torch.randn(4, D, dtype=torch.float64)
    layer(x1).backward(grad)
    out = twin(x2)
    twin.backward(grad)  # the founding documents' form of out.backward(grad)
    del out
    for (name, p), q in zip(layer.named_parameters(), twin.parameters()):
        torch.testing.assert_close(q.grad, p.grad, atol=1e-6, rtol=1e-6, msg=name)
    torch.testing.assert_close(x2.grad, x1.grad, atol=1e-6, rtol=1e-6)


def test_backward_errors() -> None:
    layer = SyntheticEmbeddingLayer(V, D)
    with pytest.raises(NotFittedError, match="call layer\\(input\\) first"):
        layer.backward(torch.ones(2, D))
    out = layer(torch.tensor([1, 2]))
    with pytest.raises(ShapeError, match=r"shape \(2, 8\); got \(3, 8\)"):
        layer.backward(torch.ones(3, D))
    layer.backward(torch.ones(2, D))  # the failed call left the forward pending
    with pytest.raises(NotFittedError, match="there is none pending"):
        layer.backward(torch.ones(2, D))
    assert isinstance(NotFittedError("x"), RuntimeError)
    del out
    # The layer holds only a weak reference to its output: a dropped output cannot be
    # differentiated, and the error says to keep it.
    layer(torch.tensor([1, 2]))
    with pytest.raises(NotFittedError, match=r"keep its output alive \(out = layer\(ids\)"):
        layer.backward(torch.ones(2, D))
    with torch.no_grad():
        out = layer(torch.tensor([1, 2]))
    with pytest.raises(NotFittedError, match=r"recorded no gradients .*torch.no_grad\(\)"):
        layer.backward(torch.ones(2, D))
    assert not out.requires_grad


def test_layer_backward_equals_out_backward_and_keeps_no_graph() -> None:
    torch.manual_seed(0)
    layer = SyntheticEmbeddingLayer(
        V,
        D,
        synthesis_rate=0.3,
        side_features=torch.rand(V, F),
        padding_idx=0,
        train_synthetic_fraction=0.3,
    ).double()
    twin = copy.deepcopy(layer)
    ids = torch.randint(0, V, (5, 4))
    ids[0, 0] = 0
    grad = torch.randn(5, 4, D, dtype=torch.float64)
    torch.manual_seed(1)
    layer(ids).backward(grad)
    torch.manual_seed(1)
    out = twin(ids)
    twin.backward(grad)
    for (name, p), q in zip(layer.named_parameters(), twin.parameters()):
        assert (p.grad is None) == (q.grad is None), name
        if p.grad is not None:
            assert torch.equal(q.grad, p.grad), name
    # The module holds no part of the forward's graph: it dies with the output.
    twin.eval()  # no hidden rows: the blend saves the rate tensor itself
    rate = torch.ones((), dtype=torch.float64, requires_grad=True) * 0.3
    out = twin(ids, synthesis_rate=rate)
    alive = weakref.ref(rate)
    del rate
    assert alive() is not None  # kept by the graph of out
    del out
    assert alive() is None


def test_deepcopy_and_pickle_after_a_training_step() -> None:
    layer = SyntheticEmbeddingLayer(
        V, D, synthesis_rate=0.2, side_features=torch.rand(V, F), technique="autoencoder"
    )
    out = layer(torch.tensor([1, 2, 2]))
    (out.sum() + layer.get_loss()).backward()
    pending = layer(torch.tensor([3, 4]))
    clone = copy.deepcopy(layer)
    assert torch.equal(clone.weight, layer.weight) and torch.equal(clone.counts, layer.counts)
    assert clone.get_loss().item() == 0.0  # the copy has no last forward
    with pytest.raises(NotFittedError, match="call layer"):
        clone.backward(torch.ones(2, D))  # nor the original's graph
    layer.backward(torch.ones(2, D))  # the original still has it
    restored = pickle.loads(pickle.dumps(layer))
    layer.eval()
    restored.eval()
    assert torch.equal(restored(torch.arange(V)), layer(torch.arange(V)))
    del pending


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
        SyntheticEmbeddingLayer(V, D, synthesis_rate=2)
    with pytest.raises(ConfigError, match=r"Unknown base 'nope'"):
        SyntheticEmbeddingLayer(V, D, base="nope")
    with pytest.raises(ConfigError, match="pooling"):
        SyntheticEmbeddingLayer(V, D, base_options={"mode": "mean"})


def test_save_load_keeps_rate_modes_and_counts(tmp_path) -> None:
    layer = SyntheticEmbeddingLayer(
        V,
        D,
        synthesis_rate=0.3,
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
    layer = SyntheticEmbeddingLayer(
        V, D, synthesis_rate=0.3, side_features=torch.rand(V, F), cold_threshold=1
    )
    ids = torch.randint(0, V, (4, 3))
    # Training mode through dynamo: buffer updates (counts, step) and backward work.
    traced = torch.compile(layer, backend="eager")
    traced(ids).sum().backward()
    assert layer.counts.sum().item() == 12 and int(layer.step) == 1
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    # Eval mode through inductor (the default backend) gives the eager outputs.
    plain = SyntheticEmbeddingLayer(V, D, synthesis_rate=0.3).eval()
    compiled = torch.compile(plain)
    torch.testing.assert_close(compiled(ids), plain(ids))


def test_failed_forward_keeps_pending_backward() -> None:
    layer = SyntheticEmbeddingLayer(V, D)
    out = layer(torch.tensor([1, 2]))
    with pytest.raises(InvalidIndexError):
        layer(torch.tensor([V]))
    layer.backward(torch.ones(2, D))
    assert layer.weight.grad is not None
    del out


@pytest.mark.parametrize("base", sorted(BASES))
def test_every_registered_base_blends_backprops_grows_and_saves(base: str, tmp_path) -> None:
    torch.manual_seed(0)
    layer = SyntheticEmbeddingLayer(
        V,
        D,
        synthesis_rate=0.3,
        base=base,
        side_features=torch.rand(V, F),
        train_synthetic_fraction=0.2,
    ).double()
    twin = copy.deepcopy(layer)
    ids = torch.randint(0, V, (6,))
    grad = torch.randn(6, D, dtype=torch.float64)
    torch.manual_seed(1)
    layer(ids).backward(grad)
    torch.manual_seed(1)
    out = twin(ids)
    twin.backward(grad)
    del out
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


# ---------------------------------------------------------------------- check_finite
def test_check_finite_names_layer_and_ids_and_changes_nothing(tmp_path) -> None:
    layer = SyntheticEmbeddingLayer(V, D, synthesis_rate=0.2, check_finite=True, cold_threshold=1)
    assert layer.get_config()["check_finite"] is True and "check_finite=True" in repr(layer)
    pending = layer(torch.tensor([1, 2]))
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
    del pending
    with pytest.raises(NonFiniteError, match="produced NaN/inf"):  # soft lookup: no ids to name
        layer(torch.nn.functional.one_hot(torch.tensor([5]), V).float())
    unchecked = SyntheticEmbeddingLayer(V, D, synthesis_rate=0.2)
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


def test_nn_embedding_argument_order_names_and_aliases() -> None:
    # padding_idx third, as in nn.Embedding; positional, it warns for one release.
    with pytest.warns(
        FutureWarning, match=r"\(n, d, 0\): the third positional argument is padding_idx"
    ):
        layer = SyntheticEmbeddingLayer(10, 4, 0, synthesis_rate=0.5)
    assert SyntheticEmbeddingLayer(10, 4, padding_idx=0).padding_idx == 0
    assert layer.padding_idx == 0 and layer.num_embeddings == layer.input_dim == 10
    founding = SyntheticEmbeddingLayer(input_dim=10, embedding_dim=4)
    assert founding.num_embeddings == 10 and founding.get_config()["num_embeddings"] == 10
    with pytest.raises(ConfigError, match="num_embeddings=10 and input_dim=12"):
        SyntheticEmbeddingLayer(10, 4, input_dim=12)
    with pytest.raises(ConfigError, match="needs num_embeddings"):
        SyntheticEmbeddingLayer(embedding_dim=4)
    with pytest.warns(DeprecationWarning, match="third positional argument is now padding_idx"):
        old = SyntheticEmbeddingLayer(10, 4, 0.25)
    assert old.padding_idx is None and old.config.synthesis_rate == 0.25


def test_configs_saved_under_input_dim_still_load() -> None:
    layer = SyntheticEmbeddingLayer(12, 3, synthesis_rate=0.2)
    config = layer.get_config()
    config["input_dim"] = config.pop("num_embeddings")
    again = SyntheticEmbeddingLayer.from_config(config)
    assert again.num_embeddings == 12 and again.get_config() == layer.get_config()


def test_device_and_dtype_keywords() -> None:
    side = torch.rand(20, 3)
    layer = SyntheticEmbeddingLayer(
        20, 4, technique="autoencoder", side_features=side, dtype=torch.float64, device="cpu"
    )
    assert layer.weight.dtype == torch.float64
    assert layer.side_features is not None and layer.side_features.dtype == torch.float64
    assert {p.dtype for p in layer.synthesizer.parameters()} == {torch.float64}
    assert layer(torch.tensor([1, 2])).dtype == torch.float64
    meta = SyntheticEmbeddingLayer(100_000_000, 64, synthesis_rate=0.0, device="meta")
    assert meta.weight.device.type == "meta"
