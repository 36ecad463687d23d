"""Tests of synthembed.formats.cache: the parse cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from synthembed.formats import files as files_module
from synthembed.vectors import (
    Vectors,
    default_cache_dir,
    load_vectors,
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
