"""Tests of synthembed.tokenize: the named tokenizers, callables and Hugging Face objects."""

from __future__ import annotations

import pytest

from synthembed.errors import ConfigError
from synthembed.tokenize import (
    TOKENIZER_NAMES,
    RegexTokenizer,
    Tokenizer,
    WhitespaceTokenizer,
    get_tokenizer,
)


def test_regex_tokenizer_splits_words_and_each_punctuation_mark() -> None:
    tok = RegexTokenizer()
    assert tok("Don't stop!!  Café-au-lait, 10/10") == [
        "Don", "'", "t", "stop", "!", "!", "Café", "-", "au", "-", "lait", ",", "10", "/", "10",
    ]  # fmt: skip
    assert tok("") == [] and tok(" \t\n") == []
    assert tok("naïve_word ΑΒΓ") == ["naïve_word", "ΑΒΓ"]  # \w is Unicode, _ is a word char
    lower = RegexTokenizer(lowercase=True)
    assert lower("Great TEA") == ["great", "tea"] and lower.name == "regex_lower"
    assert tok.batch(["a b", "c."]) == [["a", "b"], ["c", "."]]
    assert isinstance(tok, Tokenizer) and tok.name == "regex"


def test_whitespace_tokenizer_keeps_punctuation_attached() -> None:
    tok = get_tokenizer("whitespace")
    assert isinstance(tok, WhitespaceTokenizer)
    assert tok(" great  coffee, 10/10!\n") == ["great", "coffee,", "10/10!"]
    assert tok.batch(["a b"]) == [["a", "b"]]


def test_named_tokenizers_and_unknown_names() -> None:
    assert TOKENIZER_NAMES == ("regex", "regex_lower", "whitespace")
    for name in TOKENIZER_NAMES:
        assert get_tokenizer(name).name == name
    with pytest.raises(ConfigError, match=r"Unknown tokenizer 'spacy'; the named ones are"):
        get_tokenizer("spacy")
    with pytest.raises(ConfigError, match=r"tokenizer must be one of .*got int 3"):
        get_tokenizer(3)


def test_callable_tokenizer_is_checked() -> None:
    tok = get_tokenizer(lambda text: text.split("-"))
    assert tok("a-b") == ["a", "b"] and tok.name is None
    bad = get_tokenizer(lambda text: text.upper())
    with pytest.raises(ConfigError, match=r"must return a list of tokens; .* returned str 'AB'"):
        bad("ab")


def test_hugging_face_tokenizers() -> None:
    pre_tokenizers = pytest.importorskip("tokenizers.pre_tokenizers")
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers.models import WordLevel

    words = get_tokenizer(pre_tokenizers.BertPreTokenizer())
    assert words("Great coffee, 10/10!") == ["Great", "coffee", ",", "10", "/", "10", "!"]
    model = HFTokenizer(WordLevel({"great": 0, "tea": 1, "[UNK]": 2}, unk_token="[UNK]"))
    model.pre_tokenizer = pre_tokenizers.Whitespace()
    pieces = get_tokenizer(model)
    assert pieces.batch(["great tea", "odd tea"]) == [["great", "tea"], ["[UNK]", "tea"]]
    assert pieces.name is None
