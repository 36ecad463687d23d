"""Tests of synthembed.formats.cache: the parse cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from support import write_file as _write

from synthembed.formats import files as files_module
from synthembed.vectors import (
    default_cache_dir,
    load_vectors,
)


def test_cache_is_used_and_invalidated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _write(tmp_path / "g.txt", b"a 1 2\nb 3 4\n")
    cache_dir = tmp_path / "cache"
    first = load_vectors(src, cache=True, cache_dir=cache_dir)
    assert sorted(p.suffix for p in cache_dir.iterdir()) == [".json", ".npy"]

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed instead of using the cache")

    with monkeypatch.context() as m:
        m.setattr(files_module, "read_text", fail)
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
    assert default_cache_dir() == tmp_path
