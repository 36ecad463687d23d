"""Bases: where stored vectors live. A registry, and one module per base.

A base maps integer ids of any shape ``(*)`` to ``(*, embedding_dim)`` vectors
(see :class:`~synthembed.layers.bases.registry.Base` for the interface). Each is
a layer usable alone and a ``base=`` of :class:`~synthembed.SyntheticEmbeddingLayer`:

- ``"full"``  :class:`~synthembed.Embedding`: a dense table (:mod:`.full`).
- ``"hash"``  :class:`HashEmbedding`: k hash functions into a shared pool of rows,
  mixed by learned per-id importance weights (:mod:`.hash`).
- ``"qr"``  :class:`QREmbedding`: quotient-remainder compositional embeddings (:mod:`.qr`).
- ``"dhe"``  :class:`DHEEmbedding`: deep hash embedding, no table at all (:mod:`.dhe`).
- ``"lowrank"``  :class:`LowRankEmbedding`: a factorised table (:mod:`.lowrank`).
- ``"mixed"``  :class:`MixedDimEmbedding`: frequency-aware mixed dimensions (:mod:`.mixed`).

**Ids are 64-bit.** ``hash``, ``qr`` and ``dhe`` hash their ids (with the
stable primitive of :mod:`.hashing`), so they take any id in ``[0, 2**63 - 1]``
(raw user ids, say) without a vocabulary: for them ``num_embeddings`` is the
number of ids the tables are *sized* for, not a hard bound, and only negative ids
are rejected (their class attribute ``accepts_any_id`` is True). ``lowrank`` and
``mixed`` hold a row (or a rank) per id and check ids against
``[0, num_embeddings)`` like :class:`~synthembed.Embedding`.

Importing this package registers every base above; :mod:`.registry` itself
imports none of them.
"""

# Importing a base module registers its base (registry.py imports none of them).
from synthembed.layers.bases.dhe import DHEDistribution, DHEEmbedding
from synthembed.layers.bases.full import Embedding
from synthembed.layers.bases.hash import HashEmbedding
from synthembed.layers.bases.hashing import hash_ids, mix64
from synthembed.layers.bases.lowrank import LowRankEmbedding
from synthembed.layers.bases.mixed import MixedDimEmbedding
from synthembed.layers.bases.qr import QREmbedding, QROperation, qr_partition_sizes
from synthembed.layers.bases.registry import (
    BASES,
    Base,
    base_names,
    get_base,
    make_base,
    register_base,
)

__all__ = [
    "BASES",
    "Base",
    "DHEDistribution",
    "DHEEmbedding",
    "Embedding",
    "HashEmbedding",
    "LowRankEmbedding",
    "MixedDimEmbedding",
    "QREmbedding",
    "QROperation",
    "base_names",
    "get_base",
    "hash_ids",
    "make_base",
    "mix64",
    "qr_partition_sizes",
    "register_base",
]
