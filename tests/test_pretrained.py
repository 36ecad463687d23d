"""Tests of synthembed.pretrained: vector file formats, bad files, the cache, alignment."""

from __future__ import annotations

import bz2
import gzip
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from synthembed import pretrained as P
from synthembed.errors import ConfigError, FileFormatError, ShapeError, UnknownTokenError
from synthembed.layers.embedding import Embedding
from synthembed.pretrained import CoverageReport, Vectors, align, load_vectors, save_vectors
from synthembed.vocab import Vocabulary

WORDS = ["the", "cat", "Dog", "naïve", "x"]


HAS_ARROW = P._arrow_modules() is not None


@pytest.fixture(
    params=[
        pytest.param(
            "one block",
            marks=pytest.mark.skipif(not HAS_ARROW, reason="pyarrow is not installed"),
        ),
        pytest.param(
            "tiny blocks",
            marks=pytest.mark.skipif(not HAS_ARROW, reason="pyarrow is not installed"),
        ),
        "numpy",
        "numpy tiny blocks",
    ]
)
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test on both fast parsers (pyarrow's, numpy's fallback), each with the whole
    file in one block and with lines split across 7-byte reads."""
    if "numpy" in request.param:
        monkeypatch.setattr(P, "_ARROW", False)
    if "tiny" in request.param:
        monkeypatch.setattr(P, "_BLOCK", 7)
    return str(request.param)


def _vectors(n: int = 5, dim: int = 4, seed: int = 0) -> Vectors:
    g = torch.Generator().manual_seed(seed)
    words = WORDS[:n] if n <= len(WORDS) else [f"w{i}" for i in range(n)]
    return Vectors(words, torch.randn(n, dim, generator=g))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _load(path: Path, **kw: object) -> Vectors:
    return load_vectors(path, cache=False, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------ formats
@pytest.mark.parametrize("fmt", ["glove", "word2vec", "fasttext", "word2vec-binary"])
@pytest.mark.parametrize("suffix", ["", ".gz", ".bz2", ".xz"])
def test_round_trip_every_format_and_compression(tmp_path: Path, fmt: str, suffix: str) -> None:
    v = _vectors()
    path = tmp_path / f"vec.{'bin' if 'binary' in fmt else 'txt'}{suffix}"
    save_vectors(v, path, format=fmt)  # type: ignore[arg-type]
    got = _load(path)
    assert got.words == WORDS
    assert got.vectors.dtype == torch.float32
    assert torch.equal(got.vectors, v.vectors)  # precision=9 round-trips float32 exactly
    assert got.format == ("word2vec" if fmt == "fasttext" else fmt)
    assert got.dim == 4 and len(got) == 5


def test_compression_is_real(tmp_path: Path) -> None:
    v = _vectors()
    save_vectors(v, tmp_path / "a.txt.gz", format="glove")
    save_vectors(v, tmp_path / "a.txt.bz2", format="glove")
    plain = gzip.decompress((tmp_path / "a.txt.gz").read_bytes())
    assert plain == bz2.decompress((tmp_path / "a.txt.bz2").read_bytes())
    assert plain.decode().splitlines()[1].startswith("cat ")
    # Compression is detected from magic bytes, not from the name.
    os.replace(tmp_path / "a.txt.gz", tmp_path / "renamed.txt")
    assert _load(tmp_path / "renamed.txt").words == WORDS


def test_text_variants(tmp_path: Path, parser: str) -> None:
    # Trailing spaces (word2vec C tool, fastText), CRLF, blank lines, no final newline.
    data = b"3 2 \r\nthe 1 2 \r\n\r\ncat 3.5e-1 -4 \r\nNA 0 1"
    got = _load(_write(tmp_path / "v.vec", data))
    assert got.format == "word2vec"
    assert got.words == ["the", "cat", "NA"]
    assert got.vectors.tolist() == [[1.0, 2.0], [0.3499999940395355, -4.0], [0.0, 1.0]]


def test_glove_with_numeric_and_quoted_words(tmp_path: Path, parser: str) -> None:
    data = b'1 0.5 0.25\n"quote 1 2\n#hash 3 4\nnull 5 6\n'
    got = _load(_write(tmp_path / "g.txt", data))
    assert got.format == "glove"
    assert got.words == ["1", '"quote', "#hash", "null"]
    assert got["1"].tolist() == [0.5, 0.25]


def test_many_blocks_and_limit(
    tmp_path: Path, parser: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(P, "_BLOCK", 64)  # force many blocks, lines split across reads
    v = _vectors(n=40, dim=3, seed=1)
    path = tmp_path / "g.txt"
    save_vectors(v, path, format="glove")
    full = _load(path)
    assert torch.equal(full.vectors, v.vectors) and full.words == v.words
    part = _load(path, limit=7)
    assert part.words == v.words[:7]
    assert torch.equal(part.vectors, v.vectors[:7])
    save_vectors(v, tmp_path / "b.bin", format="word2vec-binary")
    assert torch.equal(_load(tmp_path / "b.bin", limit=5).vectors, v.vectors[:5])


def test_fast_parsers_agree_with_python_floats(tmp_path: Path, parser: str) -> None:
    # Varied number spellings; the result must equal Python's float() rounded to float32.
    rng = np.random.default_rng(3)
    rows = []
    for i in range(60):
        values = rng.normal(0, 10.0 ** rng.integers(-6, 6), size=5)
        spelled = [f"{x:.{rng.integers(0, 9)}f}" if i % 3 else f"{x:.6e}" for x in values]
        rows.append(f"w{i} " + " ".join(spelled))
    rows[7] = "w7 1. .5 -0 +2 1E3"
    path = _write(tmp_path / "n.txt", ("\n".join(rows) + "\n").encode())
    got = _load(path)
    expected = np.array([[float(x) for x in r.split(" ")[1:]] for r in rows], dtype=np.float32)
    np.testing.assert_array_equal(got.vectors.numpy(), expected)
    assert got.words == [f"w{i}" for i in range(60)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # Line 2 one value short and line 3 one long: the block's total count is right.
        (b"a 1 2\nb 3\nc 1 1 1\nd 0 0\n", "line 2 has 1 values after the word 'b'"),
        # Two spaces: the line has two separators but one value.
        (b"a 1 2\nb  3\nc 1 1\n", "line 2 has the non-numeric value '' in column 2"),
        (b"a 1 2\nb 3\t4\nc 1 1\n", "line 2 has 1 values after the word 'b'"),
        (b"a 1 2\nb 0x10 4\nc 1 1\n", "line 2 has the non-numeric value '0x10'"),
        (b"a 1 2\nb inf 4\nc 1 1\n", "line 2 has the non-finite value 'inf'"),
        (b'a 1 2\nb "3" 4\nc 1 1\n', "line 2 has the non-numeric value '\"3\"'"),
    ],
)
def test_fast_parse_rejects_what_the_exact_reader_rejects(
    tmp_path: Path, parser: str, data: bytes, message: str
) -> None:
    with pytest.raises(FileFormatError, match=message):
        _load(_write(tmp_path / "bad.txt", data))


@pytest.mark.parametrize("fmt", ["glove", "word2vec-binary"])
def test_rows_in_huge_page_mapping(
    tmp_path: Path, parser: str, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    # Every array goes through the mmap path (the 8 MiB threshold lowered to 0).
    monkeypatch.setattr(P, "_HUGE_PAGE_MIN_BYTES", 0)
    v = _vectors(n=5, dim=3)
    save_vectors(v, tmp_path / "v.txt", format=fmt)  # type: ignore[arg-type]
    got = _load(tmp_path / "v.txt")
    assert torch.equal(got.vectors, v.vectors) and got.vectors.dtype == torch.float32
    got.vectors[0, 0] = 7.0  # a writable tensor, as from np.empty
    assert float(got["the"][0]) == 7.0
    array = P._allocate_rows(4, 2)
    assert array.shape == (4, 2) and array.dtype == np.float32 and array.flags.writeable


def test_limit_zero_and_limit_inside_a_block(tmp_path: Path, parser: str) -> None:
    path = _write(tmp_path / "g.txt", b"a 1 2\nb 3 4\nc 5 6\nd 7 oops\n")
    assert len(_load(path, limit=0)) == 0
    two = _load(path, limit=2)  # the bad line after the limit is never read as a vector
    assert two.words == ["a", "b"] and two.vectors.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_reads_gensim_files_and_gensim_reads_ours(tmp_path: Path) -> None:
    gensim_models = pytest.importorskip("gensim.models")
    kv = gensim_models.KeyedVectors(vector_size=3)
    kv.add_vectors(["a", "b", "c"], np.arange(9, dtype=np.float32).reshape(3, 3) / 7)
    kv.save_word2vec_format(str(tmp_path / "g.bin"), binary=True)
    kv.save_word2vec_format(str(tmp_path / "g.txt"), binary=False)
    for name, fmt in (("g.bin", "word2vec-binary"), ("g.txt", "word2vec")):
        got = _load(tmp_path / name)
        assert got.format == fmt and got.words == ["a", "b", "c"]
        np.testing.assert_allclose(got.vectors.numpy(), kv.vectors, rtol=1e-6)
    ours = _vectors()
    save_vectors(ours, tmp_path / "o.bin", format="word2vec-binary")
    back = gensim_models.KeyedVectors.load_word2vec_format(str(tmp_path / "o.bin"), binary=True)
    assert back.index_to_key == WORDS
    np.testing.assert_array_equal(back.vectors, ours.vectors.numpy())


# ------------------------------------------------------------------ bad files
BAD_TEXT = [
    (
        b"a 1 2\nb 3 4 5\nc 1 1\n",
        "line 2 has 3 values after the word 'b'; expected 2",
        "wrong field count",
    ),
    (
        b"a 1 2\nb 3\nc 1 1\n",
        "line 2 has 1 values after the word 'b'; expected 2",
        "wrong field count",
    ),
    (
        b"a 1 2\nb 3 x\nc 1 1\n",
        "line 2 has the non-numeric value 'x' in column 3",
        "non-numeric value",
    ),
    (b"a 1 2\nb 3 nan\nc 1 1\n", "line 2 has the non-finite value 'nan'", "non-finite value"),
    (b"a 1 2\nb\xff 3 4\nc 1 1\n", r"line 2 is not valid UTF-8 \(byte 0xff", "non-UTF-8 bytes"),
    (b"a 1 2\n 3 4\nc 1 1\n", "line 2 starts with a space", "empty word"),
    (b"a 1 2\nb 3 4\nc 1", "line 3 has 1 values .* the file looks truncated", "wrong field count"),
]


@pytest.mark.parametrize(("data", "message", "kind"), BAD_TEXT)
def test_bad_lines_raise_with_line_number(
    tmp_path: Path, parser: str, data: bytes, message: str, kind: str
) -> None:
    path = _write(tmp_path / "bad.txt", data)
    with pytest.raises(FileFormatError, match=message):
        _load(path)


@pytest.mark.parametrize(("data", "message", "kind"), BAD_TEXT)
def test_bad_lines_skipped_with_count(
    tmp_path: Path, parser: str, data: bytes, message: str, kind: str
) -> None:
    path = _write(tmp_path / "bad.txt", data)
    with pytest.warns(UserWarning, match=f"skipped 1 bad line\\(s\\): 1 {kind}"):
        got = _load(path, errors="skip")
    assert got.skipped == {kind: 1}
    assert got.words == [w for w in ("a", "b", "c") if w != ("c" if b"c 1 1" not in data else "b")]
    assert got["a"].tolist() == [1.0, 2.0]


def test_bad_line_in_a_later_block_names_the_true_line(
    tmp_path: Path, parser: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(P, "_BLOCK", 50)
    lines = [f"w{i} {i} {i + 1}" for i in range(30)]
    lines[23] = "w23 1 oops"
    path = _write(tmp_path / "g.txt", ("\n".join(lines) + "\n").encode())
    with pytest.raises(FileFormatError, match="line 24 has the non-numeric value 'oops'"):
        _load(path)


def test_duplicate_words(tmp_path: Path, parser: str) -> None:
    path = _write(tmp_path / "d.txt", b"3 1\na 1\nb 2\na 3\n")
    with pytest.raises(FileFormatError, match="line 4 repeats the word 'a' of line 2"):
        _load(path, format="word2vec")
    path = _write(tmp_path / "d.txt", b"a 1\nb 2\na 3\n")
    with pytest.warns(UserWarning, match="1 duplicate word"):
        got = _load(path, errors="skip")
    assert got.words == ["a", "b"] and got.vectors.tolist() == [[1.0], [2.0]]


def test_mixed_dimensions_after_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.txt", b"2 3\na 1 2 3\nb 1 2\n")
    with pytest.raises(FileFormatError, match="line 3 has 2 values after the word 'b'; expected 3"):
        _load(path)


def test_header_count_mismatch(tmp_path: Path) -> None:
    path = _write(tmp_path / "h.txt", b"3 2\na 1 2\nb 3 4\n")
    with pytest.raises(FileFormatError, match="header promises 3 vectors but the file holds 2"):
        _load(path)
    with pytest.warns(UserWarning, match="header promises 3 vectors"):
        assert _load(path, errors="skip").words == ["a", "b"]
    more = _write(tmp_path / "h2.txt", b"1 2\na 1 2\nb 3 4\n")
    with pytest.raises(FileFormatError, match="more vectors than its header promises"):
        _load(more)


def test_bad_header_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match="line 1: expected a header"):
        _load(_write(tmp_path / "a.txt", b"a 1 2\n"), format="word2vec")
    with pytest.raises(FileFormatError, match="is empty"):
        _load(_write(tmp_path / "e.txt", b""))
    with pytest.raises(FileFormatError, match="no values"):
        _load(_write(tmp_path / "w.txt", b"lonely\n"))
    with pytest.raises(FileNotFoundError, match="No vector file at"):
        _load(tmp_path / "missing.txt")


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_broken_compressed_file_names_the_file(tmp_path: Path, suffix: str, damage: str) -> None:
    path = tmp_path / f"v.txt{suffix}"
    save_vectors(_vectors(5, 40), path, format="glove")
    data = path.read_bytes()
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:  # keep the magic bytes, scramble the compressed body
        data = data[:12] + bytes(b ^ 0x5A for b in data[12:])
    broken = _write(tmp_path / f"broken.txt{suffix}", data)
    with pytest.raises(FileFormatError, match=r"broken\.txt.* truncated or corrupt compressed"):
        _load(broken)


def test_binary_bad_files(tmp_path: Path) -> None:
    v = _vectors()
    path = tmp_path / "v.bin"
    save_vectors(v, path, format="word2vec-binary")
    data = path.read_bytes()
    with pytest.raises(FileFormatError, match=r"vector 5 of 5 is cut short .* truncated"):
        _load(_write(tmp_path / "t.bin", data[:-7]))
    broken = data.replace(b"cat ", b"c\xfft ")
    with pytest.raises(FileFormatError, match=r"word of vector 2 .* is not valid UTF-8"):
        _load(_write(tmp_path / "u.bin", broken), format="word2vec-binary")
    with pytest.warns(UserWarning, match="1 non-UTF-8 bytes"):
        got = _load(tmp_path / "u.bin", format="word2vec-binary", errors="skip")
    assert got.words == ["the", "Dog", "naïve", "x"]
    nan = Vectors(["a", "b"], torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))
    save_vectors(nan, tmp_path / "n.bin", format="word2vec-binary")
    with pytest.raises(FileFormatError, match=r"vector 1 \('a', byte 4\) has a non-finite value"):
        _load(tmp_path / "n.bin")
    dup = Vectors(["a", "b"], torch.eye(2))
    save_vectors(dup, tmp_path / "d.bin", format="word2vec-binary")
    raw = (tmp_path / "d.bin").read_bytes().replace(b"b ", b"a ")
    with pytest.raises(FileFormatError, match="vector 2 repeats the word 'a' of vector 1"):
        _load(_write(tmp_path / "d2.bin", raw))


def test_argument_errors(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.txt", b"a 1\n")
    with pytest.raises(ConfigError, match="'format' parameter of load_vectors must be one of"):
        load_vectors(path, format="csv")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'errors' parameter of load_vectors"):
        load_vectors(path, errors="ignore")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'limit' parameter of load_vectors must be an int"):
        load_vectors(path, limit=-1)
    with pytest.raises(ConfigError, match="The word 'a b' cannot be written"):
        save_vectors(Vectors(["a b"], torch.ones(1, 2)), tmp_path / "o.txt")
    with pytest.raises(ConfigError, match="'format' parameter of save_vectors"):
        save_vectors(_vectors(), tmp_path / "o.txt", format="auto")  # type: ignore[arg-type]


# ------------------------------------------------------------------ cache
def test_cache_is_used_and_invalidated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _write(tmp_path / "g.txt", b"a 1 2\nb 3 4\n")
    cache_dir = tmp_path / "cache"
    first = load_vectors(src, cache=True, cache_dir=cache_dir)
    assert sorted(p.suffix for p in cache_dir.iterdir()) == [".json", ".npy"]

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed instead of using the cache")

    with monkeypatch.context() as m:
        m.setattr(P, "_read_text", fail)
        again = load_vectors(src, cache=True, cache_dir=cache_dir)
    assert again.words == first.words and torch.equal(again.vectors, first.vectors)
    # Same size, new content: the fingerprint changes, so the file is parsed again.
    src.write_bytes(b"a 5 6\nb 7 8\n")
    changed = load_vectors(src, cache=True, cache_dir=cache_dir)
    assert changed.vectors.tolist() == [[5.0, 6.0], [7.0, 8.0]]
    # The cached copy is private: writing to it does not touch the cache file.
    changed.vectors[0, 0] = -1.0
    assert load_vectors(src, cache=True, cache_dir=cache_dir).vectors[0, 0].item() == 5.0


def test_cache_auto_skips_small_files_and_keys_options(tmp_path: Path) -> None:
    src = _write(tmp_path / "g.txt", b"a 1 2\nb 3 4\n")
    load_vectors(src, cache="auto", cache_dir=tmp_path / "c1")
    assert not (tmp_path / "c1").exists()
    load_vectors(src, cache=True, cache_dir=tmp_path / "c2", limit=1)
    assert load_vectors(src, cache=True, cache_dir=tmp_path / "c2").words == ["a", "b"]
    assert load_vectors(src, cache=True, cache_dir=tmp_path / "c2", limit=1).words == ["a"]


def test_default_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SYNTHEMBED_CACHE_DIR", str(tmp_path))
    assert P.default_cache_dir() == tmp_path


# ------------------------------------------------------------------ Vectors
def test_vectors_access_and_errors() -> None:
    v = Vectors(["cat", "dog"], torch.tensor([[1.0, 0.0], [0.8, 0.6]]))
    assert v["dog"].tolist() == pytest.approx([0.8, 0.6])
    assert v[["dog", "cat"]].shape == (2, 2)
    assert "cat" in v and "cow" not in v
    assert v.vocab.index_to_key == ["cat", "dog"] and v.vocab.oov == "error"
    with pytest.raises(
        UnknownTokenError, match=r"The word 'cats' has no vector .* Close words: \['cat'\]"
    ):
        v["cats"]
    with pytest.raises(ShapeError, match="Got 1 words but 2 vectors"):
        Vectors(["a"], torch.zeros(2, 2))
    with pytest.raises(ConfigError, match="must be distinct; repeated: \\['a'\\]"):
        Vectors(["a", "a"], torch.zeros(2, 2))
    with pytest.raises(ShapeError, match="2-d"):
        Vectors(["a"], torch.zeros(2))
    unit = v.unit_vectors()
    assert torch.allclose(unit.norm(dim=1), torch.ones(2))
    v.vectors.mul_(2)  # in-place change invalidates the normalised cache
    assert v.unit_vectors() is not unit


# ------------------------------------------------------------------ alignment
def test_align_exact_fallback_missing_and_init() -> None:
    v = Vectors(["the", "cat", "dog"], torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 5.0]]))
    vocab = Vocabulary.build(["the", "the", "the", "Cat", "Cat", "cow"])
    weight, report = align(v, vocab, init="zeros")
    assert vocab.index_to_key == ["<pad>", "<unk>", "the", "Cat", "cow"]
    assert weight.tolist() == [[0, 0], [0, 0], [1, 1], [2, 2], [0, 0]]
    assert (report.total, report.found, report.found_by_fallback, report.missing) == (3, 1, 1, 1)
    assert report.missing_examples == ("cow",)
    assert report.coverage == pytest.approx(2 / 3)
    assert report.token_coverage == pytest.approx(5 / 6)
    assert "2/3 tokens covered" in str(report) and "['cow']" in str(report)

    weight, report = align(v, vocab, lowercase_fallback=False, init="mean")
    assert report.found_by_fallback == 0 and report.missing == 2
    assert weight[3].tolist() == [2.0, pytest.approx(8 / 3)]  # mean vector
    assert weight[0].tolist() == [0.0, 0.0]  # padding stays zero

    g = torch.Generator().manual_seed(0)
    weight, _ = align(v, vocab, init="normal", generator=g)
    assert weight[2].tolist() == [1.0, 1.0]
    assert weight[4].tolist() != [0.0, 0.0] and torch.isfinite(weight).all()


def test_align_errors() -> None:
    v = _vectors()
    with pytest.raises(ConfigError, match="'init' parameter of align must be one of"):
        align(v, Vocabulary(["a"]), init="uniform")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="align expects a synthembed Vocabulary; got list"):
        align(v, ["a"])  # type: ignore[arg-type]


def test_embedding_from_pretrained_contract(tmp_path: Path) -> None:
    """Embedding.from_pretrained(path, vocab=...) reads with load_vectors and aligns."""
    v = Vectors(["the", "cat"], torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    path = tmp_path / "v.txt"
    save_vectors(v, path, format="glove")
    vocab = Vocabulary(["cat", "The", "zebra"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer = Embedding.from_pretrained(path, vocab=vocab, init="zeros")
    assert layer.weight.tolist() == [[0, 0], [0, 0], [3, 4], [1, 2], [0, 0]]
    assert not layer.weight.requires_grad
    assert isinstance(layer.coverage, CoverageReport) and layer.coverage.missing == 1
    assert layer.padding_idx == vocab.pad_id
    plain = Embedding.from_pretrained(v, freeze=False)
    assert plain.vocab is not None and plain.vocab.index_to_key == ["the", "cat"]
    assert torch.equal(plain.weight, v.vectors) and plain.weight.requires_grad
