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


# ---------------------------------------------------------------- faiss and torch backends
def _exact_numpy(unit: torch.Tensor, queries: torch.Tensor, k: int) -> np.ndarray:
    """Float64 numpy ground truth: the top-k scores."""
    scores = queries.double().numpy() @ unit.double().numpy().T
    return -np.sort(-scores, axis=1)[:, :k]


@pytest.fixture(params=["faiss", "auto"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The backend to ask for: faiss (when installed), or auto with faiss's import failing."""
    if request.param == "faiss":
        pytest.importorskip("faiss")
    else:
        monkeypatch.setitem(__import__("sys").modules, "faiss", None)  # import faiss -> ImportError
    return str(request.param)


def test_search_is_exact_with_and_without_faiss(backend: str) -> None:
    v = _random_vectors(n=2000, dim=24, seed=3)
    unit = v.unit_vectors()
    queries = torch.randn(50, 24, generator=torch.Generator().manual_seed(4))
    queries = queries / queries.norm(dim=1, keepdim=True)
    scores, ids = search(unit, queries, 10, backend=backend)  # type: ignore[arg-type]
    truth = _exact_numpy(unit, queries, 10)
    np.testing.assert_allclose(scores.numpy(), truth, atol=1e-5)
    # The ids' own scores are their exact scores (ties aside: these data have none).
    assert torch.equal(ids, _brute_force(unit, queries, 10))
    if backend == "auto":  # faiss cannot be imported
        with pytest.raises(ImportError, match=r"backend='faiss'\) needs faiss"):
            search(unit, queries, 10, backend="faiss")
    with pytest.raises(ConfigError, match="'backend' parameter of search"):
        search(unit, queries, 10, backend="gpu")  # type: ignore[arg-type]


def test_faiss_and_torch_backends_agree() -> None:
    pytest.importorskip("faiss")
    v = _random_vectors(n=500, dim=16, seed=5)
    unit = v.unit_vectors()
    queries = unit[:30]
    exclude = torch.arange(30).unsqueeze(1)
    a = search(unit, queries, 7, exclude=exclude, backend="faiss")
    b = search(unit, queries, 7, exclude=exclude, backend="torch")
    assert torch.equal(a[1], b[1])
    torch.testing.assert_close(a[0], b[0])
    assert not bool((a[1] == exclude).any())


def test_most_similar_k_beyond_size_and_query_filtering(backend: str) -> None:
    v = _random_vectors(n=6, dim=4, seed=1)
    out = most_similar(v, "w2", k=50, backend=backend)  # type: ignore[arg-type]
    assert len(out) == 5 and "w2" not in [w for w, _ in out]  # capped, query left out
    assert [s for _, s in out] == sorted((s for _, s in out), reverse=True)
    assert most_similar(v, "w2", k=50, exclude_query=False)[0][0] == "w2"
    batch = most_similar(v, ["w0", "w5"], k=5, backend=backend)  # type: ignore[arg-type]
    assert all(len(r) == 5 for r in batch)
    assert "w0" not in [w for w, _ in batch[0]] and "w5" not in [w for w, _ in batch[1]]
    # Excluded rows that still must be returned (k = V) come last with score -inf.
    unit = v.unit_vectors()
    scores, ids = search(
        unit,
        unit[:2],
        6,
        exclude=torch.tensor([[0], [1]]),
        backend=backend,  # type: ignore[arg-type]
    )
    assert ids[:, -1].tolist() == [0, 1] and bool(torch.isneginf(scores[:, -1]).all())


def test_auto_backend_takes_faiss_only_for_large_searches_where_it_is_faster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("faiss")
    import synthembed.search as search_module

    calls: list[int] = []
    real = search_module._faiss_search

    def spy(*args: object) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(search_module, "_faiss_search", spy)
    unit = _random_vectors(n=4096, dim=8, seed=2).unit_vectors()
    for faster, queries, expected in ((True, 32, 1), (True, 31, 0), (False, 64, 0)):
        monkeypatch.setattr(search_module, "_FAISS_FASTER", faster)
        calls.clear()
        search(unit, unit[:queries], 3)
        assert len(calls) == expected, (faster, queries)
    assert isinstance(search_module.faiss_is_faster(__import__("faiss")), bool)


def test_most_similar_accepts_a_layer_with_a_vocabulary() -> None:
    from synthembed import Embedding
    from synthembed.vocab import Vocabulary

    vocab = Vocabulary.build([["cat", "dog", "car", "cat"]], oov="hash", num_oov_buckets=2)
    emb = Embedding(embedding_dim=3, vocab=vocab)
    with torch.no_grad():
        emb.weight.copy_(torch.tensor([[0.0, 0, 0], [9, 9, 9], [1, 1, 1], [2, 2, 2],
                                       [1, 0, 0], [0.9, 0.1, 0], [0, 0, 1]]))  # fmt: skip
    # Specials (<pad> at 0, <unk> at 1) and hash buckets (2, 3) never come back.
    out = most_similar(emb, "cat", k=10)
    assert [w for w, _ in out] == ["dog", "car"]
    with pytest.raises(UnknownTokenError, match="'<pad>' is not a regular token"):
        most_similar(emb, "<pad>")
    with torch.no_grad():  # a live view: training moves the answers
        emb.weight[6] = torch.tensor([1.0, 0, 0])
    assert most_similar(emb, "cat", k=1)[0][0] == "car"
    with pytest.raises(ConfigError, match="without a vocabulary"):
        most_similar(Embedding(4, 2), "cat")
