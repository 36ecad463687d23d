"""Word vectors: :class:`Vectors` (words and a ``(V, D)`` table), loading and saving them,
and laying them out in a :class:`~synthembed.vocab.Vocabulary`'s order (:func:`align`).

The file formats (GloVe, word2vec text and binary, fastText ``.vec``, compression,
the parse cache) live in :mod:`synthembed.formats`; search in :mod:`synthembed.search`.
"""

from __future__ import annotations

import difflib
import logging
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

import torch

from synthembed import _kernels
from synthembed._config import DTYPE
from synthembed._validation import check_choice, check_int
from synthembed.errors import ConfigError, ShapeError, UnknownTokenError
from synthembed.formats import (
    ERROR_POLICIES,
    READ_FORMATS,
    WRITE_FORMATS,
    default_cache_dir,
    read_vectors,
    write_vectors,
)
from synthembed.io import register_savable
from synthembed.search import TableWords, check_vectors, most_similar
from synthembed.vocab import VOCABULARY, Vocabulary

__all__ = [
    "CoverageReport",
    "Vectors",
    "align",
    "default_cache_dir",
    "load_vectors",
    "save_vectors",
]

logger = logging.getLogger(__name__)

VectorFormat = Literal["auto", "glove", "word2vec", "fasttext", "word2vec-binary"]
SaveFormat = Literal["glove", "word2vec", "fasttext", "word2vec-binary"]
ErrorPolicy = Literal["raise", "skip"]
InitMode = Literal["normal", "zeros", "mean"]
PathLike = Union[str, "os.PathLike[str]"]

_INITS = ("normal", "zeros", "mean")


@register_savable
class Vectors:
    """Words and their vectors: a :class:`~synthembed.vocab.Vocabulary` and a ``(V, D)`` tensor.

    Row ``i`` of :attr:`vectors` is the vector of ``vocab.index_to_key[i]``.
    ``synthembed.save(vectors, path)`` / ``synthembed.load(path)`` keep them exactly
    (safetensors + JSON); :meth:`save` writes the word-vector file formats instead.

    Args:
        words: the words in row order (distinct), or a Vocabulary with one id per row.
        vectors: a ``(V, D)`` float tensor or array.

    Shape:
        ``vectors``: ``(V, D)``; ``vectors_obj["word"]``: ``(D,)``;
        ``vectors_obj[["a", "b"]]``: ``(2, D)``.

    Example:
        >>> v = Vectors(["cat", "dog"], torch.tensor([[1.0, 0.0], [0.8, 0.6]]))
        >>> v.embedding_dim, len(v), v["dog"].tolist()
        (2, 2, [0.800000011920929, 0.6000000238418579])
        >>> v.most_similar("cat", k=1)
        [('dog', 0.800000011920929)]
    """

    def __init__(
        self,
        words: Sequence[str] | Vocabulary,
        vectors: Any,
        *,
        _trusted: bool = False,
    ) -> None:
        tensor = torch.as_tensor(vectors)
        if tensor.dim() != 2:
            raise ShapeError(
                f"vectors must be a 2-d (V, D) tensor; got shape {tuple(tensor.shape)}."
            )
        if not tensor.is_floating_point():
            raise ShapeError(f"vectors must be floating point; got dtype {tensor.dtype}.")
        if isinstance(words, Vocabulary):
            vocab: Vocabulary | None = words
            word_list = [str(w) for w in words.index_to_key]
        else:
            vocab = None
            word_list = words if isinstance(words, list) and _trusted else list(words)
        if len(word_list) != tensor.shape[0]:
            raise ShapeError(
                f"Got {len(word_list)} words but {tensor.shape[0]} vectors; each row needs one word."
            )
        # The readers have checked for repeats already (_trusted).
        if vocab is None and not _trusted and len(set(word_list)) != len(word_list):
            dupes = [w for w, c in Counter(word_list).items() if c > 1][:5]
            raise ConfigError(f"Vectors words must be distinct; repeated: {dupes!r}.")
        self._words = word_list
        # Built on first lookup: loading a file then building a layer need not hold it at
        # the same time as the parse buffers (peak memory).
        self._index_cache: dict[str, int] | None = None
        self._vocab = vocab
        self.vectors: torch.Tensor = tensor
        self.source: str | None = None
        self.format: str | None = None
        self.skipped: dict[str, int] = {}
        self._unit: tuple[tuple[int, int, int], torch.Tensor] | None = None
        self._unit_low: dict[torch.dtype, torch.Tensor] = {}

    @classmethod
    def from_embedding(cls, layer: Any) -> Vectors:
        """The word vectors of a layer with a bound vocabulary (e.g. a trained
        :class:`~synthembed.Embedding` built with ``vocab=``): one row per regular token,
        specials (``<pad>``, ``<unk>``...) and OOV hash buckets left out. The rows are
        copied (detached), so later training does not change them.

        ``most_similar`` and the ``evaluate_*`` functions take such a layer directly.

        Raises:
            ConfigError: a layer without a vocabulary.

        Example:
            >>> from synthembed import Embedding
            >>> vocab = Vocabulary.build([["cat", "dog", "cat"]])
            >>> emb = Embedding(embedding_dim=4, vocab=vocab)
            >>> v = Vectors.from_embedding(emb)
            >>> v.words, tuple(v.vectors.shape)
            (['cat', 'dog'], (2, 4))
        """
        words = check_vectors(layer, "Vectors.from_embedding")
        if isinstance(words, Vectors):
            return words
        if not isinstance(words, TableWords):
            raise ConfigError(
                f"Vectors.from_embedding expects a layer with a bound vocabulary; got "
                f"{type(layer).__name__}."
            )
        return cls(list(words.index_to_key), words.vectors.clone())

    # -------------------------------------------------------------- basic access
    @property
    def _index(self) -> dict[str, int]:
        if self._index_cache is None:
            self._index_cache = dict(zip(self._words, range(len(self._words))))
        return self._index_cache

    @property
    def vocab(self) -> Vocabulary:
        """The words as a Vocabulary without specials (``oov="error"``): id ``i`` is row ``i``."""
        if self._vocab is None:
            self._vocab = Vocabulary(
                self._words, specials=(), pad_token=None, unk_token=None, oov="error"
            )
        return self._vocab

    @property
    def words(self) -> list[str]:
        """The words in row order (a copy)."""
        return list(self._words)

    @property
    def index_to_key(self) -> Sequence[str]:
        """The words in row order, not copied: read it, do not change it."""
        return self._words

    @property
    def key_to_index(self) -> dict[str, int]:
        """Word to row (a copy)."""
        return dict(self._index)

    @property
    def embedding_dim(self) -> int:
        """The vector size ``D`` (the library's one name for it)."""
        return int(self.vectors.shape[1])

    @property
    def dim(self) -> int:
        """Alias of :attr:`embedding_dim`, kept for existing code."""
        return self.embedding_dim

    def __len__(self) -> int:
        return len(self._words)

    def __contains__(self, word: object) -> bool:
        return word in self._index

    def index(self, word: str) -> int:
        """Row of ``word``; an unknown word raises :class:`~synthembed.errors.UnknownTokenError`."""
        row = self._index.get(word)
        if row is None:
            hint = ""
            if isinstance(word, str) and len(self._words) <= 200_000:
                close = difflib.get_close_matches(word, self._words, n=3)
                if close:
                    hint = f" Close words: {close!r}."
            raise UnknownTokenError(
                f"The word {word!r} has no vector ({len(self._words)} words loaded).{hint}"
            )
        return row

    def __getitem__(self, word: str | Sequence[str]) -> torch.Tensor:
        if isinstance(word, str):
            return self.vectors[self.index(word)]
        rows = [self.index(w) for w in word]
        return self.vectors[torch.tensor(rows, dtype=torch.long)]

    def __repr__(self) -> str:
        src = f", source={self.source!r}" if self.source else ""
        return f"Vectors(num_words={len(self)}, embedding_dim={self.embedding_dim}{src})"

    def unit_vectors(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Rows scaled to unit L2 norm (zero rows stay zero), cached until ``vectors`` changes.

        Args:
            dtype: ``torch.float32``, or ``torch.bfloat16`` for the search prefilter.
        """
        t = self.vectors
        key = (t.data_ptr(), _kernels.tensor_version(t), t.shape[0])
        if self._unit is None or self._unit[0] != key:
            vecs = t.detach().float()
            norms = vecs.norm(dim=1, keepdim=True).clamp_min(1e-12)
            # 2 MiB pages: every search streams through these rows (fewer TLB misses).
            unit = _kernels.empty(vecs.shape[0], vecs.shape[1], dtype=torch.float32)
            torch.div(vecs, norms, out=unit)
            self._unit = (key, unit)
            self._unit_low = {}
        if dtype == torch.float32:
            return self._unit[1]
        if dtype not in self._unit_low:
            low = _kernels.empty(t.shape[0], t.shape[1], dtype=dtype)
            self._unit_low[dtype] = low.copy_(self._unit[1])
        return self._unit_low[dtype]

    def most_similar(self, query: Any, k: int = 10, **options: Any) -> Any:
        """Nearest words by cosine similarity; see :func:`synthembed.search.most_similar`."""
        return most_similar(self, query, k, **options)

    # ----------------------------------------------------------- synthembed.save
    def get_config(self) -> dict[str, Any]:
        """The words (or the bound Vocabulary), ``D`` and dtype; the rows are tensors."""
        return {
            "words": None if self._vocab is not None else list(self._words),
            "vocab": None if self._vocab is None else VOCABULARY.encode(self._vocab),
            "embedding_dim": self.embedding_dim,
            "dtype": DTYPE.encode(self.vectors.dtype),
            "source": self.source,
            "format": self.format,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Vectors:
        """Vectors of the saved words with uninitialised rows (:func:`synthembed.load` fills them)."""
        if not isinstance(config, dict):
            raise ConfigError(f"A Vectors configuration must be a JSON object; got {config!r}.")
        vocab = config.get("vocab")
        words: Sequence[str] | Vocabulary = (
            VOCABULARY.decode(vocab, "Vectors") if vocab is not None else config["words"]
        )
        rows = len(words)
        dtype = DTYPE.decode(config["dtype"], "Vectors")
        # Uninitialised (no zero-fill pass over a large table): load() writes every row.
        out = cls(
            words, torch.empty(rows, int(config["embedding_dim"]), dtype=dtype), _trusted=True
        )
        out.source, out.format = config.get("source"), config.get("format")
        return out

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {"vectors": self.vectors}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        vectors = tensors["vectors"]
        if tuple(vectors.shape) != tuple(self.vectors.shape):
            raise ShapeError(
                f"Saved vectors have shape {tuple(vectors.shape)}; the saved words and "
                f"embedding_dim give {tuple(self.vectors.shape)}."
            )
        self.vectors = vectors
        self._unit, self._unit_low = None, {}

    def save(self, path: PathLike, format: SaveFormat = "word2vec", **options: Any) -> None:
        """Write these vectors to a file; see :func:`save_vectors`."""
        save_vectors(self, path, format=format, **options)


def load_vectors(
    path: PathLike,
    format: VectorFormat = "auto",
    *,
    limit: int | None = None,
    errors: ErrorPolicy = "raise",
    cache: bool | Literal["auto"] = "auto",
    cache_dir: PathLike | None = None,
) -> Vectors:
    """Read GloVe, word2vec (text or binary) or fastText ``.vec`` vectors, fast.

    Args:
        path: the file; gzip, bz2 and xz compression is detected from its first bytes.
        format: ``"auto"`` (detect), ``"glove"``, ``"word2vec"``, ``"fasttext"`` or
            ``"word2vec-binary"``.
        limit: read only the first ``limit`` vectors.
        errors: ``"raise"`` stops at the first bad line with a
            :class:`~synthembed.errors.FileFormatError` naming it; ``"skip"`` drops bad
            lines (wrong field count, non-numeric or non-finite values, non-UTF-8
            bytes, repeated words after their first occurrence), counts them by
            reason in ``vectors.skipped`` and warns once.
        cache: keep the parsed array as a memory-mapped ``.npy`` plus a JSON word list
            so the next load is near-instant. ``"auto"`` (the default) caches files of
            8 MiB or more under ``~/.cache/synthembed/vectors`` (see ``cache_dir``) and
            says so once, as a ``logging`` warning of ``synthembed.formats.files``;
            ``False`` never writes a cache. A cache whose source has changed (size,
            modification time, first and last bytes) is ignored and rewritten.
        cache_dir: where caches live; defaults to :func:`default_cache_dir`
            (``$SYNTHEMBED_CACHE_DIR``, else ``$XDG_CACHE_HOME`` or ``~/.cache``,
            then ``synthembed/vectors``).

    Shape:
        ``result.vectors``: ``(V, D)`` float32.

    Returns:
        A :class:`Vectors`.

    Raises:
        FileNotFoundError: no file at ``path``.
        FileFormatError: a malformed file under ``errors="raise"``, or one with no vectors.
        ConfigError: an unknown ``format`` or ``errors`` value.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "tiny.txt")
        >>> _ = open(p, "w").write("cat 1 0\\ndog 0.8 0.6\\n")
        >>> v = load_vectors(p)
        >>> v.format, v.dim, v["dog"].tolist()
        ('glove', 2, [0.800000011920929, 0.6000000238418579])
    """
    owner = "load_vectors"
    check_choice(owner, "format", format, READ_FORMATS)
    check_choice(owner, "errors", errors, ERROR_POLICIES)
    check_int(owner, "limit", limit, 0, optional=True)
    check_choice(owner, "cache", cache, (True, False, "auto"))
    p = Path(os.fspath(path))
    if not p.is_file():
        raise FileNotFoundError(f"No vector file at '{p}'.")
    got = read_vectors(
        p,
        format,
        limit=limit,
        errors=errors,
        cache=cache,
        cache_dir=Path(os.fspath(cache_dir)) if cache_dir is not None else None,
    )
    # Words read from a cache file are checked for repeats again; a parse has checked them.
    vectors = Vectors(got.words, torch.from_numpy(got.values), _trusted=not got.cached)
    vectors.source = str(p)
    vectors.format = got.format
    vectors.skipped = got.skipped
    return vectors


def save_vectors(
    vectors: Vectors,
    path: PathLike,
    format: SaveFormat = "word2vec",
    *,
    precision: int = 9,
) -> None:
    """Write vectors as GloVe text, word2vec text or binary, or fastText ``.vec``, atomically.

    Args:
        vectors: the :class:`Vectors` to write.
        path: target file; a ``.gz``, ``.bz2`` or ``.xz`` suffix compresses it.
        format: ``"word2vec"`` (text with a ``"<count> <dim>"`` header, readable by
            gensim, fastText and every word2vec tool), ``"fasttext"`` (the same),
            ``"glove"`` (no header) or ``"word2vec-binary"``.
        precision: significant digits of text values; 9 round-trips float32 exactly.

    Raises:
        ConfigError: an unknown format, or a word that cannot be written (empty, or
            holding a space or newline).

    Example:
        >>> import tempfile, os
        >>> v = Vectors(["a", "b"], torch.eye(2))
        >>> p = os.path.join(tempfile.mkdtemp(), "v.txt")
        >>> save_vectors(v, p, format="glove")
        >>> open(p).read().splitlines()[0]
        'a 1 0'
    """
    owner = "save_vectors"
    check_choice(owner, "format", format, WRITE_FORMATS)
    check_int(owner, "precision", precision, 1, 17)
    if not isinstance(vectors, Vectors):
        raise ConfigError(f"save_vectors expects a Vectors object; got {type(vectors).__name__}.")
    values = vectors.vectors.detach().to(torch.float32).cpu().numpy()
    write_vectors(Path(os.fspath(path)), vectors.index_to_key, values, format, precision=precision)


# ---------------------------------------------------------------------------- alignment
@dataclass(frozen=True)
class CoverageReport:
    """How much of a vocabulary the pretrained vectors cover.

    Attributes:
        total: regular tokens in the vocabulary (specials and hash buckets excluded).
        found: tokens whose vector was found as is.
        found_by_fallback: tokens found only through their lowercase form.
        missing: tokens with no vector (initialised by ``init``).
        missing_examples: up to 20 missing tokens, in vocabulary order (most frequent first
            for a built vocabulary).
        token_coverage: the share of training occurrences covered (uses the vocabulary's
            counts), or None when it has none.
    """

    total: int
    found: int
    found_by_fallback: int
    missing: int
    missing_examples: tuple[str, ...]
    token_coverage: float | None = None

    @property
    def coverage(self) -> float:
        """Share of the vocabulary's regular tokens that got a pretrained vector."""
        return (self.found + self.found_by_fallback) / self.total if self.total else 1.0

    def __str__(self) -> str:
        text = (
            f"{self.found + self.found_by_fallback}/{self.total} tokens covered "
            f"({100 * self.coverage:.1f}%: {self.found} exact, {self.found_by_fallback} by "
            f"lowercase), {self.missing} missing"
        )
        if self.token_coverage is not None:
            text += f"; {100 * self.token_coverage:.1f}% of training occurrences covered"
        if self.missing_examples:
            text += f"; e.g. {list(self.missing_examples[:5])!r}"
        return text


def align(
    vectors: Vectors,
    vocab: Vocabulary,
    *,
    lowercase_fallback: bool = True,
    init: InitMode = "normal",
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, CoverageReport]:
    """Lay pretrained vectors out in ``vocab`` order, with a coverage report.

    Each regular token takes its own vector, else (with ``lowercase_fallback``) the
    vector of its lowercase form. Tokens with neither, hash buckets and the unknown
    token are initialised by ``init``: ``"normal"`` draws from a normal distribution
    with the pretrained vectors' mean and standard deviation per dimension (so new rows
    are on the same scale), ``"zeros"`` uses zeros, ``"mean"`` the mean pretrained
    vector. The padding row is always zero.

    Args:
        vectors: the pretrained :class:`Vectors`.
        vocab: the vocabulary to align to.
        lowercase_fallback: look up ``token.lower()`` when ``token`` is missing.
        init: how to fill rows without a pretrained vector.
        seed: seeds the draws of ``init="normal"`` (the library's one name for seeds).
        generator: deprecated (warns): a ``torch.Generator`` for those draws instead of
            ``seed``; give one or the other.

    Shape:
        Returns a ``(len(vocab), vectors.dim)`` float32 tensor.

    Returns:
        ``(weight, report)``.

    Example:
        >>> from synthembed.vocab import Vocabulary
        >>> v = Vectors(["cat", "dog"], torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        >>> weight, report = align(v, Vocabulary(["Dog", "cow"]), init="zeros")
        >>> weight.tolist()
        [[0.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
        >>> report.found_by_fallback, report.missing_examples
        (1, ('cow',))
    """
    owner = "align"
    if not isinstance(vectors, Vectors):
        raise ConfigError(f"align expects a Vectors object; got {type(vectors).__name__}.")
    if not isinstance(vocab, Vocabulary):
        raise ConfigError(f"align expects a synthembed Vocabulary; got {type(vocab).__name__}.")
    check_choice(owner, "init", init, _INITS)
    if generator is not None:
        if seed is not None:
            raise ConfigError("align takes seed= or generator=, not both; pass only seed=.")
        warnings.warn(
            "align(generator=...) is deprecated; use align(seed=...). "
            "The old name goes in the next release.",
            DeprecationWarning,
            stacklevel=2,
        )
    if seed is not None:
        check_int(owner, "seed", seed, 0)
        generator = torch.Generator().manual_seed(int(seed))
    source = vectors.vectors.detach().to(torch.float32)
    dim = source.shape[1]
    size = len(vocab)
    if init == "zeros" or len(vectors) == 0:
        weight = torch.zeros(size, dim)
    elif init == "mean":
        weight = source.mean(dim=0).expand(size, dim).clone()
    else:
        mean = source.mean(dim=0)
        std = source.std(dim=0) if len(vectors) > 1 else torch.ones(dim)
        weight = torch.randn(size, dim, generator=generator) * std + mean
    index = vectors._index
    dst: list[int] = []
    src: list[int] = []
    exact = fallback = 0
    missing: list[str] = []
    counts = vocab.counts
    covered_count = 0
    first = vocab.first_token_id
    tokens = vocab.tokens
    for offset, token in enumerate(tokens):
        key = token if isinstance(token, str) else str(token)
        row = index.get(key)
        if row is not None:
            exact += 1
        elif lowercase_fallback and key.lower() != key:
            row = index.get(key.lower())
            if row is not None:
                fallback += 1
        if row is None:
            missing.append(key)
            continue
        dst.append(first + offset)
        src.append(row)
        covered_count += counts.get(token, 0)
    if dst:
        weight[torch.tensor(dst, dtype=torch.long)] = source[torch.tensor(src, dtype=torch.long)]
    if vocab.pad_id is not None:
        weight[vocab.pad_id] = 0.0
    total_count = sum(counts.values())
    report = CoverageReport(
        total=len(tokens),
        found=exact,
        found_by_fallback=fallback,
        missing=len(missing),
        missing_examples=tuple(missing[:20]),
        token_coverage=covered_count / total_count if total_count else None,
    )
    logger.info("Aligned pretrained vectors: %s", report)
    return weight, report
