"""One behaviour suite for every built-in synthesis technique, parametrised over them.

Each technique (``combination``, ``autoencoder``, ``gan``, ``manifold``), with and
without side features where it can work without them, must: give ``(*, D)``
vectors; give vectors fit for dot products (unbounded, finite, of the base
table's order of scale); synthesize hidden ids without reading their base row;
pass gradients to its parameters; survive save/load bit for bit, ``deepcopy``
and growth; be deterministic under a seed; and agree under both kernel sets.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch

import synthembed.synthesis  # noqa: F401  (registers the built-in techniques)
from synthembed import _kernels
from synthembed.io import load, save
from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer

V, D, F = 40, 6, 5
BUILT_IN = ("autoencoder", "combination", "gan", "manifold")


from support import build_synthetic as build  # noqa: E402
from support import side_cases  # noqa: E402
from support import synthetic_features as features  # noqa: E402

CASES = [(name, side) for name in BUILT_IN for side in side_cases(name)]


def train_steps(layer: SyntheticEmbeddingLayer, steps: int = 3, seed: int = 0) -> None:
    """A few SGD steps on a toy loss (task + the technique's own losses)."""
    opt = torch.optim.SGD(layer.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(seed)
    layer.train()
    for _ in range(steps):
        out = layer(torch.randint(0, layer.input_dim, (20,), generator=gen))
        loss = out.pow(2).mean() + layer.get_loss()
        if layer.synthesizer.technique == "gan":
            loss = loss + layer.discriminator_loss()
        opt.zero_grad()
        loss.backward()
        opt.step()


def synthesize(layer: SyntheticEmbeddingLayer, ids: torch.Tensor, visible: bool) -> torch.Tensor:
    """The synthesizer alone on ``ids`` (rows visible or hidden)."""
    rows = layer.base(ids)
    side = None if layer.side_features is None else layer.side_features[ids]
    mask = torch.full(ids.shape, visible, dtype=torch.bool)
    return layer.synthesizer(ids, rows, side, mask)


def same_state(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))


# ---------------------------------------------------------------------- vectors fit for dot products
@pytest.mark.parametrize(("technique", "with_side"), CASES)
def test_output_is_unbounded_and_well_scaled(technique: str, with_side: bool) -> None:
    layer = build(technique, with_side).eval()
    ids = torch.arange(V)
    with torch.no_grad():
        syn = synthesize(layer, ids, visible=True)  # (V, D)
    assert syn.shape == (V, D) and torch.isfinite(syn).all()
    # Not squeezed into (0, 1): dot products of two vectors can be negative.
    assert bool(((syn < 0) | (syn > 1)).any())
    # Of the base table's order of scale (its rows start N(0, 1): RMS 1 per coordinate).
    rms = syn.pow(2).mean().sqrt().item()
    assert 0.05 < rms < 5.0, rms


def test_the_founding_formula_stays_in_the_unit_interval() -> None:
    from synthembed.synthesis import Combination

    layer = build("combination", True, **Combination.FOUNDING).eval()
    with torch.no_grad():
        syn = synthesize(layer, torch.arange(V), visible=True)
    assert bool(((syn > 0) & (syn < 1)).all())


@pytest.mark.parametrize(("technique", "with_side"), CASES)
def test_hidden_rows_do_not_depend_on_the_base_row(technique: str, with_side: bool) -> None:
    layer = build(technique, with_side).eval()
    ids = torch.arange(V)
    side = None if layer.side_features is None else layer.side_features[ids]
    hidden = torch.zeros(V, dtype=torch.bool)
    with torch.no_grad():
        a = layer.synthesizer(ids, torch.randn(V, D), side, hidden)
        b = layer.synthesizer(ids, 100 * torch.randn(V, D), side, hidden)
        shown = layer.synthesizer(ids, torch.randn(V, D), side, ~hidden)
    assert torch.equal(a, b)
    if with_side:
        assert not torch.equal(a[0], a[1])  # ...but on the id's own side features
    assert torch.isfinite(shown).all()


@pytest.mark.parametrize(("technique", "with_side"), CASES)
def test_gradients_reach_every_parameter(technique: str, with_side: bool) -> None:
    layer = build(technique, with_side, train_synthetic_fraction=0.5)
    torch.manual_seed(1)
    out = layer(torch.randint(0, V, (32,)))
    loss = (out * torch.randn_like(out)).sum() + layer.get_loss()
    if technique == "gan":
        loss = loss + layer.discriminator_loss()
    loss.backward()
    for name, p in layer.synthesizer.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(("technique", "with_side"), CASES)
def test_grown_ids_get_finite_synthetic_vectors(technique: str, with_side: bool) -> None:
    layer = build(technique, with_side)
    train_steps(layer)
    new_side = features(3, seed=5)
    new = layer.add_items(new_side) if with_side else layer.add_items(num_items=3)
    assert new.tolist() == [V, V + 1, V + 2]
    layer.eval()
    with torch.no_grad():
        out = layer(torch.arange(V + 3))
    assert out.shape == (V + 3, D) and torch.isfinite(out).all()
    if with_side:  # different features, different vectors
        assert not torch.equal(out[V], out[V + 1])
    train_steps(layer, seed=1)  # the grown layer keeps training


@pytest.mark.parametrize(("technique", "with_side"), CASES)
def test_deterministic_under_a_seed(technique: str, with_side: bool) -> None:
    outs = []
    for _ in range(2):
        layer = build(technique, with_side, train_synthetic_fraction=0.3)
        torch.manual_seed(11)
        train_steps(layer)
        with torch.no_grad():
            outs.append(layer.eval()(torch.arange(V)))
    assert torch.equal(outs[0], outs[1])


# ---------------------------------------------------------------------- the layer around each technique
@pytest.mark.parametrize(("technique", "with_side"), CASES)
def test_output_shape_dtype_and_blend(technique: str, with_side: bool) -> None:
    layer = build(technique, with_side).eval()
    ids = torch.randint(0, V, (3, 4))
    out = layer(ids)
    assert out.shape == (3, 4, D) and out.dtype == torch.float32
    rows = layer.base(ids)
    side = None if layer.side_features is None else layer.side_features[ids]
    syn = layer.synthesizer(ids, rows, side)
    torch.testing.assert_close(out, 0.7 * rows + 0.3 * syn)
    # Eval mode is deterministic (no noise, no dropout of rows).
    assert torch.equal(layer(ids), out)


@pytest.mark.parametrize(("technique", "with_side"), CASES)
@pytest.mark.parametrize("rate_kind", ["float", "tensor"])
def test_layer_backward_equals_autograd(technique: str, with_side: bool, rate_kind: str) -> None:
    layer = build(technique, with_side, padding_idx=0, train_synthetic_fraction=0.3).double()
    twin = copy.deepcopy(layer)
    ids = torch.randint(0, V, (5, 7))
    ids[0, 0] = 0  # a padding id
    grad = torch.randn(5, 7, D, dtype=torch.float64)
    rates = [torch.tensor(0.4, dtype=torch.float64, requires_grad=True) for _ in range(2)]

    def rate(i: int) -> float | torch.Tensor:
        return 0.4 if rate_kind == "float" else rates[i]

    torch.manual_seed(7)  # same dropout draw and GAN noise in both passes
    layer(ids, synthesis_rate=rate(0)).backward(grad)
    torch.manual_seed(7)
    out = twin(ids, synthesis_rate=rate(1))
    twin.backward(grad)

    autograd = {n: p.grad for n, p in layer.named_parameters() if p.grad is not None}
    explicit = {n: p.grad for n, p in twin.named_parameters() if p.grad is not None}
    assert set(autograd) == set(explicit)
    assert "base.weight" in autograd and any(n.startswith("synthesizer.") for n in autograd)
    for name in autograd:
        torch.testing.assert_close(explicit[name], autograd[name], atol=1e-6, rtol=1e-6, msg=name)
    if rate_kind == "tensor":
        assert rates[0].grad is not None and rates[1].grad is not None
        torch.testing.assert_close(rates[1].grad, rates[0].grad, atol=1e-6, rtol=1e-6)
    # A second layer.backward accumulates, like autograd would.
    torch.manual_seed(7)
    out = twin(ids, synthesis_rate=rate(1))
    twin.backward(grad)
    del out
    torch.testing.assert_close(
        twin.base.weight.grad, 2 * autograd["base.weight"], atol=1e-6, rtol=1e-6
    )


@pytest.mark.parametrize(("technique", "with_side"), CASES)
def test_aux_loss_is_scalar_and_trainable(technique: str, with_side: bool) -> None:
    layer = build(technique, with_side, train_synthetic_fraction=0.5)
    ids = torch.randint(0, V, (16,))
    layer(ids)
    loss = layer.get_loss()
    assert loss.dim() == 0 and torch.isfinite(loss)
    if loss.requires_grad:
        loss.backward()
        assert any(
            p.grad is not None and p.grad.abs().sum() > 0 for p in layer.synthesizer.parameters()
        )
    layer.eval()
    layer(ids)
    assert layer.get_loss().item() == 0.0  # no auxiliary loss in eval mode


@pytest.mark.parametrize(("technique", "with_side"), CASES)
def test_add_items_new_ids_are_fully_synthetic_in_eval(technique: str, with_side: bool) -> None:
    layer = build(technique, with_side, train_synthetic_fraction=0.3)
    layer(torch.arange(V))  # one training pass: every original id is warm
    new = layer.add_items(features(3, seed=1)) if with_side else layer.add_items(num_items=3)
    assert new.tolist() == [V, V + 1, V + 2]
    assert layer.input_dim == V + 3 and layer.base.num_embeddings == V + 3
    layer.eval()
    out = layer(new)
    side = None if layer.side_features is None else layer.side_features[new]
    hidden = torch.zeros(3, dtype=torch.bool)
    expected = layer.synthesizer(new, layer.base(new), side, hidden)
    torch.testing.assert_close(out, expected)
    assert layer.is_cold(new).all() and not layer.is_cold(torch.arange(V)).any()
    # Training on a new id warms it up.
    layer.train()
    layer(new[:1]).sum().backward()
    assert layer.is_cold(new).tolist() == [False, True, True]


@pytest.mark.parametrize(("technique", "with_side"), CASES)
def test_save_load_round_trip_is_bit_exact(technique: str, with_side: bool, tmp_path) -> None:
    layer = build(
        technique, with_side, cold_threshold=2, padding_idx=1, train_synthetic_fraction=0.2
    )
    train_steps(layer)
    if with_side:
        layer.add_items(features(2, seed=3))
    json.dumps(layer.get_config())
    path = tmp_path / "layer.safetensors"
    save(layer, path)
    loaded = load(path)
    assert isinstance(loaded, SyntheticEmbeddingLayer)
    assert same_state(loaded.counts, layer.counts) and same_state(loaded.added, layer.added)
    layer.eval()
    loaded.eval()
    ids = torch.arange(layer.input_dim)
    assert torch.equal(loaded(ids), layer(ids))
    assert loaded.get_config() == layer.get_config()


@pytest.mark.parametrize(("technique", "with_side"), CASES)
def test_deepcopy_after_a_training_step(technique: str, with_side: bool) -> None:
    layer = build(technique, with_side, train_synthetic_fraction=0.3)
    out = layer(torch.randint(0, V, (12,)))
    (out.sum() + layer.get_loss()).backward()
    clone = copy.deepcopy(layer)
    layer.eval()
    clone.eval()
    ids = torch.arange(V)
    assert torch.equal(clone(ids), layer(ids))
    assert clone.get_loss().item() == 0.0


@pytest.mark.parametrize(("technique", "with_side"), CASES)
def test_fast_and_reference_kernels_agree(technique: str, with_side: bool) -> None:
    results = []
    for kernels in ("fast", "reference"):
        layer = build(technique, with_side, padding_idx=0, train_synthetic_fraction=0.3).double()
        ids = torch.randint(0, V, (6, 5), generator=torch.Generator().manual_seed(3))
        grad = torch.randn(6, 5, D, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
        with _kernels.use_kernels(kernels):  # type: ignore[arg-type]
            torch.manual_seed(5)
            out = layer(ids)
            (out * grad).sum().add(layer.get_loss()).backward()
        grads = {n: p.grad for n, p in layer.named_parameters() if p.grad is not None}
        results.append((out.detach(), grads))
    (out_f, grads_f), (out_r, grads_r) = results
    torch.testing.assert_close(out_f, out_r)
    assert set(grads_f) == set(grads_r)
    for name in grads_f:
        torch.testing.assert_close(grads_f[name], grads_r[name], msg=name)
