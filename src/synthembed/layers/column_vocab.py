"""Categorical columns to vocabulary ids: token normalisation, vocabulary building, encoding.

Shared by :class:`~synthembed.layers.tabular.TabularEmbedding` and the scikit-learn
:class:`~synthembed.encoders.EmbeddingEncoder`, so both give a value the same id.

Tokens are normalised one way everywhere: strings stay strings, whole numbers
(ints, and floats such as ``3.0``) become ints, booleans become ``"True"`` /
``"False"``, anything else its ``str()``. Missing values (None, NaN, ``pd.NA``,
NaT) are not out-of-vocabulary: they map to the ``"<missing>"`` id.

Special ids: a column's vocabulary numbers ``"<unk>"`` = 0 and ``"<missing>"`` = 1,
where a :class:`~synthembed.vocab.Vocabulary` of sequences numbers ``"<pad>"`` = 0 and
``"<unk>"`` = 1. This is on purpose: a table cell always holds exactly one value, so
a column has nothing to pad and no ``"<pad>"`` row (a row that would never train and
would shift every id by one); ``"<missing>"`` takes the slot a sequence vocabulary
gives ``"<unk>"``. Saved files keep their own numbering either way (the tokens are
stored). Code should not rely on literal ids: ask ``vocab.unk_id`` or
``vocab.key_to_index["<missing>"]``.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from synthembed._deprecation import renamed
from synthembed._validation import check_choice, check_int, require
from synthembed.errors import UnknownTokenError
from synthembed.vocab import OOVPolicy, Token, Vocabulary

__all__ = [
    "CATEGORICAL_SPECIALS",
    "DEFAULT_NUM_BUCKETS",
    "MISSING_TOKEN",
    "OOV_POLICIES",
    "UNK_TOKEN",
    "auto_embedding_dim",
    "build_column_vocab",
    "encode_column",
    "factorize",
    "pandas",
    "to_token",
]

MISSING_TOKEN = "<missing>"
UNK_TOKEN = "<unk>"
#: Specials of a categorical column's vocabulary: ids 0 and 1 (no ``"<pad>"``: see the
#: module docstring for why this differs from a sequence Vocabulary's ``<pad>``=0, ``<unk>``=1).
CATEGORICAL_SPECIALS = (UNK_TOKEN, MISSING_TOKEN)
#: Hash buckets used with ``oov="hash"`` when ``num_oov_buckets`` is not given.
DEFAULT_NUM_BUCKETS = 16
#: The out-of-vocabulary policies a column accepts.
OOV_POLICIES: tuple[str, ...] = ("error", "unk", "hash")


def pandas() -> Any:
    """The ``pandas`` module, or a :class:`~synthembed.errors.MissingDependencyError`."""
    return require("pandas", "data", "TabularEmbedding")


def to_token(value: Any) -> Token:
    """Normalise one non-missing cell to a vocabulary token (str or int).

    Example:
        >>> to_token(3.0), to_token(True), to_token("a"), to_token(2.5)
        (3, 'True', 'a', '2.5')
    """
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if math.isfinite(f) and f.is_integer():
            return int(f)
        return str(f)
    return str(value)


def factorize(values: Any) -> tuple[np.ndarray, list[Any]]:
    """Codes (-1 for missing) and the distinct non-missing values, in first-seen order."""
    pd = pandas()
    if not isinstance(values, (np.ndarray, pd.Series, pd.Index, pd.Categorical)):
        values = pd.Series(list(values), dtype=object)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), list(uniques)


@renamed(num_buckets="num_oov_buckets")
def build_column_vocab(
    values: Any,
    *,
    oov: OOVPolicy = "unk",
    num_oov_buckets: int | None = None,
    min_freq: int = 1,
    max_size: int | None = None,
) -> Vocabulary:
    """Count one categorical column and build its vocabulary.

    Ids ``0`` and ``1`` are ``"<unk>"`` and ``"<missing>"``; with ``oov="hash"``
    the hash buckets follow, then the values, most frequent first.

    Args:
        values: a 1-d array, list or pandas Series (missing values are skipped).
        oov: what an unseen value becomes at encode time.
        num_oov_buckets: hash buckets for ``oov="hash"`` (default 16); ``num_buckets=`` is
            its deprecated old name.
        min_freq: keep values seen at least this often (rarer ones become OOV).
        max_size: keep at most this many values.

    Example:
        >>> v = build_column_vocab(["a", "b", "a", None])
        >>> v.tokens, len(v)
        (['a', 'b'], 4)
    """
    check_choice("build_column_vocab", "oov", oov, OOV_POLICIES)
    codes, uniques = factorize(values)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    counter: Counter[Token] = Counter()
    for value, count in zip(uniques, counts.tolist()):
        counter[to_token(value)] += int(count)
    return Vocabulary.build(
        counter,
        min_freq=min_freq,
        max_size=max_size,
        specials=CATEGORICAL_SPECIALS,
        pad_token=None,
        unk_token=UNK_TOKEN,
        oov=oov,
        num_oov_buckets=(num_oov_buckets or DEFAULT_NUM_BUCKETS) if oov == "hash" else None,
    )


def encode_column(values: Any, vocab: Vocabulary, column: Any) -> np.ndarray:
    """Map one column to ids with ``vocab``; missing cells get the ``"<missing>"`` id.

    Each distinct value is looked up once, so a column of a million rows with a
    few thousand values costs one ``pandas.factorize`` and a few thousand lookups.

    Raises:
        UnknownTokenError: an unseen value under ``oov="error"``; the message names
            the column.

    Returns:
        A ``(n,)`` int64 array.
    """
    codes, uniques = factorize(values)
    try:
        table = np.fromiter((vocab.encode(to_token(u)) for u in uniques), np.int64, len(uniques))
    except UnknownTokenError as exc:
        raise UnknownTokenError(f"Column {column!r}: {exc}") from exc
    missing = vocab.key_to_index.get(MISSING_TOKEN)
    if missing is None:
        missing = vocab.unk_id
    if missing is None and bool((codes < 0).any()):
        raise UnknownTokenError(
            f"Column {column!r} has missing values but its vocabulary has neither a "
            f"'{MISSING_TOKEN}' nor an unknown token; fill the missing values first."
        )
    out = np.full(codes.shape, -1 if missing is None else missing, dtype=np.int64)
    seen = codes >= 0
    out[seen] = table[codes[seen]]
    return out


def auto_embedding_dim(cardinality: int) -> int:
    """The rule of thumb ``min(50, round(1.6 * n ** 0.56))`` for a column of ``n`` ids.

    It is fastai's heuristic for categorical embeddings: it grows slowly with the
    number of values and stops at 50.

    Example:
        >>> auto_embedding_dim(4), auto_embedding_dim(100), auto_embedding_dim(4000)
        (3, 21, 50)
    """
    check_int("auto_embedding_dim", "cardinality", cardinality, 1)
    return int(min(50, max(1, round(1.6 * cardinality**0.56))))
