"""Draw new synthetic vectors from a layer's synthesizer: data augmentation.

The founding documents list data augmentation among the uses of synthetic
embeddings: a synthesizer that maps side features to vectors can make vectors
for items that do not exist, extra training points for a downstream model.
:func:`sample` (also ``SyntheticEmbeddingLayer.sample``) draws them:

- with ``side_features``: one vector per given feature row, as the layer would
  serve a cold item with those features (techniques that synthesize from side
  features: ``combination``, ``autoencoder``, ``gan``);
- without: new points between existing items: two random items' cold vectors,
  mixed with a uniform weight (mixup, Zhang et al. 2018).

``gan`` draws its generator's noise; the other techniques are deterministic, so
a Gaussian perturbation of ``noise`` times each dimension's spread across the
sample is added (``noise=0`` turns it off).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from synthembed._validation import check_int
from synthembed.errors import ConfigError
from synthembed.layers.synthesis_config import align_columns, check_side_features

if TYPE_CHECKING:
    from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer

__all__ = ["sample"]


def sample(
    layer: SyntheticEmbeddingLayer,
    n: int,
    side_features: Any = None,
    *,
    seed: int | None = None,
    noise: float = 0.1,
) -> torch.Tensor:
    """``n`` new synthetic vectors from ``layer``'s synthesizer -> ``(n, D)``, no gradient.

    Args:
        layer: a :class:`~synthembed.SyntheticEmbeddingLayer`.
        n: how many vectors.
        side_features: ``(n, F)`` features to synthesize from (tensor, numpy
            array, list or DataFrame), or None to mix existing items.
        seed: makes the draw reproducible (torch's global generator is left as
            it was); None draws from it.
        noise: Gaussian perturbation, as a fraction of each dimension's
            standard deviation over the sample (``>= 0``).

    Raises:
        ConfigError: ``n`` < 1, ``noise`` < 0, side features for a technique
            that synthesizes from ids (``manifold``, ``subword``), or of the wrong
            width; nothing is drawn.
    """
    check_int("sample", "n", n, 1)
    if not (isinstance(noise, (int, float)) and noise >= 0):
        raise ConfigError(f"noise must be a number >= 0; got {noise!r}.")
    synth = layer.synthesizer
    device, dtype = layer.weight.device, layer.weight.dtype
    side: torch.Tensor | None = None
    if side_features is not None:
        if synth.id_tables:
            raise ConfigError(
                f"The {synth.technique!r} technique synthesizes from ids, not from side "
                "features: call sample(n) without side_features to mix existing items."
            )
        if layer.side_features is None:
            raise ConfigError(
                "This layer was built without side features; call sample(n) without them."
            )
        aligned = align_columns(side_features, layer.side_feature_names, "side_features")
        side = check_side_features(aligned, n, "side_features").to(device=device, dtype=dtype)
        if side.shape[1] != layer.side_features.shape[1]:
            raise ConfigError(
                f"side_features must have shape ({n}, {layer.side_features.shape[1]}); got "
                f"{tuple(side.shape)}."
            )
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, enabled=seed is not None), torch.no_grad():
        if seed is not None:
            torch.manual_seed(seed)
        with synth.replay(synth.last_record()):  # our forward leaves no loss record behind
            was_training = synth.training
            synth.train(synth.technique == "gan")  # the generator draws noise in training mode
            try:
                if side is not None:
                    out = _cold(layer, torch.zeros(n, dtype=torch.long, device=device), side)
                else:
                    out = _mixup(layer, n)
            finally:
                synth.train(was_training)
        if noise > 0 and synth.technique != "gan" and n > 1:
            out = out + noise * out.std(0, keepdim=True) * torch.randn_like(out)
    return out


def _cold(
    layer: SyntheticEmbeddingLayer, ids: torch.Tensor, side: torch.Tensor | None
) -> torch.Tensor:
    """What the synthesizer alone makes for ``ids`` (their base rows hidden)."""
    rows = torch.zeros(len(ids), layer.embedding_dim, device=ids.device, dtype=layer.weight.dtype)
    visible = torch.zeros(len(ids), dtype=torch.bool, device=ids.device)
    return layer.synthesizer(ids, rows, side, visible)


def _mixup(layer: SyntheticEmbeddingLayer, n: int) -> torch.Tensor:
    """Mix the cold vectors of random pairs of existing (non-padding) ids."""
    device = layer.weight.device
    pool = torch.arange(layer.num_embeddings, device=device)
    if layer.padding_idx is not None:
        pool = pool[pool != layer.padding_idx]
    pick = pool[torch.randint(len(pool), (2, n), device=device)]  # (2, n)
    side = layer.side_features
    a = _cold(layer, pick[0], None if side is None else side[pick[0]])
    b = _cold(layer, pick[1], None if side is None else side[pick[1]])
    lam = torch.rand(n, 1, device=device, dtype=a.dtype)
    return lam * a + (1 - lam) * b
