"""sample(): new synthetic vectors from a layer's synthesizer (data augmentation)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

import synthembed as se
from synthembed.errors import ConfigError
from synthembed.layers.sampling import sample

FEATS = torch.rand(30, 4, generator=torch.Generator().manual_seed(0))


def _layer(technique: str = "combination", **kwargs: object) -> se.SyntheticEmbeddingLayer:
    torch.manual_seed(0)
    return se.SyntheticEmbeddingLayer(30, 6, technique=technique, side_features=FEATS, **kwargs)


def test_from_side_features_is_the_cold_vector_without_noise() -> None:
    layer = _layer().eval()
    new = layer.add_items(FEATS[:3] * 0.5)
    drawn = sample(layer, 3, FEATS[:3] * 0.5, noise=0.0)
    torch.testing.assert_close(drawn, layer(new))  # added ids are cold: served synthetic


def test_seed_reproduces_and_leaves_global_rng_alone() -> None:
    layer = _layer()
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = sample(layer, 5, seed=7)
    b = sample(layer, 5, seed=7)
    assert torch.equal(a, b)
    assert torch.equal(torch.rand(1), expected_next)
    assert not torch.equal(a, sample(layer, 5, seed=8))
    assert a.shape == (5, 6) and not a.requires_grad


def test_mixup_lies_between_items_without_noise() -> None:
    layer = _layer("autoencoder").eval()
    drawn = sample(layer, 200, seed=0, noise=0.0)
    cold = sample(layer, 30, FEATS, noise=0.0)  # every item's own cold vector
    low, high = cold.min(0).values, cold.max(0).values
    assert bool(((drawn >= low - 1e-5) & (drawn <= high + 1e-5)).all())


def test_gan_draws_noise_and_keeps_no_loss_record() -> None:
    layer = _layer("gan").train()
    layer(torch.tensor([1, 2]))
    before = layer.synthesizer.last_record()
    one = sample(layer, 4, FEATS[:4], seed=0)
    two = sample(layer, 4, FEATS[:4], seed=1)
    assert not torch.equal(one, two)  # the generator's noise differs
    assert layer.synthesizer.last_record() is before
    assert layer.synthesizer.training


def test_dataframe_columns_are_matched_by_name() -> None:
    frame = pd.DataFrame(FEATS.numpy(), columns=["a", "b", "c", "d"])
    torch.manual_seed(0)
    layer = se.SyntheticEmbeddingLayer(30, 6, side_features=frame).eval()
    shuffled = frame[["d", "c", "b", "a"]].iloc[:2]
    torch.testing.assert_close(
        sample(layer, 2, shuffled, noise=0.0), sample(layer, 2, FEATS[:2], noise=0.0)
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda layer: sample(layer, 0), "n"),
        (lambda layer: sample(layer, 2, noise=-1.0), "noise must be a number >= 0; got -1.0"),
        (lambda layer: sample(layer, 2, torch.rand(2, 3)), r"shape \(2, 4\); got \(2, 3\)"),
    ],
)
def test_bad_arguments_are_named(call, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call(_layer())


def test_id_techniques_refuse_side_features() -> None:
    layer = _layer("manifold")
    with pytest.raises(ConfigError, match="'manifold' technique synthesizes from ids"):
        sample(layer, 2, FEATS[:2])
    assert sample(layer, 2, seed=0).shape == (2, 6)
