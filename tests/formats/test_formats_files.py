"""Tests of synthembed.formats.files: every format round-trips; gensim reads ours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from support import WORDS
from support import load_uncached as _load
from support import make_vectors as _vectors

from synthembed.vectors import (
    save_vectors,
)


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
