"""Tests for synthembed.vocab.Vocabulary."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from synthembed.errors import (
    ConfigError,
    FileFormatError,
    InvalidIndexError,
    ShapeError,
    UnknownTokenError,
)
from synthembed.vocab import EncodedBatch, Vocabulary

# ---------------------------------------------------------------- building


def test_build_orders_by_frequency_then_first_appearance() -> None:
    v = Vocabulary.build(["c", "a", "b", "a", "b", "d"])
    # a and b tie at 2 (a first), c and d tie at 1 (c first).
    assert v.tokens == ["a", "b", "c", "d"]
    assert v.index_to_key[:2] == ["<pad>", "<unk>"]
    assert (v.pad_id, v.unk_id) == (0, 1)
    assert v.encode("a") == 2 and v.encode("d") == 5
    assert v.counts == Counter({"a": 2, "b": 2, "c": 1, "d": 1})
    assert len(v) == 6


def test_build_from_sentences_flattens_nested_iterables() -> None:
    v = Vocabulary.build([["the", "cat"], ["the", "dog", ("the",)]])
    assert v.tokens == ["the", "cat", "dog"]
    assert v.counts["the"] == 3


def test_build_from_counter_and_mapping() -> None:
    v = Vocabulary.build(Counter({"x": 1, "y": 5, "z": 5}), min_freq=2)
    assert v.tokens == ["y", "z"]
    assert v.counts == Counter({"y": 5, "z": 5})
    with pytest.raises(ConfigError, match=r"count of 'x'.*Got -1"):
        Vocabulary.build({"x": -1})


def test_build_from_pandas_series_with_list_cells_and_missing_values() -> None:
    s = pd.Series([["a", "b"], ["b"], [], None, ["c", "b"]], dtype=object)
    v = Vocabulary.build(s)
    assert v.tokens == ["b", "a", "c"]
    assert v.counts["b"] == 3


def test_build_from_categorical_series() -> None:
    s = pd.Series(["lo", "hi", "hi", None, "mid"], dtype="category")
    v = Vocabulary.build(s)
    assert v.tokens == ["hi", "lo", "mid"]
    # A categorical column encodes as a sequence.
    assert v.encode(s.dropna()).tolist() == [3, 2, 2, 4]


def test_build_from_integer_series_and_numpy_scalars() -> None:
    s = pd.Series([10, 20, 10, 30], dtype="int64")
    v = Vocabulary.build(s)
    assert v.tokens == [10, 20, 30]
    assert all(type(t) is int for t in v.tokens)
    assert v.encode(np.int64(20)) == 3
    assert np.int64(30) in v and 99 not in v


def test_min_freq_and_max_size() -> None:
    data = ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"]
    assert Vocabulary.build(data, min_freq=2).tokens == ["a", "b", "c"]
    assert Vocabulary.build(data, max_size=2).tokens == ["a", "b"]
    assert Vocabulary.build(data, max_size=0).tokens == []
    with pytest.raises(ConfigError, match=r"'min_freq' parameter .* \[1, inf\)\. Got 0"):
        Vocabulary.build(data, min_freq=0)
    with pytest.raises(ConfigError, match=r"'max_size' parameter .* Got -1"):
        Vocabulary.build(data, max_size=-1)


def test_specials_configurable_or_none() -> None:
    v = Vocabulary.build(["a", "b", "a"], specials=())
    assert v.specials == [] and v.pad_id is None and v.unk_id is None
    assert v.oov == "error"  # no unknown token: unknown tokens raise
    assert v.encode("a") == 0
    v2 = Vocabulary.build(
        ["x"], specials=("[PAD]", "[UNK]", "[CLS]"), pad_token="[PAD]", unk_token="[UNK]"
    )
    assert (v2.pad_id, v2.unk_id, v2.encode("[CLS]"), v2.encode("x")) == (0, 1, 2, 3)
    # Specials found in the data are not counted twice.
    assert Vocabulary.build(["<pad>", "a"]).tokens == ["a"]


def test_bad_specials_are_rejected() -> None:
    with pytest.raises(ConfigError, match="distinct"):
        Vocabulary(specials=("<pad>", "<pad>"))
    with pytest.raises(ConfigError, match="sequence of strings; got the string '<pad>'"):
        Vocabulary(specials="<pad>")
    with pytest.raises(ConfigError, match=r"'pad_token' parameter .* Got 'P'"):
        Vocabulary(specials=("<pad>",), pad_token="P")
    with pytest.raises(ConfigError, match="oov='unk' needs an unk_token"):
        Vocabulary(specials=("<pad>",), oov="unk")
    with pytest.raises(ConfigError, match="Duplicate token 'a'"):
        Vocabulary(["a", "a"])
    with pytest.raises(ConfigError, match=r"'oov' parameter .* 'error', 'unk', 'hash'. Got 'x'"):
        Vocabulary.build(["a"], oov="x")  # type: ignore[arg-type]


def test_build_rejects_a_single_string_and_bad_tokens() -> None:
    with pytest.raises(ShapeError, match="single string"):
        Vocabulary.build("the cat sat")
    with pytest.raises(ShapeError, match="got the bool True"):
        Vocabulary.build([True, "a"])
    with pytest.raises(ShapeError, match=r"must be str or int; got float 1.5"):
        Vocabulary.build([1.5])


# ---------------------------------------------------------------- OOV policies


def test_oov_error_names_the_token_and_suggests_close_ones() -> None:
    v = Vocabulary.build(["apple", "banana"], oov="error")
    with pytest.raises(UnknownTokenError, match=r"Token 'appel' is not in the vocabulary.*'apple'"):
        v.encode("appel")
    with pytest.raises(KeyError):  # UnknownTokenError is a KeyError
        v["cherry"]


def test_oov_unk_maps_unknown_and_missing_to_unk() -> None:
    v = Vocabulary.build(["a"])
    assert v.encode("zzz") == v.unk_id == 1
    assert v.encode(["a", None, "q"]).tolist() == [2, 1, 1]


def test_oov_hash_is_stable_spread_and_never_renumbered() -> None:
    v = Vocabulary.build(["a", "b"], oov="hash", num_oov_buckets=8)
    assert v.first_token_id == 2 + 8
    assert v.encode("a") == 10
    unknown = [f"tok{i}" for i in range(200)]
    ids = v.encode(unknown).tolist()
    assert all(2 <= i < 10 for i in ids)
    assert len(set(ids)) == 8  # 200 tokens reach every bucket
    # Stable across instances (no salted hash()): the same token, the same bucket.
    v2 = Vocabulary.build(["z"], oov="hash", num_oov_buckets=8)
    assert v2.encode(unknown).tolist() == ids
    # The blake2b of "s:tok0" modulo 8 (computed independently).
    import hashlib

    expected = int.from_bytes(hashlib.blake2b(b"s:tok0", digest_size=8).digest(), "little") % 8
    assert ids[0] == 2 + expected
    # Missing values go to <unk>, not to a bucket.
    assert v.encode(None) == 1


def test_oov_hash_needs_buckets() -> None:
    with pytest.raises(ConfigError, match=r"'num_oov_buckets' parameter .* \[1, inf\)\. Got None"):
        Vocabulary.build(["a"], oov="hash")
    with pytest.raises(ConfigError, match="only applies to oov='hash'"):
        Vocabulary.build(["a"], num_oov_buckets=3)
    v = Vocabulary.build(["a"], specials=(), oov="hash", num_oov_buckets=2)
    with pytest.raises(UnknownTokenError, match="missing value"):
        v.encode(float("nan"))


# ---------------------------------------------------------------- encode / decode


def test_encode_token_sequence_and_decode() -> None:
    v = Vocabulary.build(["a", "b", "c"])
    assert v.encode("b") == 3 and isinstance(v.encode("b"), int)
    seq = v.encode(["c", "a"])
    assert seq.dtype == torch.long and seq.tolist() == [4, 2]
    assert v.encode(["c", "a", "b"], max_length=2).tolist() == [4, 2]
    assert v.encode([]).shape == (0,)
    assert v.decode(3) == "b"
    assert v.decode(seq) == ["c", "a"]
    assert v.decode([0, 2, 0]) == ["a"]
    assert v.decode([0, 2], strip_padding=False) == ["<pad>", "a"]
    assert v.decode(torch.tensor(4)) == "c"


def test_encode_batch_pads_truncates_and_masks() -> None:
    v = Vocabulary.build(["a", "b", "c"])
    batch = v.encode([["a", "b", "c"], ["b"], []])
    assert isinstance(batch, EncodedBatch)
    assert batch.ids.tolist() == [[2, 3, 4], [3, 0, 0], [0, 0, 0]]
    assert batch.lengths.tolist() == [3, 1, 0]
    assert batch.mask.tolist() == [[True] * 3, [True, False, False], [False] * 3]
    assert batch.ids.dtype == torch.long and batch.mask.dtype == torch.bool
    cut = v.encode_batch([["a", "b", "c"], ["b"]], max_length=2)
    assert cut.ids.tolist() == [[2, 3], [3, 0]] and cut.lengths.tolist() == [2, 1]
    assert v.decode(batch.ids) == [["a", "b", "c"], ["b"], []]
    empty = v.encode_batch([])
    assert empty.ids.shape == (0, 0) and empty.lengths.shape == (0,)
    assert v.encode_batch([["a"], ["b", "c"]], padding_value=-1).ids.tolist() == [[2, -1], [3, 4]]


def test_encode_batch_errors() -> None:
    v = Vocabulary.build(["a"])
    with pytest.raises(ShapeError, match="ragged mix of tokens and sequences"):
        v.encode([["a"], "a"])
    with pytest.raises(ShapeError, match="got the element 'a'"):
        v.encode_batch(["a"])
    with pytest.raises(ConfigError, match=r"'max_length' parameter .* Got -1"):
        v.encode(["a"], max_length=-1)
    with pytest.raises(ConfigError, match="max_length applies to sequences"):
        v.encode("a", max_length=2)
    nopad = Vocabulary.build(["a", "b"], specials=("<unk>",))
    with pytest.raises(ConfigError, match="no pad token"):
        nopad.encode_batch([["a"], ["a", "b"]])
    assert nopad.encode_batch([["a"], ["b"]]).ids.tolist() == [[1], [2]]


def test_decode_errors() -> None:
    v = Vocabulary.build(["a"])
    with pytest.raises(
        InvalidIndexError, match=r"Id 7 is outside the vocabulary's valid range \[0, 2\]"
    ):
        v.decode(7)
    with pytest.raises(InvalidIndexError, match="Id -1"):
        v.decode([2, -1])
    with pytest.raises(ShapeError, match=r"integer ids; got float 1.0"):
        v.decode([1.0])
    with pytest.raises(ShapeError, match=r"integer ids; got dtype torch.float32"):
        v.decode(torch.tensor([1.0]))
    with pytest.raises(ShapeError, match="got a bool"):
        v.decode(True)
    with pytest.raises(ShapeError, match=r"shape \(1, 1, 1\)"):
        v.decode(torch.zeros(1, 1, 1, dtype=torch.long))


def test_container_protocol() -> None:
    v = Vocabulary.build(["a", 5])
    assert "a" in v and 5 in v and "b" not in v and [1] not in v
    assert list(v) == ["<pad>", "<unk>", "a", 5]
    assert v["a"] == 2 and v[5] == 3
    assert v.key_to_index == {"<pad>": 0, "<unk>": 1, "a": 2, 5: 3}
    assert "size=4" in repr(v) and "oov='unk'" in repr(v)


# ---------------------------------------------------------------- growing


def test_add_appends_without_renumbering() -> None:
    v = Vocabulary.build(["a", "b"], oov="hash", num_oov_buckets=4)
    before = {t: v[t] for t in ["a", "b"]}
    bucket = v.encode("new")
    assert v.add("new") == 8
    assert v.add(["b", "n2", "n3", "n2"]) == [7, 9, 10, 9]
    assert {t: v[t] for t in ["a", "b"]} == before
    assert v.encode("new") == 8 != bucket
    assert v.counts["n2"] == 0
    assert len(v) == 11


# ---------------------------------------------------------------- files


def test_save_load_round_trip_keeps_everything(tmp_path) -> None:
    v = Vocabulary.build([["é", "猫", "a"], ["a", 7]], oov="hash", num_oov_buckets=3)
    v.add("late")
    path = tmp_path / "v.json"
    v.save(path)
    w = Vocabulary.load(path)
    assert w == v
    assert w.oov == "hash" and w.num_oov_buckets == 3
    assert w.tokens == ["a", "é", "猫", 7, "late"]
    assert w.counts == v.counts
    assert w.encode("unseen-token") == v.encode("unseen-token")
    assert json.loads(path.read_text(encoding="utf-8"))["version"] == 1
    assert list(tmp_path.iterdir()) == [path]  # no temporary files left behind


@pytest.mark.parametrize("policy", ["error", "unk"])
def test_oov_policy_is_saved(tmp_path, policy: str) -> None:
    v = Vocabulary.build(["a"], oov=policy)  # type: ignore[arg-type]
    v.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json").oov == policy


def _saved(tmp_path) -> tuple[dict, object]:
    v = Vocabulary.build(["a", "b"])
    p = tmp_path / "v.json"
    v.save(p)
    return json.loads(p.read_text()), p


def test_load_rejects_tampered_file(tmp_path) -> None:
    data, p = _saved(tmp_path)
    data["tokens"][0] = "evil"
    p.write_text(json.dumps(data))  # type: ignore[attr-defined]
    with pytest.raises(FileFormatError, match="failed its checksum"):
        Vocabulary.load(p)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 99}, "version 99; this synthembed reads version 1"),
        ({"format": "other"}, "not a synthembed vocabulary"),
        ({"tokens": ["a", "a"]}, "Duplicate token"),
        ({"tokens": ["a", 1.5], "counts": [1, 1]}, "token 1.5 is not a string or integer"),
        ({"counts": [1]}, "counts has 1 entries but tokens has 2"),
        ({"counts": ["x", 1]}, "counts must be non-negative ints; got 'x'"),
        ({"oov": "weird"}, "'oov' parameter"),
        ({"oov": "hash", "num_buckets": 0}, "num_buckets"),
        ({"specials": "ab"}, "'specials' must be a list"),
    ],
)
def test_load_rejects_malformed_fields(tmp_path, change: dict, message: str) -> None:
    data, p = _saved(tmp_path)
    data.update(change)
    del data["checksum"]  # a hand-edited file without checksum is still validated field by field
    p.write_text(json.dumps(data))  # type: ignore[attr-defined]
    with pytest.raises(FileFormatError, match=message):
        Vocabulary.load(p)


def test_load_rejects_broken_json_and_missing_fields(tmp_path) -> None:
    p = tmp_path / "v.json"
    p.write_text('{"format": "synthembed.vocabulary", "ver')
    with pytest.raises(FileFormatError, match="is not valid vocabulary JSON"):
        Vocabulary.load(p)
    p.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(FileFormatError, match="is not valid vocabulary JSON"):
        Vocabulary.load(p)
    p.write_text("[1, 2]")
    with pytest.raises(FileFormatError, match="must be a JSON object; got list"):
        Vocabulary.load(p)
    p.write_text(json.dumps({"format": "synthembed.vocabulary", "version": 1}))
    with pytest.raises(FileFormatError, match="lacks the fields"):
        Vocabulary.load(p)
    with pytest.raises(FileNotFoundError):
        Vocabulary.load(tmp_path / "absent.json")


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch) -> None:
    p = tmp_path / "v.json"
    Vocabulary.build(["old"]).save(p)
    before = p.read_bytes()
    v = Vocabulary.build(["new"])

    def boom(self: Vocabulary) -> dict:
        raise RuntimeError("disk full")

    monkeypatch.setattr(Vocabulary, "to_dict", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        v.save(p)
    assert p.read_bytes() == before


# ---------------------------------------------------------------- fuzzing

tokens_st = st.one_of(st.text(max_size=12), st.integers(min_value=-(2**62), max_value=2**62))


@given(st.lists(st.lists(tokens_st, max_size=6), max_size=6), st.integers(0, 8))
def test_fuzz_encode_decode_round_trip(sentences: list[list], max_length: int) -> None:
    vocab = Vocabulary.build(sentences, specials=("<pad>",), oov="error")
    known = [t for s in sentences for t in s if t != "<pad>"]
    for s in sentences:
        kept = [t for t in s if t != "<pad>"]
        assert vocab.decode(vocab.encode(kept)) == kept
    batch = vocab.encode_batch(
        [[t for t in s if t != "<pad>"] for s in sentences], max_length=max_length
    )
    expected = [[t for t in s if t != "<pad>"][:max_length] for s in sentences]
    assert vocab.decode(batch.ids) == expected
    assert batch.mask.sum(dim=1).tolist() == [len(e) for e in expected]
    assert set(vocab.tokens) == set(known)


@given(st.lists(st.text(), max_size=20, unique=True))
def test_fuzz_json_round_trip_arbitrary_unicode(tmp_path_factory, tokens: list[str]) -> None:
    vocab = Vocabulary([t for t in tokens if t not in ("<pad>", "<unk>")])
    path = tmp_path_factory.mktemp("fuzz") / "v.json"
    vocab.save(path)
    loaded = Vocabulary.load(path)
    assert loaded == vocab
    assert loaded.tokens == vocab.tokens


@given(st.lists(st.text(max_size=5), max_size=30), st.lists(st.text(max_size=5), max_size=10))
def test_fuzz_hash_policy_is_total_and_in_range(known: list[str], queries: list[str]) -> None:
    vocab = Vocabulary.build(known, oov="hash", num_oov_buckets=5)
    ids = vocab.encode(queries)
    assert ids.shape == (len(queries),)
    assert bool(((ids >= 0) & (ids < len(vocab))).all())
    for q, i in zip(queries, ids.tolist()):
        if q in vocab:
            assert vocab.decode(i) == q
        else:
            assert 2 <= i < 7


def test_lone_surrogates_survive_save_and_load(tmp_path) -> None:
    vocab = Vocabulary(["\ud800x", "ok"])
    vocab.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json").tokens == ["\ud800x", "ok"]


def test_vocabulary_saves_and_loads_with_synthembed_save(tmp_path) -> None:
    import synthembed as se

    vocab = Vocabulary.build([["the", "cat"], ["the", "dog"]], oov="hash", num_oov_buckets=4)
    path = tmp_path / "vocab.safetensors"
    se.save(vocab, path)
    again = se.load(path)
    assert isinstance(again, Vocabulary) and again == vocab
    assert torch.equal(again.encode(["cat", "zebra"]), vocab.encode(["cat", "zebra"]))


def test_num_buckets_is_a_deprecated_name_of_num_oov_buckets() -> None:
    with pytest.warns(DeprecationWarning, match=r"Vocabulary\(num_buckets=.*num_oov_buckets="):
        v = Vocabulary(["a"], oov="hash", num_buckets=3)
    with pytest.warns(DeprecationWarning, match=r"Vocabulary.build\(num_buckets="):
        w = Vocabulary.build(["a"], oov="hash", num_buckets=3)
    assert v.num_oov_buckets == v.num_buckets == w.num_oov_buckets == 3
    assert v.to_dict()["num_buckets"] == 3  # the file key is unchanged: old files load


# ---------------------------------------------------------------- raw text (issue 17)
REVIEWS = [
    "Great coffee, great price!",
    "The tea was stale. Would not buy again",
    "great tea",
]


def test_build_warns_when_whole_sentences_become_tokens() -> None:
    from synthembed.tokenize import TextAsTokenWarning

    with pytest.warns(TextAsTokenWarning, match=r"look like sentences .*tokenizer='regex'") as rec:
        v = Vocabulary.build(REVIEWS)
    assert rec[0].filename == __file__  # points at the caller's line
    assert len(v.tokens) == 3  # still each string whole, as documented
    with pytest.warns(TextAsTokenWarning, match="Vocabulary.encode got strings"):
        Vocabulary.build([["great", "tea"]]).encode(["the tea was stale today"])


def test_names_with_spaces_do_not_warn() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v = Vocabulary.build(["New York", "Paris", "Le Mans", "New York"])
        assert v.tokens == ["New York", "Paris", "Le Mans"]
        assert v.encode(["New York", "Paris"]).tolist() == [2, 3]


def test_build_and_encode_raw_text_with_a_tokenizer(tmp_path: object) -> None:
    v = Vocabulary.build(REVIEWS, tokenizer="regex_lower")
    assert v.tokens[:4] == ["great", "tea", "coffee", ","]
    assert v.counts["great"] == 3
    one = v.encode("Great TEA!")
    assert one.tolist() == [v["great"], v["tea"], v["!"]]
    batch = v.encode([*REVIEWS[:2], "unseen words"], max_length=4)
    assert isinstance(batch, EncodedBatch)
    assert batch.lengths.tolist() == [4, 4, 2]
    assert v.decode(batch.ids[0]) == ["great", "coffee", ",", "great"]
    assert batch.ids[2].tolist() == [v.unk_id, v.unk_id, v.pad_id, v.pad_id]
    assert v.encode_batch(["great tea"]).ids.tolist() == [[v["great"], v["tea"]]]
    # Token lists are still token lists; the named tokenizer is saved with the vocabulary.
    assert v.encode([["great", "tea"]]).ids.tolist() == [[2, 3]]
    path = tmp_path / "v.json"  # type: ignore[operator]
    v.save(path)
    again = Vocabulary.load(path)
    assert again == v and again.tokenizer is not None and again.tokenizer.name == "regex_lower"
    assert "tokenizer=RegexTokenizer(lowercase=True)" in repr(v)
    # Without a tokenizer nothing changes: a string is one token.
    plain = Vocabulary.build([["great", "tea"]])
    assert plain.encode("great") == 2 and "tokenizer" not in plain.to_dict()
    assert plain.encode("Great tea", tokenizer="regex_lower").tolist() == [2, 3]


def test_build_with_tokenizer_errors_and_nested_texts() -> None:
    v = Vocabulary.build(pd.Series(["a b", None, "b"]), tokenizer="whitespace")
    assert v.tokens == ["b", "a"]
    with pytest.raises(ConfigError, match="counts are already tokens: drop tokenizer="):
        Vocabulary.build(Counter({"a": 1}), tokenizer="regex")
    assert Vocabulary.build("one text here", tokenizer="whitespace").tokens == [
        "one",
        "text",
        "here",
    ]
    with pytest.raises(ShapeError, match="got a single string"):
        Vocabulary.build("one text here")
    callable_vocab = Vocabulary.build(["a-b"], tokenizer=lambda t: t.split("-"))
    assert callable_vocab.tokens == ["a", "b"] and "tokenizer" not in callable_vocab.to_dict()


@pytest.mark.parametrize("oov", ["unk", "error", "hash"])
def test_fast_paths_agree_with_the_per_token_route(oov: str) -> None:
    """Counting and lookup at C speed give what the per-token route gives, errors included."""
    sentences = [["b", "a", "b"], ("c", "a"), [], ["a", 7, "d"]]
    options = {"num_oov_buckets": 3} if oov == "hash" else {}
    v = Vocabulary.build(sentences, oov=oov, **options)  # type: ignore[arg-type]
    assert v.tokens == ["a", "b", "c", 7, "d"]  # by count, then first appearance
    assert v.counts == Counter({"a": 3, "b": 2, "c": 1, 7: 1, "d": 1})
    known = [["a", "d", 7], ["c"]]
    batch = v.encode(known)
    expected = [[v._encode_one(t) for t in row] for row in known]
    assert batch.ids[0].tolist() == expected[0] and batch.ids[1, :1].tolist() == expected[1]
    mixed = ["a", np.int64(7), "zz"]  # a numpy scalar takes the per-token route
    if oov == "error":
        with pytest.raises(UnknownTokenError, match="Token 'zz' is not in the vocabulary"):
            v.encode(mixed)
        with pytest.raises(ShapeError, match="got the bool True"):
            v.encode([True])  # True == 1 as a dict key: the type check catches it
    else:
        assert v.encode(mixed).tolist() == [v["a"], v[7], v._encode_one("zz")]
        with pytest.raises(ShapeError, match="got the bool True"):
            v.encode_batch([["a", True]])
