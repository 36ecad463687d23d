"""Tests of synthembed.formats.binary: word2vec binary files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from support import load_uncached as _load
from support import make_vectors as _vectors
from support import write_file as _write

from synthembed.errors import FileFormatError
from synthembed.vectors import (
    Vectors,
    save_vectors,
)


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
