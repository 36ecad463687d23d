"""Look tokens up in a vocabulary-bound synthetic layer; unseen words spelled, not ``<unk>``.

``SyntheticEmbeddingLayer(vocab=..., technique="subword").lookup(tokens)``
encodes the tokens with the bound vocabulary and looks the ids up; a token the
vocabulary does not hold, which the vocabulary would map to ``<unk>`` (or a
hashed bucket), gets the vector its spelling synthesizes instead when the
technique can spell (``synthesize_tokens``; the ``subword`` technique). Other
techniques serve such tokens as the vocabulary's OOV policy says.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch

from synthembed.errors import ConfigError
from synthembed.synthesis import get_technique
from synthembed.vocab import Vocabulary

if TYPE_CHECKING:
    from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer

__all__ = ["TokenLookup", "bind_vocab", "lookup_tokens"]


def bind_vocab(
    vocab: Vocabulary | None,
    num_embeddings: int | None,
    padding_idx: int | None,
    technique: str,
    options: dict[str, Any],
) -> tuple[int | None, int | None]:
    """Defaults a bound vocabulary gives: ``num_embeddings=len(vocab)``, its pad id,
    and its words as ``tokens`` for a technique that takes them (``subword``;
    ``options`` is updated in place).

    Raises:
        ConfigError: ``vocab`` is not a Vocabulary, or has more ids than the layer.
    """
    if vocab is None:
        return num_embeddings, padding_idx
    if not isinstance(vocab, Vocabulary):
        raise ConfigError(f"vocab must be a synthembed.Vocabulary; got {type(vocab).__name__}.")
    if num_embeddings is None:
        num_embeddings = len(vocab)
    if len(vocab) > num_embeddings:
        raise ConfigError(
            f"The vocabulary has {len(vocab)} ids but num_embeddings={num_embeddings}; "
            f"num_embeddings must be >= {len(vocab)}."
        )
    if padding_idx is None:
        padding_idx = vocab.pad_id
    if "tokens" in get_technique(technique).option_names() and "tokens" not in options:
        words = [str(t) for t in vocab.index_to_key]
        options["tokens"] = words + [""] * (num_embeddings - len(words))
    return num_embeddings, padding_idx


class TokenLookup:
    """Mixin of :class:`~synthembed.SyntheticEmbeddingLayer`: tokens in, vectors out."""

    vocab: Vocabulary | None

    def lookup(self, tokens: Any, *, max_length: int | None = None) -> torch.Tensor:
        """Encode tokens with the bound vocabulary and look them up; with the
        ``subword`` technique a word the vocabulary lacks is spelled, not ``<unk>``.

        A token gives ``(D,)``, a sequence ``(L, D)``, a batch of sequences ``(B, L, D)``.
        """
        return lookup_tokens(self, self.vocab, tokens, max_length=max_length)  # type: ignore[arg-type]


def _positions(tokens: Any, max_length: int | None) -> list[tuple[tuple[int, ...], Any]]:
    """Every token with its index in the encoded output (after truncation)."""
    if isinstance(tokens, (str, int)) or not isinstance(tokens, Iterable):
        return [((), tokens)]
    items = tokens.tolist() if hasattr(tokens, "tolist") else list(tokens)
    if items and all(not isinstance(t, (str, bytes)) and isinstance(t, Iterable) for t in items):
        out: list[tuple[tuple[int, ...], Any]] = []
        for i, seq in enumerate(items):
            seq = list(seq)[:max_length] if max_length is not None else list(seq)
            out.extend(((i, j), t) for j, t in enumerate(seq))
        return out
    if max_length is not None:
        items = items[:max_length]
    return [((j,), t) for j, t in enumerate(items)]


def lookup_tokens(
    layer: SyntheticEmbeddingLayer,
    vocab: Vocabulary | None,
    tokens: Any,
    *,
    max_length: int | None = None,
) -> torch.Tensor:
    """Vectors of ``tokens``: a token ``(D,)``, a sequence ``(L, D)``, a batch ``(B, L, D)``.

    Batches are padded with the vocabulary's ``<pad>`` id (its row, or zeros
    with ``padding_idx``).

    Raises:
        ConfigError: the layer has no bound vocabulary.
        UnknownTokenError: an unknown token under ``oov="error"`` when the
            technique cannot spell it.
    """
    if vocab is None:
        raise ConfigError(
            "SyntheticEmbeddingLayer.lookup needs a bound vocabulary; build the layer with "
            "vocab=Vocabulary.build(...)."
        )
    spell = getattr(layer.synthesizer, "synthesize_tokens", None)
    places = _positions(tokens, max_length)
    unseen = [(where, t) for where, t in places if t not in vocab]
    device = layer.weight.device
    ids = _encode(vocab, tokens, max_length, unseen if spell is not None else [])
    out = layer(ids.to(device))
    if spell is None or not unseen:
        return out
    spelled = spell([str(t) for _, t in unseen]).to(out.dtype)  # (U, D)
    index = tuple(torch.tensor(axis, device=device) for axis in zip(*(w for w, _ in unseen)))
    if not index:  # a single token
        return spelled[0]
    return out.index_put(index, spelled)


def _encode(
    vocab: Vocabulary,
    tokens: Any,
    max_length: int | None,
    spelled: list[tuple[tuple[int, ...], Any]],
) -> torch.Tensor:
    """The ids of ``tokens``; tokens that will be spelled get any valid id (their row is replaced)."""
    if spelled and vocab.oov == "error":
        placeholder = vocab.pad_id if vocab.pad_id is not None else vocab.first_token_id
        swap = {t for _, t in spelled}
        tokens = _replace(tokens, swap, vocab.index_to_key[placeholder])
    if isinstance(tokens, (str, int)) or not isinstance(tokens, Iterable):
        return torch.tensor(vocab.encode(tokens))
    encoded = vocab.encode(tokens, max_length=max_length)
    return encoded if isinstance(encoded, torch.Tensor) else encoded.ids


def _replace(tokens: Any, swap: set[Any], by: Any) -> Any:
    if isinstance(tokens, (str, int)) or not isinstance(tokens, Iterable):
        return by if tokens in swap else tokens
    return [_replace(t, swap, by) for t in tokens]
