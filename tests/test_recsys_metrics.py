"""Full-ranking metrics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthembed.errors import ConfigError, ShapeError
from synthembed.recsys.metrics import auc, evaluate_ranking, ndcg_at_k, recall_at_k

# Two users, five candidates.
SCORES = np.array(
    [
        [0.9, 0.8, 0.7, 0.6, 0.5],  # ranking: 0, 1, 2, 3, 4
        [0.1, 0.5, 0.4, 0.3, 0.2],  # ranking: 1, 2, 3, 4, 0
    ]
)
TARGETS = np.array(
    [
        [False, True, False, False, True],  # positives at ranks 2 and 5
        [True, False, False, False, False],  # positive at rank 5
    ]
)


def test_recall_by_hand() -> None:
    # k=2: user 0 hits item 1 of its 2 targets -> 1/2; user 1 hits nothing -> 0.
    assert recall_at_k(SCORES, TARGETS, 2) == pytest.approx(0.25)
    # k=5: every target is in the top 5.
    assert recall_at_k(SCORES, TARGETS, 5) == pytest.approx(1.0)
    # k larger than the number of candidates behaves as k = C.
    assert recall_at_k(SCORES, TARGETS, 50) == pytest.approx(1.0)


def test_ndcg_by_hand() -> None:
    d = [1 / math.log2(r + 1) for r in range(1, 6)]  # discount of ranks 1..5
    # k=2. User 0: hit at rank 2 -> d[1]; ideal of min(2, 2) hits: d[0] + d[1].
    u0 = d[1] / (d[0] + d[1])
    assert ndcg_at_k(SCORES, TARGETS, 2) == pytest.approx((u0 + 0.0) / 2)
    # k=5. User 0: hits at ranks 2 and 5. User 1: hit at rank 5, ideal d[0].
    u0 = (d[1] + d[4]) / (d[0] + d[1])
    u1 = d[4] / d[0]
    assert ndcg_at_k(SCORES, TARGETS, 5) == pytest.approx((u0 + u1) / 2)


def test_auc_by_hand() -> None:
    # User 0: targets score 0.8 and 0.5; non-targets 0.9, 0.7, 0.6.
    # 0.8 beats 0.7 and 0.6 (2 of 3); 0.5 beats none -> 2 / 6.
    # User 1: target 0.1 beats nothing -> 0.
    assert auc(SCORES, TARGETS) == pytest.approx((2 / 6 + 0.0) / 2)


def test_auc_counts_ties_as_half() -> None:
    assert auc([[0.5, 0.5, 0.1]], [[True, False, False]]) == pytest.approx(0.75)


def test_excluded_items_are_neither_ranked_nor_counted() -> None:
    exclude = np.zeros_like(TARGETS)
    exclude[0, 0] = True  # user 0's best-scored item is a training item
    # User 0 now ranks 1, 2, 3, 4: its target 1 is first.
    assert recall_at_k(SCORES[:1], TARGETS[:1], 1, exclude=exclude[:1]) == pytest.approx(0.5)
    # A target that is excluded does not count as a target.
    exclude[1, 0] = True
    assert recall_at_k(SCORES, TARGETS, 1, exclude=exclude) == pytest.approx(0.5)
    # AUC of user 0 without item 0: 0.8 beats 0.7, 0.6; 0.5 beats none -> 2/4.
    assert auc(SCORES[:1], TARGETS[:1], exclude=exclude[:1]) == pytest.approx(0.5)


def test_users_without_targets_are_left_out() -> None:
    targets = TARGETS.copy()
    targets[1] = False
    assert recall_at_k(SCORES, targets, 2) == pytest.approx(0.5)
    result = evaluate_ranking(SCORES, targets, 2)
    assert result.num_users == 1
    assert result.recall == pytest.approx(0.5)
    assert math.isnan(recall_at_k(SCORES, np.zeros_like(TARGETS), 2))


def test_evaluate_ranking_matches_the_single_metrics() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random((30, 40))
    targets = rng.random((30, 40)) < 0.1
    exclude = (rng.random((30, 40)) < 0.2) & ~targets
    r = evaluate_ranking(scores, targets, 10, exclude=exclude)
    assert r.recall == pytest.approx(recall_at_k(scores, targets, 10, exclude=exclude))
    assert r.ndcg == pytest.approx(ndcg_at_k(scores, targets, 10, exclude=exclude))
    assert r.auc == pytest.approx(auc(scores, targets, exclude=exclude))
    # Random scores: AUC near one half.
    assert 0.35 < r.auc < 0.65


def test_perfect_scores_give_ones() -> None:
    targets = np.eye(4, dtype=bool)
    scores = targets.astype(float)
    r = evaluate_ranking(scores, targets, 1)
    assert (r.recall, r.ndcg, r.auc) == (1.0, 1.0, 1.0)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ShapeError, match=r"targets of the scores' shape \(2, 5\); got \(2, 4\)"):
        recall_at_k(SCORES, TARGETS[:, :4], 2)
    with pytest.raises(ShapeError, match=r"scores of shape \(U, C\); got \(5,\)"):
        ndcg_at_k(SCORES[0], TARGETS[0], 2)
    with pytest.raises(ConfigError, match=r"'k' parameter of recall_at_k.*Got 0 instead"):
        recall_at_k(SCORES, TARGETS, 0)
