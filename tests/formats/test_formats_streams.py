"""Tests of synthembed.formats.streams: compression, format detection."""

from __future__ import annotations

import bz2
import gzip
import os
from pathlib import Path

import pytest
from support import WORDS
from support import load_uncached as _load
from support import make_vectors as _vectors
from support import write_file as _write

from synthembed.errors import FileFormatError
from synthembed.vectors import (
    save_vectors,
)


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
