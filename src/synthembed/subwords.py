"""Vectors from spelling: character n-grams hashed into buckets, as fastText does.

A word's vector is the mean of the vectors of its character n-grams (Bojanowski
et al. 2017, "Enriching Word Vectors with Subword Information"), so any token,
including one never seen, gets a vector. :class:`SubwordEmbedding` is that
model as a module; :meth:`SubwordEmbedding.fit_to` fits it to reproduce a set of
pretrained vectors (the MIMICK / BoS idea: Pinter et al. 2017, Zhao et al. 2018)
so it can answer for words outside that set.

N-grams and buckets follow fastText exactly: the word is wrapped in ``<`` and
``>``, n-grams of ``min_n`` to ``max_n`` *characters* are taken (a multi-byte
UTF-8 character is never split), the one-character n-grams of the boundary
markers are skipped, and each n-gram is hashed with 32-bit FNV-1a over its UTF-8
bytes (each byte sign-extended, as fastText's ``int8_t`` cast does) modulo the
number of buckets. The same word therefore lands in the same buckets as in a
fastText model with the same ``bucket``, ``minn`` and ``maxn``.

Example:
    >>> char_ngrams("where", 3, 3)
    ['<wh', 'whe', 'her', 'ere', 're>']
    >>> emb = SubwordEmbedding(64, embedding_dim=8, num_buckets=1000, seed=0)
    >>> emb(["where", "whereabouts"]).shape
    torch.Size([2, 8])
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from synthembed.errors import ConfigError

__all__ = [
    "SubwordEmbedding",
    "char_ngrams",
    "fnv1a",
    "ngram_bags",
    "ngram_buckets",
    "select_bags",
]

_FNV_OFFSET = 2166136261
_FNV_PRIME = 16777619


def fnv1a(text: str) -> int:
    """fastText's 32-bit FNV-1a hash of ``text``'s UTF-8 bytes (bytes sign-extended).

    Example:
        >>> fnv1a("<wh")
        1048167652
    """
    h = _FNV_OFFSET
    for byte in text.encode("utf-8"):
        h ^= byte | 0xFFFFFF00 if byte >= 0x80 else byte  # fastText: uint32_t(int8_t(byte))
        h = (h * _FNV_PRIME) & 0xFFFFFFFF
    return h


def _check_range(min_n: int, max_n: int) -> None:
    if not (isinstance(min_n, int) and isinstance(max_n, int) and 1 <= min_n <= max_n):
        raise ConfigError(
            f"N-gram lengths must satisfy 1 <= min_n <= max_n; got min_n={min_n!r}, "
            f"max_n={max_n!r}."
        )


def char_ngrams(word: str, min_n: int = 3, max_n: int = 6) -> list[str]:
    """The character n-grams of ``<word>``, in fastText's order.

    Lengths run from ``min_n`` to ``max_n`` characters; the lone boundary
    markers ``<`` and ``>`` are not n-grams.

    Example:
        >>> char_ngrams("ab", 1, 2)
        ['<a', 'a', 'ab', 'b', 'b>']
    """
    _check_range(min_n, max_n)
    chars = "<" + word + ">"
    out = []
    size = len(chars)
    for i in range(size):
        for n in range(1, max_n + 1):
            if i + n > size:
                break
            if n >= min_n and not (n == 1 and (i == 0 or i + n == size)):
                out.append(chars[i : i + n])
    return out


@functools.lru_cache(maxsize=1 << 18)
def _buckets(word: str, num_buckets: int, min_n: int, max_n: int) -> tuple[int, ...]:
    return tuple(fnv1a(g) % num_buckets for g in char_ngrams(word, min_n, max_n))


def ngram_buckets(word: str, num_buckets: int, min_n: int = 3, max_n: int = 6) -> list[int]:
    """Bucket ids of ``word``'s n-grams (``fnv1a(ngram) % num_buckets``).

    Example:
        >>> ngram_buckets("where", 2_000_000, 3, 3)
        [167652, 420941, 1473420, 1529033, 867498]
    """
    if not isinstance(num_buckets, int) or num_buckets < 1:
        raise ConfigError(f"num_buckets must be a positive int; got {num_buckets!r}.")
    _check_range(min_n, max_n)
    return list(_buckets(str(word), num_buckets, min_n, max_n))


def ngram_bags(
    words: Sequence[str], num_buckets: int, min_n: int = 3, max_n: int = 6
) -> tuple[torch.Tensor, torch.Tensor]:
    """The n-gram buckets of many words as one flat bag list, for ``F.embedding_bag``.

    Returns:
        ``(buckets, offsets)``: ``buckets`` ``(N,)`` long, every word's buckets in
        turn; ``offsets`` ``(len(words) + 1,)`` long, word ``i`` owning
        ``buckets[offsets[i]:offsets[i + 1]]``.
    """
    if isinstance(words, str):
        raise ConfigError("ngram_bags takes a sequence of words; got one string. Wrap it: [word].")
    flat: list[int] = []
    offsets = [0]
    for word in words:
        flat.extend(ngram_buckets(word, num_buckets, min_n, max_n))
        offsets.append(len(flat))
    return torch.tensor(flat, dtype=torch.long), torch.tensor(offsets, dtype=torch.long)


def select_bags(
    buckets: torch.Tensor, offsets: torch.Tensor, ids: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The bags of words ``ids`` out of :func:`ngram_bags` output, for ``F.embedding_bag``.

    Returns:
        ``(buckets, starts)``: the chosen words' buckets in turn and where each bag starts.
    """
    starts = offsets[ids]
    sizes = offsets[ids + 1] - starts
    # flat positions of each chosen word's buckets: starts[i] .. starts[i] + sizes[i] - 1
    shift = torch.repeat_interleave(starts - sizes.cumsum(0) + sizes, sizes)
    pos = shift + torch.arange(int(sizes.sum()), device=ids.device)
    return buckets[pos], torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])


class SubwordEmbedding(nn.Module):
    """A vector for any word: the mean of its hashed character n-gram vectors.

    Args:
        num_embeddings: kept for the family's signature; the number of *buckets* is
            ``num_buckets`` and any word is accepted, so this is informational
            (the number of words the model was fitted on, or 0).
        embedding_dim: size ``D`` of the vectors.
        num_buckets: rows of the n-gram table. fastText uses 2,000,000; the
            default 262,144 rows (128 MiB at D=128, float32) keeps the table
            small; raise it for vocabularies well beyond 100k words.
        min_n, max_n: n-gram lengths in characters (fastText: 3 and 6).
        seed: seeds the table's initialisation (``N(0, 1 / D)``); None draws from
            torch's global generator.
        device, dtype: of the table.

    Shape:
        Input: a list of ``B`` words -> Output: ``(B, D)``.
    """

    def __init__(
        self,
        num_embeddings: int = 0,
        embedding_dim: int = 100,
        *,
        num_buckets: int = 1 << 18,
        min_n: int = 3,
        max_n: int = 6,
        seed: int | None = None,
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if not isinstance(embedding_dim, int) or embedding_dim < 1:
            raise ConfigError(f"embedding_dim must be a positive int; got {embedding_dim!r}.")
        if not isinstance(num_buckets, int) or num_buckets < 1:
            raise ConfigError(f"num_buckets must be a positive int; got {num_buckets!r}.")
        _check_range(min_n, max_n)
        super().__init__()
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = embedding_dim
        self.num_buckets = num_buckets
        self.min_n, self.max_n = min_n, max_n
        self.seed = seed
        self.weight = nn.Parameter(
            torch.empty(num_buckets, embedding_dim, device=device, dtype=dtype)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``N(0, 1 / D)``, so a mean of ~20 n-gram rows starts with norm ~ 1 / sqrt(20 / D)."""
        gen = None
        if self.seed is not None:
            gen = torch.Generator(device=self.weight.device).manual_seed(self.seed)
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0 / math.sqrt(self.embedding_dim), generator=gen)

    def bags(self, words: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`ngram_bags` of ``words`` with this model's settings, on its device."""
        buckets, offsets = ngram_bags(words, self.num_buckets, self.min_n, self.max_n)
        return buckets.to(self.weight.device), offsets.to(self.weight.device)

    def embed_bags(self, buckets: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Mean n-gram vectors of prepared bags (``offsets`` with the final end) -> ``(B, D)``."""
        return F.embedding_bag(
            buckets, self.weight, offsets[:-1], mode="mean", include_last_offset=False
        )

    def forward(self, words: Sequence[str]) -> torch.Tensor:
        if isinstance(words, str):
            raise ConfigError(
                f"SubwordEmbedding takes a list of words; got the string {words!r}. "
                "Wrap it: [word]."
            )
        return self.embed_bags(*self.bags(words))

    def fit_to(
        self,
        words: Sequence[str],
        vectors: torch.Tensor,
        *,
        epochs: int = 10,
        lr: float = 0.05,
        batch_size: int = 256,
        loss: str = "mse",
        init: str = "average",
        seed: int = 0,
    ) -> SubwordEmbedding:
        """Fit the n-gram table so that ``self(words)`` reproduces ``vectors``.

        ``init="average"`` first sets each n-gram's row to the mean vector of the
        words holding it (n-grams no word holds get the mean of all vectors), a
        closed-form start that already answers for unseen words; training then
        refines it with Adagrad on the touched n-gram rows, shuffled mini-batches.
        ``loss="mse"`` matches vectors; ``"cosine"`` only their directions. The
        defaults measured best on held-out words (benchmarks/subwords.py): the
        table fits the training words almost exactly (cosine ~0.97) and more
        epochs only overfit.

        Args:
            words: ``N`` words.
            vectors: ``(N, D)`` their target vectors.
            epochs, lr, batch_size: the training schedule.
            loss: ``"mse"`` or ``"cosine"``.
            init: ``"average"`` (the closed-form start above) or ``"keep"`` (train
                from the current table).
            seed: seeds the batch order.

        Returns:
            self.

        Raises:
            ConfigError: mismatched sizes or an unknown loss, before any update.
        """
        target = torch.as_tensor(vectors, dtype=self.weight.dtype, device=self.weight.device)
        if target.dim() != 2 or target.shape != (len(words), self.embedding_dim):
            raise ConfigError(
                f"vectors must have shape ({len(words)}, {self.embedding_dim}) for "
                f"{len(words)} words; got {tuple(target.shape)}."
            )
        if loss not in ("cosine", "mse"):
            raise ConfigError(f"loss must be 'mse' or 'cosine'; got {loss!r}.")
        if init not in ("average", "keep"):
            raise ConfigError(f"init must be 'average' or 'keep'; got {init!r}.")
        for name, value in (("epochs", epochs), ("batch_size", batch_size)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive int; got {value!r}.")
        if not lr > 0:
            raise ConfigError(f"lr must be > 0; got {lr!r}.")
        buckets, offsets = self.bags(words)
        lengths = offsets.diff()
        if init == "average":
            self._average_init(buckets, lengths, target)
        gen = torch.Generator().manual_seed(seed)
        table = nn.Parameter(self.weight.detach())
        optimizer = torch.optim.Adagrad([table], lr=lr)
        for _ in range(epochs):
            for batch in torch.randperm(len(words), generator=gen).split(batch_size):
                batch = batch.to(buckets.device)
                chosen, starts = select_bags(buckets, offsets, batch)
                out = F.embedding_bag(chosen, table, starts, mode="mean", sparse=True)
                goal = target[batch]
                if loss == "cosine":
                    err = (1.0 - F.cosine_similarity(out, goal, dim=-1)).mean()
                else:
                    err = F.mse_loss(out, goal)
                optimizer.zero_grad()
                err.backward()
                # torch warns unless sparse checks are set explicitly; our indices are valid
                with torch.sparse.check_sparse_tensor_invariants(enable=False):
                    optimizer.step()
        with torch.no_grad():
            self.weight.copy_(table)
        self.num_embeddings = len(words)
        return self

    @torch.no_grad()
    def _average_init(
        self, buckets: torch.Tensor, lengths: torch.Tensor, target: torch.Tensor
    ) -> None:
        """Each n-gram row := the mean target of the words holding it."""
        owner = torch.repeat_interleave(torch.arange(len(lengths), device=buckets.device), lengths)
        sums = torch.zeros_like(self.weight).index_add_(0, buckets, target[owner])
        counts = torch.zeros(self.num_buckets, device=buckets.device, dtype=target.dtype)
        counts.index_add_(0, buckets, torch.ones_like(buckets, dtype=target.dtype))
        held = (counts > 0).unsqueeze(1)
        self.weight.copy_(
            torch.where(held, sums / counts.clamp_min(1).unsqueeze(1), target.mean(0))
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_embeddings}, {self.embedding_dim}, num_buckets={self.num_buckets}, "
            f"min_n={self.min_n}, max_n={self.max_n}"
        )
