"""Recommender pieces for cold-start evaluation: split, metrics, features, models, demo.

Submodules (pandas, scikit-learn and matplotlib are imported only where needed):

- :mod:`~synthembed.recsys.split`: the ColdRec cold-start item split and the
  new-releases split (the newest items are cold).
- :mod:`~synthembed.recsys.metrics`: Recall@K, NDCG@K, per-user AUC by full ranking.
- :mod:`~synthembed.recsys.evaluate`: cold / warm / overall evaluation of a score matrix.
- :mod:`~synthembed.recsys.features`: genres, year and title text vectors of items.
- :mod:`~synthembed.recsys.losses`: BPR, sampled softmax and WARP over several negatives.
- :mod:`~synthembed.recsys.models`: matrix factorisation (item biases), its training
  loop, synthetic-item wiring, floors.
- :mod:`~synthembed.recsys.peers`: the peers to beat: a hand-written content MLP, LightFM.
- :mod:`~synthembed.recsys.demo`: the ``synthembed demo`` pipeline.
"""

from synthembed.recsys.evaluate import evaluate_items, evaluate_split
from synthembed.recsys.features import ItemFeatures, item_side_features
from synthembed.recsys.losses import bpr_loss, softmax_loss, warp_loss
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
from synthembed.recsys.peers import ContentMLPItems, content_mlp_mf, lightfm_scores
from synthembed.recsys.split import ColdStartSplit, cold_start_split, new_releases_split

__all__ = [
    "BPRConfig",
    "ColdStartSplit",
    "ContentMLPItems",
    "ItemFeatures",
    "MatrixFactorization",
    "RankingResult",
    "auc",
    "bpr_loss",
    "cold_start_split",
    "content_mlp_mf",
    "evaluate_items",
    "evaluate_ranking",
    "evaluate_split",
    "item_side_features",
    "lightfm_scores",
    "ndcg_at_k",
    "new_releases_split",
    "plain_mf",
    "popularity_scores",
    "random_scores",
    "recall_at_k",
    "softmax_loss",
    "synthetic_mf",
    "train_bpr",
    "warp_loss",
]
