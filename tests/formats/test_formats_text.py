"""Tests of synthembed.formats.text: GloVe / word2vec text, both fast parsers, bad lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from support import load_uncached as _load
from support import make_vectors as _vectors
from support import write_file as _write

from synthembed import _kernels
from synthembed.errors import FileFormatError
from synthembed.formats import text as text_module
from synthembed.vectors import (
    save_vectors,
)


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
    monkeypatch.setattr(text_module, "_BLOCK", 64)  # force many blocks, lines split across reads
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


@pytest.mark.parametrize(
    "data",
    [b"a 1 2\nb 3\t4\nc 1 1\n", b"a\t1\t2\nb\t3\t4\nc\t1\t1\n", b"3\t2\na 1 2\nb 3\t4\nc 1 1\n"],
)
def test_tabs_are_whitespace(tmp_path: Path, parser: str, data: bytes) -> None:
    got = _load(_write(tmp_path / "tabs.txt", data))
    assert got.words == ["a", "b", "c"]
    np.testing.assert_array_equal(got.vectors.numpy(), [[1, 2], [3, 4], [1, 1]])


@pytest.mark.parametrize("kernels", ["fast", "reference"])
@pytest.mark.parametrize("fmt", ["glove", "word2vec-binary"])
def test_rows_in_kernel_allocation(tmp_path: Path, parser: str, fmt: str, kernels: str) -> None:
    # The result array comes from _kernels.empty (2 MiB pages in the fast set) and is a
    # plain writable float32 array under either kernel set.
    v = _vectors(n=5, dim=3)
    save_vectors(v, tmp_path / "v.txt", format=fmt)  # type: ignore[arg-type]
    with _kernels.use_kernels(kernels):  # type: ignore[arg-type]
        got = _load(tmp_path / "v.txt")
    assert torch.equal(got.vectors, v.vectors) and got.vectors.dtype == torch.float32
    got.vectors[0, 0] = 7.0  # a writable tensor, as from np.empty
    assert float(got["the"][0]) == 7.0
    array = _kernels.empty(4, 2, dtype=torch.float32).numpy()
    assert array.shape == (4, 2) and array.dtype == np.float32 and array.flags.writeable


def test_limit_zero_and_limit_inside_a_block(tmp_path: Path, parser: str) -> None:
    path = _write(tmp_path / "g.txt", b"a 1 2\nb 3 4\nc 5 6\nd 7 oops\n")
    assert len(_load(path, limit=0)) == 0
    two = _load(path, limit=2)  # the bad line after the limit is never read as a vector
    assert two.words == ["a", "b"] and two.vectors.tolist() == [[1.0, 2.0], [3.0, 4.0]]


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
    monkeypatch.setattr(text_module, "_BLOCK", 50)
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
