"""Ranking losses over one positive and several sampled negatives per pair.

Every loss takes the scores of a batch of observed pairs and of their sampled
negatives and returns a scalar to minimise:

- :func:`bpr_loss`: Bayesian personalised ranking (Rendle et al., 2009),
  ``-log sigmoid(s_pos - s_neg)`` averaged over the negatives.
- :func:`softmax_loss`: sampled softmax, the cross-entropy of the positive
  among itself and its negatives (uniform sampling needs no log-Q correction).
- :func:`warp_loss`: WARP (Weston et al., 2011; the loss of LightFM), in its
  batched form: the positive's rank is estimated from how many of the ``N``
  sampled negatives violate the margin, ``rank ~ floor(violators * (V - 1) / N)``,
  and the hinge ``1 - s_pos + s_neg`` of the hardest violating negative is
  weighted by ``log(1 + rank)`` (LightFM's weight; the paper's
  ``sum_{k<=rank} 1/k`` up to a constant). LightFM draws negatives one by one
  until one violates; a fixed number per pair, scored at once, is the
  vectorised equivalent (as in "WARP with sampled negatives").

Shape:
    ``pos (B,)`` and ``neg (B, N)`` -> scalar.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from synthembed._validation import check_choice, check_int
from synthembed.errors import ShapeError

__all__ = ["LOSSES", "bpr_loss", "ranking_loss", "softmax_loss", "warp_loss"]


def _check(pos: torch.Tensor, neg: torch.Tensor, owner: str) -> None:
    if pos.dim() != 1 or neg.dim() != 2 or neg.shape[0] != pos.shape[0] or neg.shape[1] < 1:
        raise ShapeError(
            f"{owner} expects pos of shape (B,) and neg of shape (B, N) with N >= 1; "
            f"got {tuple(pos.shape)} and {tuple(neg.shape)}."
        )


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Mean over pairs and negatives of ``-log sigmoid(pos - neg)``.

    Example:
        >>> round(float(bpr_loss(torch.tensor([0.0]), torch.tensor([[0.0]]))), 4)  # log 2
        0.6931
    """
    _check(pos, neg, "bpr_loss")
    return -F.logsigmoid(pos.unsqueeze(1) - neg).mean()


def softmax_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Mean over pairs of ``-log softmax([pos, neg_1..neg_N])[0]`` (sampled softmax).

    Example:
        >>> round(float(softmax_loss(torch.tensor([0.0]), torch.zeros(1, 3))), 4)  # log 4
        1.3863
    """
    _check(pos, neg, "softmax_loss")
    logits = torch.cat([pos.unsqueeze(1), neg], dim=1)  # (B, 1 + N)
    return -torch.log_softmax(logits, dim=1)[:, 0].mean()


def warp_loss(pos: torch.Tensor, neg: torch.Tensor, num_items: int) -> torch.Tensor:
    """Batched WARP: ``log(1 + rank_est) * max_j (1 - pos + neg_j)_+``, mean over pairs.

    ``rank_est = floor(violators * (num_items - 1) / N)``, where ``violators``
    counts the negatives with ``neg_j > pos - 1``; pairs without a violator
    contribute 0. The weight is a constant of the step (no gradient).

    Example:
        >>> pos, neg = torch.tensor([1.0]), torch.tensor([[0.5, -2.0]])  # one violator of two
        >>> round(float(warp_loss(pos, neg, num_items=11)), 4)  # log(1 + 5) * 0.5
        0.8959
    """
    _check(pos, neg, "warp_loss")
    check_int("warp_loss", "num_items", num_items, 2)
    margins = 1.0 - pos.unsqueeze(1) + neg  # (B, N)
    violators = (margins > 0).sum(dim=1).to(pos.dtype)  # (B,)
    rank = torch.floor(violators * (num_items - 1) / neg.shape[1])
    weight = torch.log1p(rank).detach()
    hardest = margins.max(dim=1).values.clamp_min(0.0)
    return (weight * hardest).mean()


LOSSES: tuple[str, ...] = ("bpr", "softmax", "warp")


def ranking_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]:
    """The loss called ``name`` as ``f(pos, neg, num_items)``; one of :data:`LOSSES`."""
    check_choice("ranking_loss", "name", name, LOSSES)
    if name == "warp":
        return warp_loss
    plain = bpr_loss if name == "bpr" else softmax_loss
    return lambda pos, neg, num_items: plain(pos, neg)
