"""Synthesis techniques: how vectors are made rather than stored.

One module per technique, each registered by name in :data:`TECHNIQUES`:

- ``combination``: feature combination, ``sigmoid(concat(row, side) @ C + b)``;
- ``autoencoder``: bottleneck encoder of side features (or the base row), with
  reconstruction and alignment losses;
- ``gan``: conditional generator against a discriminator of learned rows;
- ``manifold``: scikit-learn manifold coordinates mapped linearly to ``D``.

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

__all__ = [
    "TECHNIQUES",
    "Autoencoder",
    "Combination",
    "Gan",
    "Manifold",
    "Synthesizer",
    "get_technique",
    "lookup_rows",
    "make_synthesizer",
    "register_technique",
]
