"""One suite for every registered synthesis technique (a new one is tested once it registers)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import synthembed.synthesis  # noqa: F401  (registers the built-in techniques)
from synthembed.errors import ConfigError
from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer
from synthembed.synthesis import (
    TECHNIQUES,
    Combination,
    Synthesizer,
    make_synthesizer,
    register_technique,
)
from synthembed.synthesis.manifold import knn_extend

V, D, F = 40, 6, 5
TECHNIQUE_NAMES = sorted(TECHNIQUES)


from support import build_synthetic as build  # noqa: E402
from support import side_cases  # noqa: E402
from support import synthetic_features as features  # noqa: E402

CASES = [(name, side) for name in TECHNIQUE_NAMES for side in side_cases(name)]


@pytest.mark.parametrize(
    "technique", [n for n in TECHNIQUE_NAMES if TECHNIQUES[n].needs_side_features]
)
def test_technique_without_needed_side_features_raises(technique: str) -> None:
    with pytest.raises(ConfigError, match="needs side features"):
        SyntheticEmbeddingLayer(V, D, technique=technique)


@pytest.mark.parametrize("technique", TECHNIQUE_NAMES)
def test_unknown_option_lists_accepted_ones(technique: str) -> None:
    with pytest.raises(ConfigError, match=f"Unknown option.*'no_such_option'.*{technique!r}"):
        make_synthesizer(technique, V, D, F, no_such_option=1)


def test_unknown_technique_lists_registered() -> None:
    with pytest.raises(ConfigError, match=r"Unknown synthesis technique 'nope'.*'combination'"):
        SyntheticEmbeddingLayer(V, D, technique="nope")


def test_registering_a_technique_makes_it_usable() -> None:
    @register_technique("scaled_rows")
    class ScaledRows(Synthesizer):
        def __init__(
            self,
            num_embeddings: int,
            embedding_dim: int,
            side_dim: int | None,
            *,
            scale: float = 2.0,
        ) -> None:
            super().__init__(num_embeddings, embedding_dim, side_dim)
            self.scale = nn.Parameter(torch.tensor(scale))

        def forward(self, index, rows, side, visible=None):  # type: ignore[no-untyped-def]
            return self.scale * self.visible_rows(rows, visible)

    try:
        layer = SyntheticEmbeddingLayer(
            V, D, synthesis_rate=0.5, technique="scaled_rows", scale=3.0
        )
        ids = torch.tensor([1, 2])
        torch.testing.assert_close(layer(ids), 0.5 * layer.base(ids) + 1.5 * layer.base(ids))
        with pytest.raises(ConfigError, match="decorates Synthesizer subclasses"):
            register_technique("bad")(int)  # type: ignore[type-var]
    finally:
        del TECHNIQUES["scaled_rows"]


def test_gan_losses_touch_disjoint_parameters() -> None:
    layer = build("gan", True, train_synthetic_fraction=0.3)
    layer(torch.randint(0, V, (32,)))
    disc = {id(p) for p in layer.discriminator_parameters()}
    assert disc
    layer.get_loss().backward()
    assert all(p.grad is None for p in layer.discriminator_parameters())
    layer.zero_grad(set_to_none=True)
    layer.discriminator_loss().backward()
    touched = {id(p) for p in layer.parameters() if p.grad is not None}
    assert touched == disc


def test_gan_two_optimizer_recipe_trains_the_discriminator() -> None:
    layer = build("gan", True, train_synthetic_fraction=0.3)
    disc = set(layer.discriminator_parameters())
    opt_g = torch.optim.Adam([p for p in layer.parameters() if p not in disc], lr=0.01)
    opt_d = torch.optim.Adam(disc, lr=0.01)
    d_losses = []
    for _ in range(40):
        layer(torch.randint(0, V, (64,)))
        opt_g.zero_grad()
        layer.get_loss().backward()
        opt_g.step()
        opt_d.zero_grad()
        d_loss = layer.discriminator_loss()
        d_loss.backward()
        opt_d.step()
        d_losses.append(d_loss.item())
    assert all(torch.isfinite(torch.tensor(d_losses)))
    assert min(d_losses) < d_losses[0]


def test_discriminator_loss_needs_gan() -> None:
    layer = build("combination", False)
    with pytest.raises(ConfigError, match="belongs to the 'gan' technique"):
        layer.discriminator_loss()
    assert layer.discriminator_parameters() == []


def test_autoencoder_alignment_pulls_synthetic_rows_onto_learned_rows() -> None:
    layer = build("autoencoder", True, bottleneck=4)
    opt = torch.optim.Adam(layer.synthesizer.parameters(), lr=0.02)
    ids = torch.arange(V)
    first = None
    for _ in range(60):
        layer(ids)
        loss = layer.get_loss()
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first is not None and loss.item() < 0.7 * first


@pytest.mark.parametrize("method", ["spectral", "isomap"])
def test_manifold_coordinates_keep_feature_neighbours(method: str) -> None:
    # Points along a curve in feature space: the first coordinate orders them along it.
    t = torch.linspace(0, 1, V)
    side = torch.stack([torch.cos(3 * t), torch.sin(3 * t), t, t**2, 1 - t], dim=1)
    layer = SyntheticEmbeddingLayer(
        V, D, technique="manifold", side_features=side, method=method, n_components=2, n_neighbors=5
    )
    coords = layer.synthesizer.coordinates
    assert coords.shape == (V, 2)
    torch.testing.assert_close(coords.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(coords.std(0), torch.ones(2), atol=1e-5, rtol=0)
    rank = coords[:, 0].argsort().argsort().float()
    spearman = torch.corrcoef(torch.stack([rank, torch.arange(V).float()]))[0, 1]
    assert spearman.abs() > 0.95


def test_manifold_affinity_graph_and_out_of_sample() -> None:
    g = torch.Generator().manual_seed(0)
    blocks = torch.block_diag(torch.ones(20, 20), torch.ones(20, 20)) + 0.01 * torch.rand(
        V, V, generator=g
    )
    layer = SyntheticEmbeddingLayer(V, D, technique="manifold", affinity=blocks, n_components=2)
    new_aff = torch.zeros(1, V)
    new_aff[0, :20] = 1.0
    new = layer.add_items(num_items=1, affinity=new_aff)
    coords = layer.synthesizer.coordinates
    torch.testing.assert_close(coords[new[0]], coords[:20].mean(0))
    with pytest.raises(ConfigError, match="places new ids by their neighbours"):
        layer.add_items(num_items=1)
    with pytest.raises(ConfigError, match="method='spectral'"):
        SyntheticEmbeddingLayer(V, D, technique="manifold", affinity=blocks, method="isomap")


def test_manifold_fits_on_a_sample_above_max_fit_items() -> None:
    side = features()
    layer = SyntheticEmbeddingLayer(
        V, D, technique="manifold", side_features=side, max_fit_items=25, n_components=2
    )
    assert torch.isfinite(layer.synthesizer.coordinates).all()
    assert layer.synthesizer.coordinates.std(0).min() > 0.5


def test_knn_extend_weights_by_inverse_distance() -> None:
    ref = torch.tensor([[0.0], [1.0], [10.0]])
    coords = torch.tensor([[0.0], [3.0], [100.0]])
    out = knn_extend(ref, coords, torch.tensor([[0.25], [1.0]]), k=2)
    torch.testing.assert_close(out, torch.tensor([[0.75], [3.0]]), atol=1e-5, rtol=0)


def test_combination_low_rank_option() -> None:
    layer = build("combination", True, rank=2).double()
    twin = copy.deepcopy(layer)
    ids = torch.randint(0, V, (9,))
    grad = torch.randn(9, D, dtype=torch.float64)
    torch.manual_seed(3)  # the same ids served fully synthetic in both passes
    layer(ids).backward(grad)
    torch.manual_seed(3)
    out = twin(ids)
    twin.backward(grad)
    del out
    assert layer.synthesizer.combination_matrix is None
    for (name, p), q in zip(layer.named_parameters(), twin.parameters()):
        torch.testing.assert_close(q.grad, p.grad, atol=1e-6, rtol=1e-6, msg=name)


# ---------------------------------------------------------------------- one synthesis per distinct id
@pytest.mark.parametrize("rank", [None, 2])
def test_deduplicated_combination_equals_the_founding_formula(rank: int | None) -> None:
    # Repeated ids, a padding id, hidden (forced) positions, side features and a rate
    # tensor: the fast path (distinct rows, fused blend) against the founding formula
    # sigmoid(concat(row, side) @ C + b) in plain torch.
    side = features().double()
    torch.manual_seed(0)
    layer = SyntheticEmbeddingLayer(
        V,
        D,
        side_features=side,
        padding_idx=0,
        train_synthetic_fraction=0.4,
        technique="combination",
        rank=rank,
        **Combination.FOUNDING,
    ).double()
    ids = torch.randint(0, 8, (6, 9))
    ids[0, :3] = 0
    grad = torch.randn(6, 9, D, dtype=torch.float64)
    rate = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(1)
    out = layer(ids, synthesis_rate=rate)
    out.backward(grad)

    torch.manual_seed(1)
    forced = (torch.rand(ids.shape) < 0.4) & (ids != 0)
    assert forced.any() and (~forced & (ids != 0)).any()
    w = layer.weight.detach().clone().requires_grad_()
    synth = layer.synthesizer
    params = {n: p.detach().clone().requires_grad_() for n, p in synth.named_parameters()}
    r = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    rows = w[ids]
    x = torch.cat([rows * (~forced).unsqueeze(-1), side[ids]], dim=-1)
    c = params["combination_matrix"] if rank is None else params["factor_u"] @ params["factor_v"]
    s = torch.sigmoid(x @ c + params["bias"]) * (ids != 0).unsqueeze(-1)
    r_eff = torch.where(forced.unsqueeze(-1), torch.ones((), dtype=torch.float64), r)
    ref = (1 - r_eff) * rows + r_eff * s
    ref.backward(grad)

    torch.testing.assert_close(out, ref)
    assert torch.equal(layer.weight.grad[0], torch.zeros(D, dtype=torch.float64))  # padding row
    torch.testing.assert_close(layer.weight.grad[1:], w.grad[1:])
    for name, p in synth.named_parameters():
        torch.testing.assert_close(p.grad, params[name].grad, msg=name)
    torch.testing.assert_close(rate.grad, r.grad)


@pytest.mark.parametrize("align", ["mse", "cosine"])
def test_autoencoder_loss_on_distinct_rows_equals_the_loss_over_positions(align: str) -> None:
    layer = build("autoencoder", True, align=align).double()
    ids = torch.tensor([[1, 1, 1, 2], [3, 1, 2, 5]])
    layer(ids)
    deduplicated = layer.get_loss()
    synth = layer.synthesizer
    assert layer.side_features is not None
    synth(ids, layer.base(ids), layer.side_features[ids])  # every position, no counts
    torch.testing.assert_close(deduplicated, synth.aux_loss())


def test_per_id_technique_sees_each_distinct_id_once() -> None:
    calls: list[torch.Tensor] = []

    @register_technique("recorder")
    class Recorder(Synthesizer):
        def forward(self, index, rows, side, visible=None):  # type: ignore[no-untyped-def]
            calls.append(index.clone())
            return torch.zeros_like(rows)

    try:
        layer = SyntheticEmbeddingLayer(V, D, synthesis_rate=0.5, technique="recorder")
        ids = torch.tensor([[4, 2, 4], [9, 2, 4]])
        out = layer(ids)
        assert calls[-1].tolist() == [2, 4, 9]  # per_id (the default): distinct ids
        torch.testing.assert_close(out, 0.5 * layer.base(ids))
        Recorder.per_id = False  # a technique that draws noise per position: every position
        torch.testing.assert_close(layer(ids), out)
        assert torch.equal(calls[-1], ids)
    finally:
        del TECHNIQUES["recorder"]


def test_gan_sees_every_position_in_training() -> None:
    assert TECHNIQUES["gan"].per_id is False
    assert all(TECHNIQUES[n].per_id for n in ("combination", "autoencoder", "manifold"))


def test_renamed_technique_options_warn_and_still_work() -> None:
    side = torch.rand(V, F)
    with pytest.warns(
        DeprecationWarning, match="The 'gan' option hidden= is deprecated; use hidden_dims="
    ):
        gan = SyntheticEmbeddingLayer(V, D, technique="gan", side_features=side, hidden=32)
    assert gan.synthesizer.hidden_dims == (32,)
    assert gan.synthesizer.get_options()["hidden_dims"] == [32]
    deep = SyntheticEmbeddingLayer(V, D, technique="gan", side_features=side, hidden_dims=(16, 8))
    assert [
        m.out_features for m in deep.synthesizer.generator if isinstance(m, torch.nn.Linear)
    ] == [16, 8, D]
    with pytest.warns(DeprecationWarning, match="option random_state= is deprecated; use seed="):
        old = SyntheticEmbeddingLayer(
            V, D, technique="manifold", side_features=side, random_state=3
        )
    assert old.synthesizer.seed == 3
    with pytest.raises(ConfigError, match="got both hidden= \\(deprecated\\) and hidden_dims="):
        SyntheticEmbeddingLayer(
            V, D, technique="gan", side_features=side, hidden=3, hidden_dims=(4,)
        )


def test_combination_tower_options() -> None:
    side = features()
    tower = {"technique": "combination"}
    normed = SyntheticEmbeddingLayer(
        V, D, side_features=side, norm=True, hidden_dims=(8, 4), **tower
    )
    synth = normed.synthesizer
    assert isinstance(synth, Combination) and synth.side_norm is not None
    assert synth.row_norm is None  # with side features the row is not read (rows=None)
    widths = [m.out_features for m in synth.tower if isinstance(m, nn.Linear)]
    assert synth.combination_matrix.shape == (F, 8) and widths == [4, D]
    assert sum(isinstance(m, nn.LayerNorm) for m in synth.tower) == 2
    with_rows = SyntheticEmbeddingLayer(V, D, side_features=side, rows=True, **tower).synthesizer
    assert with_rows.combination_matrix.shape == (D + F, 256)
    with pytest.raises(ConfigError, match=r"rows=False.*has none"):
        SyntheticEmbeddingLayer(V, D, rows=False)
    with pytest.raises(ConfigError, match="'output' parameter of Combination must be one of"):
        SyntheticEmbeddingLayer(V, D, output="tanh")
    with pytest.raises(ConfigError, match="'dropout' parameter of Combination"):
        SyntheticEmbeddingLayer(V, D, dropout=1.0)


@pytest.mark.parametrize(("name", "cls"), [("gelu", nn.GELU), ("tanh", nn.Tanh), ("relu", nn.ReLU)])
def test_combination_activation(name: str, cls: type[nn.Module]) -> None:
    layer = SyntheticEmbeddingLayer(
        V, D, side_features=features(), technique="combination", activation=name
    )
    synth = layer.synthesizer
    assert [type(m) for m in synth.tower] == [cls, nn.Linear]
    assert synth.get_options()["activation"] == name
    x = torch.randn(3, F)
    h = x @ synth.combination_matrix + synth.bias
    assert torch.allclose(synth.combine_features(x), synth.tower[1](cls()(h)), atol=1e-6)


def test_combination_activation_must_be_known() -> None:
    with pytest.raises(
        ConfigError,
        match=r"'activation' parameter of Combination must be one of 'gelu', 'tanh', 'relu'\. "
        r"Got 'swish' instead",
    ):
        SyntheticEmbeddingLayer(V, D, activation="swish")
