"""Tests of synthembed.analysis: exact and approximate search, analogies, evaluations."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from synthembed.analysis import (
    ApproximateIndex,
    analogy,
    evaluate_analogies,
    evaluate_similarity,
    most_similar,
    search,
)
from synthembed.errors import ConfigError, FileFormatError, ShapeError, UnknownTokenError
from synthembed.pretrained import Vectors, load_vectors


def _random_vectors(n: int = 300, dim: int = 16, seed: int = 0) -> Vectors:
    g = torch.Generator().manual_seed(seed)
    return Vectors([f"w{i}" for i in range(n)], torch.randn(n, dim, generator=g))


def _brute_force(unit: torch.Tensor, queries: torch.Tensor, k: int) -> torch.Tensor:
    scores = queries @ unit.T
    return torch.tensor(np.argsort(-scores.numpy(), axis=1, kind="stable")[:, :k].copy())


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # pytest-xdist runs 2 workers on 2 cores: more threads only oversubscribe.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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


def test_analogy_toy_geometry() -> None:
    v = Vectors(
        ["man", "king", "woman", "queen", "apple"],
        torch.tensor([[1.0, 0, 0], [1.0, 1.0, 0], [0, 0, 1.0], [0, 1.0, 1.0], [1.0, 0, 1.0]]),
    )
    result = analogy(v, "man", "king", "woman", k=2)
    assert result[0][0] == "queen" and 0.5 < result[0][1] < 1.0
    assert {w for w, _ in result}.isdisjoint({"man", "king", "woman"})


def test_evaluate_analogies_sections_and_skips() -> None:
    v = Vectors(
        ["man", "king", "woman", "queen"],
        torch.tensor([[1.0, 0, 0], [1.0, 1.0, 0], [0, 0, 1.0], [0, 1.0, 1.0]]),
    )
    lines = [
        ": royal",
        "Man King Woman Queen",
        "man king woman zebra",
        ": swap",
        "king man queen woman",
    ]
    result = evaluate_analogies(v, lines)
    assert (result.correct, result.answered, result.skipped) == (2, 2, 1)
    assert result.sections == {"royal": (1, 1), "swap": (1, 1)}
    assert evaluate_analogies(v, lines, case_insensitive=False).answered == 1
    with pytest.raises(FileFormatError, match="line 2 must have 4 words; got 3"):
        evaluate_analogies(v, [": s", "a b c"])


def test_evaluations_match_gensim_on_its_test_data() -> None:
    """Real vectors and benchmark files shipped with gensim; numbers must equal gensim's."""
    pytest.importorskip("gensim")
    from gensim.models import KeyedVectors
    from gensim.test.utils import datapath

    kv = KeyedVectors.load_word2vec_format(datapath("euclidean_vectors.bin"), binary=True)
    v = load_vectors(datapath("euclidean_vectors.bin"), cache=False)
    pearson, spearman, oov = kv.evaluate_word_pairs(datapath("wordsim353.tsv"))
    ours = evaluate_similarity(v, datapath("wordsim353.tsv"))
    assert ours.spearman == pytest.approx(spearman.statistic, abs=1e-9)
    assert ours.pearson == pytest.approx(pearson.statistic, abs=1e-6)
    assert 100 * ours.oov_ratio == pytest.approx(oov)
    score, _ = kv.evaluate_word_analogies(datapath("questions-words.txt"))
    result = evaluate_analogies(v, datapath("questions-words.txt"))
    assert result.answered > 100
    assert result.accuracy == pytest.approx(score)


def test_evaluate_similarity_pairs_and_errors(tmp_path: object) -> None:
    v = Vectors(["a", "b", "c"], torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]))
    result = evaluate_similarity(
        v, [("a", "b", 9.0), ("a", "c", 1.0), ("b", "c", 2.0), ("a", "z", 3)]
    )
    assert result.spearman == pytest.approx(1.0)
    assert (result.pairs_used, result.pairs_skipped) == (3, 1)
    with pytest.raises(ConfigError, match="Each pair must be"):
        evaluate_similarity(v, [("a", "b")])
    with pytest.raises(FileNotFoundError, match="No word-pair file"):
        evaluate_similarity(v, "/nonexistent/pairs.tsv")


def _clustered_vectors(n: int = 3000, dim: int = 16, clusters: int = 60) -> Vectors:
    g = torch.Generator().manual_seed(5)
    centres = torch.randn(clusters, dim, generator=g)
    labels = torch.randint(0, clusters, (n,), generator=g)
    data = centres[labels] + 0.3 * torch.randn(n, dim, generator=g)
    return Vectors([f"w{i}" for i in range(n)], data)


def _recall(index: ApproximateIndex, v: Vectors, n: int = 100) -> float:
    queries = v.unit_vectors()[-n:]  # rows calibration need not have sampled
    _, approx = index.search(queries, 10)
    _, exact = search(v.unit_vectors(), queries, 10)
    return float(
        np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx.tolist(), exact.tolist())])
    )


def test_approximate_index_hnsw_recall_and_exclusion() -> None:
    pytest.importorskip("faiss")
    v = _random_vectors(n=2000, dim=16, seed=1)
    index = ApproximateIndex(v, method="hnsw", m=16, ef_search=64)
    assert _recall(index, v) >= 0.9
    got = most_similar(v, "w3", k=5, index=index)
    assert "w3" not in [w for w, _ in got] and len(got) == 5
    assert got[0][0] == most_similar(v, "w3", k=1)[0][0]
    with pytest.raises(ShapeError, match=r"shape \(Q, 16\)"):
        index.search(torch.ones(2, 3), 1)
    with pytest.raises(ConfigError, match="'ef_search' parameter of ApproximateIndex"):
        index.ef_search = 0
    with pytest.raises(ConfigError, match="nprobe applies to method='ivf'; this index uses"):
        index.nprobe = 4


def test_approximate_index_ivf_calibrates_nprobe_to_the_recall_goal() -> None:
    pytest.importorskip("faiss")
    v = _clustered_vectors()
    index = ApproximateIndex(v, target_recall=0.95)
    assert index.method == "ivf" and index.nlist == min(int(4 * 3000**0.5), 3000 // 39)
    assert index.calibrated_recall is not None and index.calibrated_recall >= 0.95
    assert index.nprobe & (index.nprobe - 1) == 0 and index.nprobe < index.nlist
    assert _recall(index, v) >= 0.9  # held-out rows: near the calibrated recall
    low = ApproximateIndex(v, nprobe=1)
    assert low.calibrated_recall is None and low.nprobe == 1
    got = most_similar(v, ["w3", "w4"], k=5, index=index)
    assert all(len(r) == 5 and q not in [w for w, _ in r] for q, r in zip(["w3", "w4"], got))
    assert "nprobe=" in repr(index)
    with pytest.raises(ConfigError, match="'nprobe' parameter of ApproximateIndex"):
        index.nprobe = index.nlist + 1
    with pytest.raises(ConfigError, match="ef_search applies to method='hnsw'"):
        _ = index.ef_search
    with pytest.raises(ConfigError, match="'method' parameter of ApproximateIndex"):
        ApproximateIndex(v, method="lsh")
    with pytest.raises(ConfigError, match="'target_recall' parameter of ApproximateIndex"):
        ApproximateIndex(v, target_recall=1.5)


def test_approximate_index_without_structure_scans_more_cells() -> None:
    pytest.importorskip("faiss")
    with pytest.warns(UserWarning, match=r"needs nprobe=\d+ of 76 cells: these vectors have"):
        noise = ApproximateIndex(_random_vectors(n=3000, dim=16, seed=2), target_recall=0.95)
    clustered = ApproximateIndex(_clustered_vectors(), target_recall=0.95)
    assert noise.nprobe * 4 > noise.nlist > 4 * clustered.nprobe
