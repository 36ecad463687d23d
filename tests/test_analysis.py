"""Tests of synthembed.analysis: the old import path re-exports search and evaluation."""

from __future__ import annotations

from synthembed import analysis, ann, evaluation, search


def test_old_names_are_the_new_objects() -> None:
    homes = (search, ann, evaluation)
    for name in analysis.__all__:
        assert any(getattr(home, name, None) is getattr(analysis, name) for home in homes), name
    assert set(analysis.__all__) == {
        "AnalogyResult",
        "ApproximateIndex",
        "SimilarityResult",
        "analogy",
        "bf16_is_faster",
        "evaluate_analogies",
        "evaluate_similarity",
        "most_similar",
        "search",
    }
