"""Former home of search and evaluation, kept so ``synthembed.analysis`` imports still work.

Exact search and ``most_similar`` live in :mod:`synthembed.search`, the faiss index in
:mod:`synthembed.ann`, analogies and similarity benchmarks in :mod:`synthembed.evaluation`.
"""

from synthembed.ann import ApproximateIndex
from synthembed.evaluation import (
    AnalogyResult,
    SimilarityResult,
    analogy,
    evaluate_analogies,
    evaluate_similarity,
)
from synthembed.search import bf16_is_faster, most_similar, search

__all__ = [
    "AnalogyResult",
    "ApproximateIndex",
    "SimilarityResult",
    "analogy",
    "bf16_is_faster",
    "evaluate_analogies",
    "evaluate_similarity",
    "most_similar",
    "search",
]
