"""Evaluate a score matrix on a :class:`~synthembed.recsys.split.ColdStartSplit`.

Full ranking, no negative sampling (the ColdRec protocol):

- **cold**: rank only the cold items of the part (validation or test), for
  users with a positive among them; Recall@K, NDCG@K and per-user AUC.
- **warm**: rank every warm item, leaving out each user's training items;
  targets are the part's warm pairs.
- **overall**: rank warm items and the part's cold items together (training
  items left out); targets are the part's warm and cold pairs. It catches
  cold gains bought with warm quality.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from synthembed._validation import check_choice
from synthembed.errors import ShapeError
from synthembed.recsys.metrics import RankingResult, evaluate_ranking
from synthembed.recsys.split import ColdStartSplit

__all__ = ["Part", "evaluate_items", "evaluate_split"]

Part = Literal["val", "test"]


def _pair_matrix(pairs: np.ndarray, num_users: int, num_items: int) -> np.ndarray:
    m = np.zeros((num_users, num_items), dtype=bool)
    m[pairs[:, 0], pairs[:, 1]] = True
    return m


def _check_scores(scores: np.ndarray, split: ColdStartSplit) -> np.ndarray:
    s = np.asarray(scores)
    if s.shape != (split.num_users, split.num_items):
        raise ShapeError(
            f"scores must have shape (num_users, num_items) = "
            f"({split.num_users}, {split.num_items}); got {s.shape}."
        )
    return s


def evaluate_split(
    scores: np.ndarray, split: ColdStartSplit, *, part: Part = "test", k: int = 20
) -> dict[str, dict[str, float | int]]:
    """Cold, warm and overall ranking quality of ``scores`` on one part of a split.

    Args:
        scores: ``(num_users, num_items)`` scores, higher is better.
        split: the split the model was trained on.
        part: ``"val"`` for model selection, ``"test"`` for reporting.
        k: the cut-off of Recall and NDCG.

    Returns:
        ``{"cold": {...}, "warm": {...}, "overall": {...}}``, each with
        ``recall``, ``ndcg``, ``auc`` and ``num_users`` (AUC only for cold; NaN
        elsewhere).

    Raises:
        ShapeError: ``scores`` does not have one row per user and one column per item.
    """
    check_choice("evaluate_split", "part", part, ("val", "test"))
    s = _check_scores(scores, split)
    nu, ni = split.num_users, split.num_items
    warm_pairs = split.warm_val if part == "val" else split.warm_test
    cold_pairs = split.cold_val if part == "val" else split.cold_test
    cold_items = split.cold_val_items if part == "val" else split.cold_test_items
    warm_items = split.warm_items
    train = _pair_matrix(split.train, nu, ni)
    cold_targets = _pair_matrix(cold_pairs, nu, ni)
    warm_targets = _pair_matrix(warm_pairs, nu, ni)

    cold = evaluate_ranking(s[:, cold_items], cold_targets[:, cold_items], k)
    warm = evaluate_ranking(
        s[:, warm_items],
        warm_targets[:, warm_items],
        k,
        exclude=train[:, warm_items],
        with_auc=False,
    )
    both = np.union1d(warm_items, cold_items)
    overall = evaluate_ranking(
        s[:, both],
        (warm_targets | cold_targets)[:, both],
        k,
        exclude=train[:, both],
        with_auc=False,
    )
    return {"cold": cold.as_dict(), "warm": warm.as_dict(), "overall": overall.as_dict()}


def evaluate_items(
    scores: np.ndarray,
    split: ColdStartSplit,
    items: np.ndarray,
    *,
    part: Part = "test",
    k: int = 20,
) -> RankingResult:
    """Warm ranking quality restricted to the positives among ``items``.

    Every warm item is ranked (training items left out) as in the warm
    evaluation, but only the part's warm pairs whose item is in ``items``
    count as targets: Recall@K of, e.g., sparse items with 1-10 interactions.
    """
    check_choice("evaluate_items", "part", part, ("val", "test"))
    s = _check_scores(scores, split)
    nu, ni = split.num_users, split.num_items
    warm_pairs = split.warm_val if part == "val" else split.warm_test
    keep = np.isin(warm_pairs[:, 1], np.asarray(items))
    targets = _pair_matrix(warm_pairs[keep], nu, ni)
    train = _pair_matrix(split.train, nu, ni)
    warm_items = split.warm_items
    return evaluate_ranking(
        s[:, warm_items],
        targets[:, warm_items],
        k,
        exclude=train[:, warm_items],
        with_auc=False,
    )
