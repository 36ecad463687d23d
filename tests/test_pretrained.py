"""Tests of synthembed.pretrained: the old import path re-exports the word-vector API."""

from __future__ import annotations

from synthembed import pretrained, vectors


def test_old_names_are_the_new_objects() -> None:
    for name in pretrained.__all__:
        assert getattr(pretrained, name) is getattr(vectors, name)
    assert set(pretrained.__all__) == {
        "CoverageReport",
        "Vectors",
        "align",
        "default_cache_dir",
        "load_vectors",
        "save_vectors",
    }
