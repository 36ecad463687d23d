"""Tests of synthembed.formats.binary: word2vec binary files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from synthembed.errors import FileFormatError
from synthembed.vectors import (
    Vectors,
    load_vectors,
    save_vectors,
)

WORDS = ["the", "cat", "Dog", "naïve", "x"]


def _vectors(n: int = 5, dim: int = 4, seed: int = 0) -> Vectors:
    g = torch.Generator().manual_seed(seed)
    words = WORDS[:n] if n <= len(WORDS) else [f"w{i}" for i in range(n)]
    return Vectors(words, torch.randn(n, dim, generator=g))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _load(path: Path, **kw: object) -> Vectors:
    return load_vectors(path, cache=False, **kw)  # type: ignore[arg-type]


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
