"""Ranking metrics by full ranking: Recall@K, NDCG@K and per-user AUC.

Every function takes a score matrix ``(U, C)`` (users by candidate items), a
boolean ``targets`` matrix of the same shape (the held-out positives), and an
optional boolean ``exclude`` matrix (e.g. each user's training items) whose
entries are neither ranked nor counted. No negative sampling: every candidate
that is not excluded competes. Users without a target (or, for AUC, without a
negative) are left out of the mean.

Definitions (those of LightGCN and ColdRec):

- Recall@K: hits in the top K divided by the user's number of targets.
- NDCG@K: DCG of the top K with gain 1 per hit and discount ``1/log2(rank+1)``,
  divided by the DCG of an ideal ranking of ``min(K, targets)`` hits.
- AUC: the probability that a random target outscores a random non-target
  (ties count one half), per user, then averaged (the LightFM paper's metric).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from synthembed._validation import check_int
from synthembed.errors import ShapeError

__all__ = ["RankingResult", "auc", "evaluate_ranking", "ndcg_at_k", "recall_at_k"]


def _prepare(
    scores: Any, targets: Any, exclude: Any | None, owner: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    s = torch.as_tensor(np.asarray(scores) if not isinstance(scores, torch.Tensor) else scores)
    t = torch.as_tensor(np.asarray(targets) if not isinstance(targets, torch.Tensor) else targets)
    if s.dim() != 2:
        raise ShapeError(f"{owner} expects scores of shape (U, C); got {tuple(s.shape)}.")
    if tuple(t.shape) != tuple(s.shape):
        raise ShapeError(
            f"{owner} expects targets of the scores' shape {tuple(s.shape)}; got {tuple(t.shape)}."
        )
    s = s.detach().to(torch.float64)
    t = t.to(torch.bool)
    if exclude is None:
        e = torch.zeros_like(t)
    else:
        e = torch.as_tensor(
            np.asarray(exclude) if not isinstance(exclude, torch.Tensor) else exclude
        ).to(torch.bool)
        if tuple(e.shape) != tuple(s.shape):
            raise ShapeError(
                f"{owner} expects exclude of the scores' shape {tuple(s.shape)}; got {tuple(e.shape)}."
            )
        t = t & ~e
    return s, t, e


def _topk_hits(s: torch.Tensor, t: torch.Tensor, e: torch.Tensor, k: int) -> torch.Tensor:
    """``(U, k')`` bool: whether the item at each of the top ``k' = min(k, C)`` ranks is a target."""
    masked = s.masked_fill(e, float("-inf"))
    kk = min(k, s.shape[1])
    top = torch.topk(masked, kk, dim=1, sorted=True).indices  # (U, k')
    hits = torch.gather(t, 1, top)
    # An excluded item can only reach the top k when fewer than k remain; it never counts.
    return hits & ~torch.gather(e, 1, top)


@dataclass(frozen=True)
class RankingResult:
    """Means over evaluated users, and how many users were evaluated."""

    recall: float
    ndcg: float
    auc: float
    num_users: int

    def as_dict(self) -> dict[str, float | int]:
        """The fields as a plain dict (JSON-safe)."""
        return {
            "recall": self.recall,
            "ndcg": self.ndcg,
            "auc": self.auc,
            "num_users": self.num_users,
        }


def recall_at_k(scores: Any, targets: Any, k: int, *, exclude: Any | None = None) -> float:
    """Mean Recall@K over users with at least one target.

    Args:
        scores: ``(U, C)`` scores; higher ranks first.
        targets: ``(U, C)`` bool, the held-out positives.
        k: cut-off, ``>= 1``.
        exclude: optional ``(U, C)`` bool of candidates to leave out of the ranking.

    Returns:
        The mean recall, or NaN when no user has a target.

    Example:
        >>> recall_at_k([[0.9, 0.1, 0.5]], [[False, True, True]], 2)
        0.5
    """
    check_int("recall_at_k", "k", k, 1)
    s, t, e = _prepare(scores, targets, exclude, "recall_at_k")
    n_pos = t.sum(dim=1)
    users = n_pos > 0
    if not bool(users.any()):
        return float("nan")
    hits = _topk_hits(s[users], t[users], e[users], k).sum(dim=1)
    return float((hits / n_pos[users]).mean())


def ndcg_at_k(scores: Any, targets: Any, k: int, *, exclude: Any | None = None) -> float:
    """Mean NDCG@K over users with at least one target.

    Args:
        scores: ``(U, C)`` scores; higher ranks first.
        targets: ``(U, C)`` bool, the held-out positives.
        k: cut-off, ``>= 1``.
        exclude: optional ``(U, C)`` bool of candidates to leave out of the ranking.

    Returns:
        The mean NDCG, or NaN when no user has a target.

    Example:
        >>> round(ndcg_at_k([[0.9, 0.1, 0.5]], [[False, True, True]], 2), 4)
        0.3869
    """
    check_int("ndcg_at_k", "k", k, 1)
    s, t, e = _prepare(scores, targets, exclude, "ndcg_at_k")
    return _ndcg(s, t, e, k)


def _ndcg(s: torch.Tensor, t: torch.Tensor, e: torch.Tensor, k: int) -> float:
    n_pos = t.sum(dim=1)
    users = n_pos > 0
    if not bool(users.any()):
        return float("nan")
    hits = _topk_hits(s[users], t[users], e[users], k).to(torch.float64)  # (U', k')
    discount = 1.0 / torch.log2(torch.arange(hits.shape[1], dtype=torch.float64) + 2.0)
    dcg = (hits * discount).sum(dim=1)
    ideal_n = n_pos[users].clamp(max=hits.shape[1])
    cum = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(discount, 0)])
    idcg = cum[ideal_n]
    return float((dcg / idcg).mean())


def auc(scores: Any, targets: Any, *, exclude: Any | None = None) -> float:
    """Mean per-user ROC AUC over users with at least one target and one non-target.

    Ties between a target and a non-target count one half.

    Args:
        scores: ``(U, C)`` scores.
        targets: ``(U, C)`` bool, the held-out positives.
        exclude: optional ``(U, C)`` bool of candidates that are neither targets nor negatives.

    Returns:
        The mean AUC, or NaN when no user qualifies.

    Example:
        >>> auc([[0.9, 0.1, 0.5, 0.3]], [[False, True, True, False]])
        0.25
    """
    s, t, e = _prepare(scores, targets, exclude, "auc")
    return _auc(s, t, e)


def _auc(s: torch.Tensor, t: torch.Tensor, e: torch.Tensor) -> float:
    from scipy.stats import rankdata

    n_pos = t.sum(dim=1)
    n_neg = (~t & ~e).sum(dim=1)
    users = (n_pos > 0) & (n_neg > 0)
    if not bool(users.any()):
        return float("nan")
    s_u, t_u, e_u = s[users].numpy(), t[users].numpy(), e[users].numpy()
    # Excluded candidates go below everything; their (tied) ranks are 1..E, so
    # subtracting E gives ranks among the candidates that count.
    masked = np.where(e_u, -np.inf, s_u)
    ranks = rankdata(masked, axis=1, method="average") - e_u.sum(axis=1, keepdims=True)
    p = n_pos[users].numpy().astype(np.float64)
    n = n_neg[users].numpy().astype(np.float64)
    rank_sum = np.where(t_u, ranks, 0.0).sum(axis=1)
    return float(((rank_sum - p * (p + 1) / 2) / (p * n)).mean())


def evaluate_ranking(
    scores: Any, targets: Any, k: int = 20, *, exclude: Any | None = None, with_auc: bool = True
) -> RankingResult:
    """Recall@K, NDCG@K and (optionally) AUC in one pass over the same users.

    Args:
        scores: ``(U, C)`` scores.
        targets: ``(U, C)`` bool, the held-out positives.
        k: cut-off of Recall and NDCG.
        exclude: optional ``(U, C)`` bool of candidates left out.
        with_auc: compute AUC too (a sort per user; NaN when False).

    Returns:
        A :class:`RankingResult`.
    """
    check_int("evaluate_ranking", "k", k, 1)
    s, t, e = _prepare(scores, targets, exclude, "evaluate_ranking")
    n_pos = t.sum(dim=1)
    users = n_pos > 0
    n_users = int(users.sum())
    if n_users == 0:
        return RankingResult(float("nan"), float("nan"), float("nan"), 0)
    hits = _topk_hits(s[users], t[users], e[users], k).sum(dim=1)
    recall = float((hits / n_pos[users]).mean())
    return RankingResult(
        recall=recall,
        ndcg=_ndcg(s, t, e, k),
        auc=_auc(s, t, e) if with_auc else float("nan"),
        num_users=n_users,
    )
