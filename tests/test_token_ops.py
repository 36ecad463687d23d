"""Tests of synthembed.token_ops: fast counting and lookup agree with the per-token route."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from synthembed.errors import ShapeError
from synthembed.token_ops import count_tokens, iter_tokens, looks_like_text, lookup_ids
from synthembed.tokenize import RegexTokenizer


def test_count_tokens_fast_and_slow_routes_agree() -> None:
    flat = ["b", "a", "b", 3]
    assert count_tokens(flat) == Counter({"b": 2, "a": 1, 3: 1})
    assert list(count_tokens(flat)) == ["b", "a", 3]  # first-appearance order kept
    nested = [["b", "a"], ("b", ["c", ("a",)]), []]  # deeper nesting: per-token route
    assert count_tokens(nested) == Counter({"b": 2, "a": 2, "c": 1})
    assert count_tokens(iter([np.str_("x"), None, float("nan"), np.int64(4)])) == Counter(
        {"x": 1, 4: 1}
    )
    texts = ["Tea, tea!", "tea"]
    assert count_tokens(texts, RegexTokenizer(lowercase=True)) == Counter(
        {"tea": 3, ",": 1, "!": 1}
    )
    assert list(iter_tokens([["a b"], "c d"], RegexTokenizer())) == ["a", "b", "c", "d"]
    with pytest.raises(ShapeError, match="got the bool True"):
        count_tokens(["a", True])


def test_lookup_ids_uses_the_slow_route_for_unknown_or_odd_tokens() -> None:
    table: dict[str | int, int] = {"a": 0, "b": 1, 5: 2}
    seen: list[object] = []

    def slow(token: object) -> int:
        seen.append(token)
        return 9

    assert lookup_ids(["a", 5, "zz", "b"], table, slow, int_keys=True).tolist() == [0, 2, 9, 1]
    assert seen == ["zz"]
    seen.clear()
    assert lookup_ids(["a", np.int64(5)], table, slow, int_keys=True).tolist() == [9, 9]
    assert seen == ["a", np.int64(5)]  # any odd type: every token goes the checked route
    seen.clear()
    # A str-only table finds no odd token under a wrong key: only the unknown go slow.
    words: dict[str | int, int] = {"a": 0, "1": 1}
    assert lookup_ids(["a", True, 1.0, np.str_("a")], words, slow, int_keys=False).tolist() == [
        0, 9, 9, 0,
    ]  # fmt: skip
    assert seen == [True, 1.0]
    seen.clear()
    assert lookup_ids(["a", ["x"]], words, slow, int_keys=False).tolist() == [9, 9]  # unhashable
    assert lookup_ids([], table, slow, int_keys=True).dtype == np.int64


def test_looks_like_text() -> None:
    assert looks_like_text(["the tea was stale", "great price here", "ok"]) == [
        "the tea was stale",
        "great price here",
    ]
    assert looks_like_text(["New York", "Le Mans", "Paris"]) == []
    assert looks_like_text(["a b c", "x", "y", "z"]) == []  # fewer than half
    assert looks_like_text([1, 2]) == []
