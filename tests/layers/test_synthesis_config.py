"""synthembed.layers.synthesis_config: SynthesisConfig, the rate (fixed, scheduled, learned)
and configure_synthesis."""

from __future__ import annotations

import pytest
import torch

from synthembed.errors import (
    ConfigError,
)
from synthembed.layers.synthetic_embedding import (
    SyntheticEmbeddingLayer,
)

V, D, F = 30, 8, 4


def test_linear_schedule_rises_from_zero_over_training_steps() -> None:
    layer = SyntheticEmbeddingLayer(V, D, synthesis_rate=0.4, schedule=("linear", 4))
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
    layer = SyntheticEmbeddingLayer(V, D, synthesis_rate=0.2, adaptive=True)
    assert layer.rate_logit is not None
    assert float(layer.current_rate().detach()) == pytest.approx(0.2)
    layer(torch.tensor([1, 2, 3])).pow(2).sum().backward()
    assert layer.rate_logit.grad is not None and layer.rate_logit.grad.item() != 0.0
    with pytest.raises(ConfigError, match=r"open range \(0, 1\)"):
        SyntheticEmbeddingLayer(V, D, synthesis_rate=0.0, adaptive=True)


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
    layer = SyntheticEmbeddingLayer(V, D, synthesis_rate=0.2)
    config, synth = layer.config, layer.synthesizer
    with pytest.raises(error, match=match):
        layer.configure_synthesis(**kwargs)
    assert layer.config is config and layer.synthesizer is synth


def test_configure_same_technique_keeps_trained_synthesizer() -> None:
    layer = SyntheticEmbeddingLayer(V, D)
    synth = layer.synthesizer
    layer.configure_synthesis(technique="combination")
    assert layer.synthesizer is synth
