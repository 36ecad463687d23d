"""Recommender pieces for cold-start evaluation: split, metrics, features, models, demo.

Submodules (pandas, scikit-learn and matplotlib are imported only where needed):

- :mod:`~synthembed.recsys.split`: the ColdRec cold-start item split.
- :mod:`~synthembed.recsys.metrics`: Recall@K, NDCG@K, per-user AUC by full ranking.
- :mod:`~synthembed.recsys.evaluate`: cold / warm / overall evaluation of a score matrix.
- :mod:`~synthembed.recsys.features`: genres, year and title text vectors of items.
- :mod:`~synthembed.recsys.models`: BPR matrix factorisation, synthetic-item wiring, floors.
- :mod:`~synthembed.recsys.demo`: the ``synthembed demo`` pipeline.
"""

from synthembed.recsys.evaluate import evaluate_items, evaluate_split
from synthembed.recsys.features import ItemFeatures, item_side_features
from synthembed.recsys.metrics import RankingResult, auc, evaluate_ranking, ndcg_at_k, recall_at_k
from synthembed.recsys.models import (
    BPRConfig,
    MatrixFactorization,
    plain_mf,
    popularity_scores,
    random_scores,
    synthetic_mf,
    train_bpr,
)
from synthembed.recsys.split import ColdStartSplit, cold_start_split

__all__ = [
    "BPRConfig",
    "ColdStartSplit",
    "ItemFeatures",
    "MatrixFactorization",
    "RankingResult",
    "auc",
    "cold_start_split",
    "evaluate_items",
    "evaluate_ranking",
    "evaluate_split",
    "item_side_features",
    "ndcg_at_k",
    "plain_mf",
    "popularity_scores",
    "random_scores",
    "recall_at_k",
    "synthetic_mf",
    "train_bpr",
]
