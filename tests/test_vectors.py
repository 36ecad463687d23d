"""Tests of synthembed.vectors: Vectors, load/save arguments, alignment."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from support import make_vectors as _vectors
from support import write_file as _write

from synthembed.errors import ConfigError, ShapeError, UnknownTokenError
from synthembed.layers.embedding import Embedding
from synthembed.vectors import (
    CoverageReport,
    Vectors,
    align,
    load_vectors,
    save_vectors,
)
from synthembed.vocab import Vocabulary


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
    with pytest.warns(DeprecationWarning, match=r"align\(generator=\.\.\.\) is deprecated"):
        weight, _ = align(v, vocab, init="normal", generator=g)
    assert torch.equal(weight, align(v, vocab, init="normal", seed=0)[0])
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


def test_vectors_save_and_load_with_synthembed_save(tmp_path: Path) -> None:
    import synthembed

    v = Vectors(["cat", "dog", "émoji"], torch.randn(3, 5, dtype=torch.float64))
    synthembed.save(v, tmp_path / "v.safetensors")
    loaded = synthembed.load(tmp_path / "v.safetensors")
    assert loaded.words == v.words and torch.equal(loaded.vectors, v.vectors)
    assert loaded.vectors.dtype == torch.float64
    bound = Vectors(Vocabulary(["a", "b"]), torch.randn(4, 2))
    synthembed.save(bound, tmp_path / "b.safetensors")
    again = synthembed.load(tmp_path / "b.safetensors")
    assert again.vocab == bound.vocab and torch.equal(again.vectors, bound.vectors)


def test_embedding_dim_is_the_vector_size_and_dim_its_alias() -> None:
    v = Vectors(["a"], torch.zeros(1, 7))
    assert v.embedding_dim == v.dim == 7


def test_align_takes_a_seed() -> None:
    v = Vectors(["cat", "dog"], torch.randn(2, 3))
    vocab = Vocabulary(["cat", "cow"])
    a, _ = align(v, vocab, init="normal", seed=5)
    b, _ = align(v, vocab, init="normal", seed=5)
    assert torch.equal(a, b)
    with pytest.raises(ConfigError, match="seed= or generator=, not both"):
        align(v, vocab, seed=1, generator=torch.Generator())


def test_from_embedding_keeps_regular_tokens_only() -> None:
    from synthembed import Embedding
    from synthembed.errors import ConfigError as _ConfigError
    from synthembed.vocab import Vocabulary

    vocab = Vocabulary.build([["cat", "dog", "cat"]])
    emb = Embedding(embedding_dim=2, vocab=vocab)
    v = Vectors.from_embedding(emb)
    assert v.words == ["cat", "dog"]
    assert torch.equal(v.vectors, emb.weight.detach()[2:4])
    assert not v.vectors.requires_grad
    with torch.no_grad():
        emb.weight.add_(1.0)
    assert not torch.equal(v.vectors, emb.weight.detach()[2:4])  # a copy
    assert Vectors.from_embedding(v) is v
    with pytest.raises(_ConfigError, match=r"Vectors\.from_embedding got a Embedding without"):
        Vectors.from_embedding(Embedding(3, 2))
