"""The ``subword`` technique: a word's vector from its spelling (fastText n-grams).

For a layer whose ids are the words of a vocabulary, each id's synthetic vector
is the mean of its hashed character n-gram vectors
(:class:`synthembed.subwords.SubwordEmbedding`; Bojanowski et al. 2017). Rare
words then borrow from frequent words that share their n-grams, and a word
added later (``layer.add_items(tokens=[...])``) or never seen
(:meth:`Subword.synthesize_tokens`) gets a vector from its spelling rather than
``<unk>``'s.

The technique needs the words: ``technique_options={"tokens": vocab.index_to_key}``
(they are saved with the layer). It reads neither the base row nor side
features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from synthembed.errors import ConfigError
from synthembed.subwords import SubwordEmbedding, ngram_bags, select_bags
from synthembed.synthesis.base import Synthesizer, register_technique

__all__ = ["Subword"]


def _check_tokens(tokens: Any, what: str) -> list[str]:
    if isinstance(tokens, str) or not isinstance(tokens, Sequence):
        raise ConfigError(f"{what} must be a list of strings; got {type(tokens).__name__}.")
    bad = [t for t in tokens if not isinstance(t, str)]
    if bad:
        raise ConfigError(f"{what} must be strings; got {bad[0]!r} ({type(bad[0]).__name__}).")
    return list(tokens)


@register_technique("subword")
class Subword(Synthesizer):
    """Mean hashed character n-gram vectors of each id's word.

    Args:
        num_embeddings, embedding_dim, side_dim: the layer's sizes.
        tokens: the word of each id, ``num_embeddings`` strings (e.g.
            ``vocab.index_to_key``); required.
        num_buckets, min_n, max_n: as in :class:`~synthembed.subwords.SubwordEmbedding`
            (fastText's n-grams of 3 to 6 characters).
        seed: seeds the n-gram table's initialisation.
    """

    uses_rows = False
    id_tables = True
    bag_buckets: torch.Tensor
    bag_offsets: torch.Tensor

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        side_dim: int | None,
        *,
        tokens: Sequence[str] | None = None,
        num_buckets: int = 1 << 18,
        min_n: int = 3,
        max_n: int = 6,
        seed: int = 0,
    ) -> None:
        if tokens is None:
            raise ConfigError(
                "The 'subword' technique makes vectors from the words' spelling: pass "
                "technique_options={'tokens': vocab.index_to_key} (one string per id)."
            )
        words = _check_tokens(tokens, "tokens")
        if len(words) != num_embeddings:
            raise ConfigError(
                f"tokens has {len(words)} words for a layer of {num_embeddings} ids; give one "
                "word per id."
            )
        model = SubwordEmbedding(
            num_embeddings,
            embedding_dim,
            num_buckets=num_buckets,
            min_n=min_n,
            max_n=max_n,
            seed=seed,
        )
        super().__init__(num_embeddings, embedding_dim, side_dim)
        self.model = model
        self.tokens = words
        self.num_buckets, self.min_n, self.max_n, self.seed = num_buckets, min_n, max_n, seed
        buckets, offsets = ngram_bags(words, num_buckets, min_n, max_n)
        # Derived from the tokens (saved in the configuration), so not in the state dict.
        self.register_buffer("bag_buckets", buckets, persistent=False)
        self.register_buffer("bag_offsets", offsets, persistent=False)

    def get_options(self) -> dict[str, Any]:
        return {
            "tokens": list(self.tokens),
            "num_buckets": self.num_buckets,
            "min_n": self.min_n,
            "max_n": self.max_n,
            "seed": self.seed,
        }

    def _vectors_of(self, ids: torch.Tensor) -> torch.Tensor:
        """``(n,)`` ids -> ``(n, D)`` mean n-gram vectors."""
        chosen, starts = select_bags(self.bag_buckets, self.bag_offsets, ids)
        return F.embedding_bag(chosen, self.model.weight, starts, mode="mean")

    def forward(
        self,
        index: torch.Tensor,
        rows: torch.Tensor,
        side: torch.Tensor | None,
        visible: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if index.is_floating_point():  # soft lookup: (*, V) @ every id's vector
            every = self._vectors_of(torch.arange(self.num_embeddings, device=index.device))
            return torch.matmul(index.to(every.dtype), every).to(rows.dtype)
        flat = index.reshape(-1)
        return self._vectors_of(flat).reshape(*index.shape, -1).to(rows.dtype)

    def synthesize_tokens(self, tokens: Sequence[str]) -> torch.Tensor:
        """Vectors of any words, in the layer or not -> ``(len(tokens), D)``."""
        return self.model(_check_tokens(tokens, "tokens"))

    def grow(
        self,
        n: int,
        new_side: torch.Tensor | None,
        old_side: torch.Tensor | None,
        **kwargs: Any,
    ) -> None:
        """Make room for ``n`` new words, given as ``tokens=[...]`` (``n`` strings)."""
        tokens = kwargs.get("tokens")
        if tokens is None:
            raise ConfigError(
                "The 'subword' technique needs the new words: add_items(tokens=[...])."
            )
        words = _check_tokens(tokens, "tokens")
        if len(words) != n:
            raise ConfigError(f"tokens has {len(words)} words for {n} new ids.")
        buckets, offsets = ngram_bags(words, self.num_buckets, self.min_n, self.max_n)
        device = self.bag_buckets.device
        self.bag_buckets = torch.cat([self.bag_buckets, buckets.to(device)])
        self.bag_offsets = torch.cat(
            [self.bag_offsets, offsets[1:].to(device) + self.bag_offsets[-1]]
        )
        self.tokens.extend(words)
        self.num_embeddings += n
        self.model.num_embeddings = self.num_embeddings
