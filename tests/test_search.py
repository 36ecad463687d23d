"""Tests of synthembed.search: exact search, the bf16 prefilter, most_similar."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthembed.errors import ConfigError, ShapeError, UnknownTokenError
from synthembed.search import most_similar, search
from synthembed.vectors import Vectors


def _random_vectors(n: int = 300, dim: int = 16, seed: int = 0) -> Vectors:
    g = torch.Generator().manual_seed(seed)
    return Vectors([f"w{i}" for i in range(n)], torch.randn(n, dim, generator=g))


def _brute_force(unit: torch.Tensor, queries: torch.Tensor, k: int) -> torch.Tensor:
    scores = queries @ unit.T
    return torch.tensor(np.argsort(-scores.numpy(), axis=1, kind="stable")[:, :k].copy())


@pytest.mark.parametrize("chunk_size", [7, 1000])
def test_search_matches_brute_force(chunk_size: int) -> None:
    v = _random_vectors()
    unit = v.unit_vectors()
    queries = unit[:20] + 0.1
    scores, ids = search(unit, queries, 5, chunk_size=chunk_size)
    assert ids.shape == (20, 5) and ids.dtype == torch.long
    assert torch.equal(ids, _brute_force(unit, queries, 5))
    assert torch.all(scores[:, :-1] >= scores[:, 1:])
    torch.testing.assert_close(scores, (queries @ unit.T).gather(1, ids))


@pytest.mark.parametrize("spread", [1.0, 1e-4])
def test_bf16_prefilter_stays_exact(spread: float) -> None:
    """Candidates from bf16, rescored in float32: the same ids as float32 search.

    ``spread=1e-4`` makes rows near-duplicates whose scores bf16 cannot tell apart,
    so every query takes the float32 fallback.
    """
    g = torch.Generator().manual_seed(4)
    base = torch.randn(1, 32, generator=g)
    data = base + spread * torch.randn(3000, 32, generator=g)
    v = Vectors([f"w{i}" for i in range(3000)], data)
    unit = v.unit_vectors()
    rows = torch.arange(0, 3000, 60)
    queries = unit[rows]
    exclude = rows.unsqueeze(1)
    s32, i32 = search(unit, queries, 10, exclude=exclude, chunk_size=16)
    s16, i16 = search(
        unit, queries, 10, exclude=exclude, chunk_size=16, unit_bf16=v.unit_vectors(torch.bfloat16)
    )
    assert torch.equal(i16, i32)
    torch.testing.assert_close(s16, s32, atol=1e-6, rtol=0)
    assert not (i16 == exclude).any()
    with pytest.raises(ShapeError, match="unit_bf16 must have the shape of unit"):
        search(unit, queries, 1, unit_bf16=unit[:5].bfloat16())


def test_search_excludes_rows_and_checks_shapes() -> None:
    unit = torch.eye(4)
    q = torch.tensor([[1.0, 0.5, 0.0, 0.0], [0.0, 0.0, 1.0, 0.9]])
    _, ids = search(unit, q, 2, exclude=torch.tensor([[0, -1], [2, 3]]))
    assert ids[0, 0].item() == 1 and set(ids[1].tolist()).isdisjoint({2, 3})
    with pytest.raises(ShapeError, match=r"same D; got \(4, 4\) and \(1, 3\)"):
        search(unit, torch.ones(1, 3), 1)
    with pytest.raises(
        ConfigError, match=r"'k' parameter of search must be an int in the range \[1, 4\]"
    ):
        search(unit, q, 5)


def test_most_similar_words_vectors_and_batches_agree_with_gensim() -> None:
    gensim_models = pytest.importorskip("gensim.models")
    v = _random_vectors(n=200, dim=12, seed=3)
    kv = gensim_models.KeyedVectors(vector_size=12)
    kv.add_vectors(v.words, v.vectors.numpy())
    ours = most_similar(v, "w5", k=4)
    theirs = kv.most_similar("w5", topn=4)
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], rtol=1e-5)
    batch = most_similar(v, ["w5", "w9"], k=4)
    assert [w for w, _ in batch[0]] == [w for w, _ in ours]
    assert [s for _, s in batch[0]] == pytest.approx([s for _, s in ours], abs=1e-6)
    assert [w for w, _ in batch[1]] == [w for w, _ in kv.most_similar("w9", topn=4)]
    # A raw vector is not excluded from its own results.
    by_vector = most_similar(v, v["w5"], k=1)
    assert by_vector[0][0] == "w5" and by_vector[0][1] == pytest.approx(1.0)
    assert v.most_similar("w5", k=4) == ours
    assert most_similar(v, "w5", k=1, exclude_query=False)[0][0] == "w5"


def test_most_similar_errors() -> None:
    v = _random_vectors(n=3, dim=2)
    with pytest.raises(UnknownTokenError, match="The word 'nope' has no vector"):
        most_similar(v, "nope")
    with pytest.raises(ShapeError, match=r"shape \(D,\) or \(Q, D\) with D=2; got \(3,\)"):
        most_similar(v, torch.ones(3))
    with pytest.raises(ConfigError, match=r"expects a synthembed\.pretrained\.Vectors; got Tensor"):
        most_similar(torch.ones(3, 2), "a")  # type: ignore[arg-type]
    assert len(most_similar(v, "w0", k=10)) == 2  # capped at the other words
