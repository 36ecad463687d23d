"""Config, save/load and device/dtype of the numerical embeddings."""

from __future__ import annotations

import torch

import synthembed
from synthembed.layers.numerical import PeriodicEmbedding, PiecewiseLinearEmbedding


def test_numerical_embeddings_round_trip_bit_for_bit(tmp_path) -> None:
    x = torch.rand(7, dtype=torch.float64)
    for layer in (
        PeriodicEmbedding(4, 3, sigma=0.5, dtype=torch.float64),
        PiecewiseLinearEmbedding([0.0, 0.3, 1.0], 3, dtype=torch.float64),
    ):
        assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()
        path = tmp_path / f"{type(layer).__name__}.safetensors"
        synthembed.save(layer, path)
        loaded = synthembed.load(path)
        assert torch.equal(loaded(x), layer(x))
        assert all(p.dtype == torch.float64 for p in loaded.parameters())


def test_numerical_embeddings_take_device_and_dtype() -> None:
    p = PeriodicEmbedding(2, 3, device="meta", dtype=torch.float16)
    assert {t.device.type for t in p.parameters()} == {"meta"}
    assert {t.dtype for t in p.parameters()} == {torch.float16}
    assert "sigma=0.5" in repr(PeriodicEmbedding(2, 3, sigma=0.5))
