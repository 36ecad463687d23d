"""Ranking losses over one positive and several negatives: exact values on tiny inputs."""

from __future__ import annotations

import math

import pytest
import torch

from synthembed.errors import ConfigError, ShapeError
from synthembed.recsys.losses import LOSSES, bpr_loss, ranking_loss, softmax_loss, warp_loss


def _logsig(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_bpr_averages_over_pairs_and_negatives() -> None:
    pos = torch.tensor([1.0, 0.0])
    neg = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    want = -(_logsig(1.0) + _logsig(0.0) + _logsig(-2.0) + _logsig(1.0)) / 4
    assert float(bpr_loss(pos, neg)) == pytest.approx(want, abs=1e-6)


def test_softmax_is_the_cross_entropy_of_the_positive() -> None:
    pos = torch.tensor([2.0])
    neg = torch.tensor([[0.0, 1.0]])
    want = -(2.0 - math.log(math.exp(2.0) + math.exp(0.0) + math.exp(1.0)))
    assert float(softmax_loss(pos, neg)) == pytest.approx(want, abs=1e-6)
    assert float(softmax_loss(torch.zeros(1), torch.zeros(1, 3))) == pytest.approx(math.log(4))


def test_warp_weights_the_hardest_violator_by_the_estimated_rank() -> None:
    pos = torch.tensor([1.0, 3.0])
    # Pair 0: margins 1 - 1 + [0.5, 0.8, -2, -3] -> two violators of four, hardest 0.8.
    # Pair 1: margins 1 - 3 + [0, 0, 0, 0] -> no violator, no loss.
    neg = torch.tensor([[0.5, 0.8, -2.0, -3.0], [0.0, 0.0, 0.0, 0.0]])
    rank = math.floor(2 * (101 - 1) / 4)  # 50
    want = (math.log1p(rank) * 0.8 + 0.0) / 2
    assert float(warp_loss(pos, neg, num_items=101)) == pytest.approx(want, abs=1e-6)


def test_warp_gradient_reaches_only_the_hardest_negative_and_the_positive() -> None:
    pos = torch.tensor([1.0], requires_grad=True)
    neg = torch.tensor([[0.5, 0.8, -2.0]], requires_grad=True)
    warp_loss(pos, neg, num_items=4).backward()
    weight = math.log1p(math.floor(2 * 3 / 3))  # rank 2
    assert pos.grad is not None and neg.grad is not None
    assert pos.grad.tolist() == pytest.approx([-weight])
    assert neg.grad.tolist() == [pytest.approx([0.0, weight, 0.0])]


def test_warp_is_zero_without_violators() -> None:
    assert float(warp_loss(torch.tensor([5.0]), torch.tensor([[0.0, 1.0]]), 10)) == 0.0


def test_shapes_are_checked() -> None:
    with pytest.raises(ShapeError, match=r"pos of shape \(B,\) and neg of shape \(B, N\)"):
        bpr_loss(torch.zeros(3), torch.zeros(2, 1))
    with pytest.raises(ShapeError, match=r"got \(2,\) and \(2,\)"):
        softmax_loss(torch.zeros(2), torch.zeros(2))
    with pytest.raises(ConfigError, match="num_items"):
        warp_loss(torch.zeros(1), torch.zeros(1, 1), num_items=1)


def test_ranking_loss_names_every_choice() -> None:
    assert LOSSES == ("bpr", "softmax", "warp")
    pos, neg = torch.tensor([0.5]), torch.tensor([[0.0, 1.0]])
    assert float(ranking_loss("bpr")(pos, neg, 5)) == float(bpr_loss(pos, neg))
    assert float(ranking_loss("softmax")(pos, neg, 5)) == float(softmax_loss(pos, neg))
    assert float(ranking_loss("warp")(pos, neg, 5)) == float(warp_loss(pos, neg, 5))
    with pytest.raises(ConfigError, match=r"'bpr', 'softmax', 'warp'\. Got 'hinge'"):
        ranking_loss("hinge")
