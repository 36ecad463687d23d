"""Token checks, counting and id lookup for :class:`~synthembed.vocab.Vocabulary`, at C speed.

Counting and lookup run through ``collections.Counter`` and ``map(dict.get, ...)``,
whose loops are in C; the checks a per-token Python loop used to make are kept, but
made once per distinct token (after counting) or once per batch (a ``set`` of the
types seen), and any input the fast route cannot vouch for (missing values, numpy
scalars, bools, deeper nesting) takes the per-token route with its exact errors.
``benchmarks/vocab_speed.py`` measures both against plain ``Counter`` / ``dict`` code.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import chain, islice, repeat
from typing import Any, Union

import numpy as np

from synthembed._validation import check_int
from synthembed.errors import ShapeError
from synthembed.tokenize import Tokenizer

__all__ = [
    "PLAIN_TYPES",
    "Token",
    "count_tokens",
    "count_tokens_and_types",
    "is_missing",
    "iter_tokens",
    "looks_like_text",
    "lookup_ids",
    "normalize_token",
    "stable_hash",
]

Token = Union[str, int]  # noqa: UP007 (a runtime alias, valid on Python 3.10)
#: Token types a dict lookup can take as they are (bool is excluded: True == 1).
PLAIN_TYPES = frozenset({str, int})
# Three words or more, separated by spaces: a sentence rather than a name ("New York").
_SENTENCE = re.compile(r"\S+[ \t]+\S+[ \t]+\S")


def is_missing(token: Any) -> bool:
    """None or a float NaN (pandas' missing values)."""
    if token is None:
        return True
    try:
        return bool(isinstance(token, float) and math.isnan(token))
    except TypeError:
        return False


def normalize_token(token: Any) -> Token:
    """Accept str and int tokens (numpy/pandas integers included); reject the rest clearly."""
    if isinstance(token, str):
        return str(token)  # numpy.str_ and other subclasses become plain str
    if isinstance(token, bool):
        raise ShapeError(
            f"Vocabulary tokens must be str or int; got the bool {token!r}. "
            "Convert booleans to strings ('True'/'False') first."
        )
    if isinstance(token, int):
        return int(token)
    item = getattr(token, "item", None)  # numpy / torch scalars
    if callable(item) and getattr(token, "ndim", 0) == 0:
        value = item()
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    if isinstance(token, float) and token.is_integer():
        return int(token)
    raise ShapeError(
        f"Vocabulary tokens must be str or int; got {type(token).__name__} {token!r}. "
        "Convert them to strings first."
    )


def stable_hash(token: Token) -> int:
    """A hash that is the same in every process and on every machine (never Python's hash)."""
    tag = (
        b"s:" + token.encode("utf-8", "surrogatepass")
        if isinstance(token, str)
        else b"i:" + str(token).encode()
    )
    return int.from_bytes(hashlib.blake2b(tag, digest_size=8).digest(), "little")


def iter_tokens(data: Any, tokenizer: Tokenizer | None = None) -> Iterator[Any]:
    """Flatten tokens, sentences (nested iterables) and pandas Series with list cells;
    with a tokenizer, every string is a text and yields its tokens."""
    values = data.tolist() if hasattr(data, "tolist") and not isinstance(data, str) else data
    for item in values:
        if isinstance(item, str) and tokenizer is not None:
            yield from tokenizer(item)
        elif isinstance(item, (str, bytes)) or not isinstance(item, Iterable):
            yield item
        else:
            yield from iter_tokens(item, tokenizer)


def looks_like_text(strings: Iterable[Any], sample: int = 1000) -> list[str]:
    """The strings of three or more space-separated words among the first ``sample``
    strings, when they are at least half of them (sentences kept whole); else ``[]``."""
    seen = list(islice((s for s in strings if type(s) is str), sample))
    spaced = [s for s in seen if _SENTENCE.search(s)]
    return spaced if seen and 2 * len(spaced) >= len(seen) else []


def count_tokens(data: Any, tokenizer: Tokenizer | None = None) -> Counter[Token]:
    """Count tokens: a mapping of counts, a flat iterable of tokens, of sentences (nested
    iterables) or, with a tokenizer, of texts. Missing values are skipped."""
    return count_tokens_and_types(data, tokenizer)[0]


def count_tokens_and_types(
    data: Any, tokenizer: Tokenizer | None = None
) -> tuple[Counter[Token], set[type]]:
    """:func:`count_tokens` and the set of the counted tokens' types (checked once per
    distinct token; callers reuse it instead of scanning the tokens again)."""
    if isinstance(data, Mapping):
        counter: Counter[Token] = Counter()
        for tok, c in data.items():
            check_int("Vocabulary.build", f"count of {tok!r}", c, 0)
            counter[normalize_token(tok)] += int(c)
        return counter, set(map(type, counter))
    values = data.tolist() if hasattr(data, "tolist") else data
    if not isinstance(values, (list, tuple)):
        values = list(values)  # a generator is read once
    kinds = set(map(type, values))
    fast: Counter[Token] | None = None
    if tokenizer is not None and kinds <= {str}:
        fast = Counter(chain.from_iterable(tokenizer.batch(values)))
    elif tokenizer is None and kinds <= PLAIN_TYPES:
        fast = Counter(values)
    elif tokenizer is None and kinds <= {list, tuple}:
        try:
            fast = Counter(chain.from_iterable(values))
        except TypeError:  # an unhashable cell: deeper nesting, the per-token route flattens it
            fast = None
    # The checks, once per distinct token: anything but plain str / int takes the slow route.
    if fast is not None:
        types = set(map(type, fast))
        if types <= PLAIN_TYPES:
            return fast, types
    counter = Counter()
    for tok in iter_tokens(values, tokenizer):
        if not is_missing(tok):
            counter[normalize_token(tok)] += 1
    return counter, set(map(type, counter))


def lookup_ids(
    tokens: list[Any], table: dict[Token, int], slow: Callable[[Any], int], *, int_keys: bool
) -> np.ndarray:
    """``(N,)`` int64 ids of ``tokens``: a C-speed ``dict.get``, then ``slow(token)`` (which
    applies the OOV policy and raises) for every token the table does not hold.

    A token of another type can only be found under a key it is not (``True == 1``,
    ``2.0 == 2``) when the table has int keys (``int_keys``): then any token that is not
    a plain str or int sends the whole list through ``slow``. Str-only tables skip that
    check: an odd token is simply not found, and ``slow`` deals with it.
    """
    n = len(tokens)
    if int_keys and not set(map(type, tokens)) <= PLAIN_TYPES:
        return np.fromiter(map(slow, tokens), dtype=np.int64, count=n)
    try:
        ids = np.fromiter(map(table.get, tokens, repeat(-1)), dtype=np.int64, count=n)
    except TypeError:  # an unhashable token: slow() raises the clear error
        return np.fromiter(map(slow, tokens), dtype=np.int64, count=n)
    for i in np.flatnonzero(ids < 0).tolist():  # unknown tokens: the OOV policy decides
        ids[i] = slow(tokens[i])
    return ids
