"""Tests of synthembed.evaluation: analogies and word-similarity benchmarks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthembed.errors import ConfigError, FileFormatError
from synthembed.evaluation import analogy, evaluate_analogies, evaluate_similarity
from synthembed.vectors import Vectors, load_vectors


def _random_vectors(n: int = 300, dim: int = 16, seed: int = 0) -> Vectors:
    g = torch.Generator().manual_seed(seed)
    return Vectors([f"w{i}" for i in range(n)], torch.randn(n, dim, generator=g))


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
    assert ours.oov_percent == pytest.approx(oov)  # gensim's oov_ratio is a percent
    assert ours.oov_fraction == pytest.approx(oov / 100)
    assert ours.spearman_pvalue == pytest.approx(spearman.pvalue, rel=1e-6)
    assert ours.pearson_pvalue == pytest.approx(pearson.pvalue, rel=1e-3)
    assert len(ours.pairs) == ours.pairs_used and len(ours.oov_pairs) == ours.pairs_skipped
    with pytest.deprecated_call(match="oov_ratio is a fraction"):
        assert 100 * ours.oov_ratio == pytest.approx(oov)
    score, sections = kv.evaluate_word_analogies(datapath("questions-words.txt"))
    result = evaluate_analogies(v, datapath("questions-words.txt"))
    assert result.answered > 100
    assert result.accuracy == pytest.approx(score)
    # The per-question lists hold what gensim's per-section lists hold.
    total = sections[-1]
    assert len(total["correct"]) == result.correct
    assert len(total["incorrect"]) == len(result.incorrect())
    assert {tuple(w.upper() for w in q.words) for q in result.questions if q.correct} == {
        tuple(w.upper() for w in quad) for quad in total["correct"]
    }
    assert len(result.questions) == result.answered + result.skipped


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


def _old_rankdata(x: np.ndarray) -> np.ndarray:
    """The hand-written average ranks evaluate_similarity used before scipy."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def test_similarity_correlations_equal_the_hand_written_ones_with_ties() -> None:
    g = torch.Generator().manual_seed(7)
    v = Vectors([f"w{i}" for i in range(40)], torch.randn(40, 6, generator=g))
    v.vectors[1] = v.vectors[0]  # tied model scores: (w0, wX) and (w1, wX) score alike
    rng = np.random.default_rng(0)
    pairs = [
        (f"w{i % 2}", f"w{j}", float(rng.integers(0, 4))) for i in range(2) for j in range(2, 30)
    ]
    got = evaluate_similarity(v, pairs)
    unit = v.unit_vectors()
    left = torch.tensor([int(a[1:]) for a, _, _ in pairs])
    right = torch.tensor([int(b[1:]) for _, b, _ in pairs])
    model = (unit[left] * unit[right]).sum(dim=1).double().numpy()  # as evaluate_similarity does
    truth = np.array([s for _, _, s in pairs])  # human scores with many ties
    assert len(np.unique(truth)) < len(truth) and len(np.unique(model)) < len(model)
    spearman = np.corrcoef(_old_rankdata(model), _old_rankdata(truth))[0, 1]
    assert got.spearman == pytest.approx(spearman, abs=1e-12)
    assert got.pearson == pytest.approx(np.corrcoef(model, truth)[0, 1], abs=1e-12)
    constant = evaluate_similarity(v, [("w0", "w2", 1.0), ("w0", "w3", 1.0)])
    assert np.isnan(constant.spearman) and np.isnan(constant.pearson)


def test_per_question_lists_and_oov_percent() -> None:
    v = Vectors(
        ["man", "king", "woman", "queen", "apple"],
        torch.tensor([[1.0, 0, 0], [1.0, 1.0, 0], [0, 0, 1.0], [0, 1.0, 1.0], [1.0, 0, 1.0]]),
    )
    lines = [": royal", "man king woman queen", "man king woman zebra", "woman queen man apple"]
    result = evaluate_analogies(v, lines)
    assert [(q.words[3], q.guess, q.correct) for q in result.questions] == [
        ("queen", "queen", True),
        ("zebra", None, False),
        ("apple", "king", False),
    ]
    assert [q.words for q in result.incorrect()] == [("woman", "queen", "man", "apple")]
    assert result.oov_percent == pytest.approx(100 / 3)
    pairs = evaluate_similarity(v, [("man", "king", 5.0), ("man", "zebra", 1.0)])
    assert pairs.oov_percent == 50.0 and pairs.oov_pairs == (("man", "zebra", 1.0),)
    assert pairs.pairs == (("man", "king", 5.0, pytest.approx(0.5**0.5)),)


def test_evaluations_accept_a_layer_with_a_vocabulary() -> None:
    from synthembed import Embedding
    from synthembed.vocab import Vocabulary

    words = ["man", "king", "woman", "queen", "apple"]
    rows = torch.tensor([[1.0, 0, 0], [1.0, 1.0, 0], [0, 0, 1.0], [0, 1.0, 1.0], [1.0, 0, 1.0]])
    emb = Embedding(embedding_dim=3, vocab=Vocabulary(words))
    with torch.no_grad():
        emb.weight[2:] = rows
        emb.weight[1] = rows[3] * 5  # <unk> right on top of "queen": must never answer
    v = Vectors(words, rows)
    assert analogy(emb, "man", "king", "woman", k=2) == analogy(v, "man", "king", "woman", k=2)
    lines = [": royal", "man king woman queen", "woman queen man king"]
    assert evaluate_analogies(emb, lines) == evaluate_analogies(v, lines)
    triples = [("man", "king", 5.0), ("woman", "queen", 6.0), ("apple", "king", 1.0)]
    ours, theirs = evaluate_similarity(emb, triples), evaluate_similarity(v, triples)
    assert (ours.spearman, ours.pairs_used) == (theirs.spearman, 3) and ours.spearman > 0.8
    with pytest.raises(ConfigError, match="evaluate_similarity got a Embedding without a vocab"):
        evaluate_similarity(Embedding(4, 2), triples)
