"""Synthesis techniques: how vectors are made rather than stored.

One module per technique, each registered by name in :data:`TECHNIQUES`:

- ``combination`` (the layer's default without side features): a content tower,
  an MLP (LayerNorm optional) over the side features (and the base row without
  them); the founding formula ``sigmoid(concat(row, side) @ C + b)`` is
  ``Combination.FOUNDING``;
- ``autoencoder`` (the layer's default with side features): a tanh bottleneck
  encoder of side features (or the base row), with reconstruction and alignment
  losses;
- ``gan``: conditional generator against a discriminator of learned rows;
- ``manifold``: scikit-learn manifold coordinates mapped linearly to ``D``;
- ``subword``: a word's vector from its spelling (fastText's hashed character n-grams).

Add your own with :func:`register_technique`.
"""

from synthembed.synthesis.autoencoder import Autoencoder
from synthembed.synthesis.base import (
    TECHNIQUES,
    Synthesizer,
    get_technique,
    lookup_rows,
    make_synthesizer,
    register_technique,
)
from synthembed.synthesis.combination import Combination
from synthembed.synthesis.gan import Gan
from synthembed.synthesis.manifold import Manifold
from synthembed.synthesis.subword import Subword

__all__ = [
    "TECHNIQUES",
    "Autoencoder",
    "Combination",
    "Gan",
    "Manifold",
    "Subword",
    "Synthesizer",
    "get_technique",
    "lookup_rows",
    "make_synthesizer",
    "register_technique",
]
