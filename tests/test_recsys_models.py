"""Matrix factorisation, item biases and the training loop's losses over several negatives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from synthembed.errors import ConfigError
from synthembed.recsys.losses import warp_loss
from synthembed.recsys.models import (
    BPRConfig,
    MatrixFactorization,
    plain_mf,
    synthetic_mf,
    train_bpr,
)

PAIRS = np.array([[0, 0], [0, 1], [1, 1], [2, 2], [1, 0], [2, 0]])


def test_item_bias_is_added_to_every_score() -> None:
    mf = plain_mf(3, 4, 2, item_bias=True, seed=0)
    assert mf.item_bias is not None
    with torch.no_grad():
        mf.item_bias.copy_(torch.tensor([0.0, 1.0, -2.0, 0.5]))
    plain = (mf.user_vectors() @ mf.item_vectors().T).astype(np.float64)
    got = mf.score_matrix()
    np.testing.assert_allclose(got, plain + np.array([0.0, 1.0, -2.0, 0.5]), atol=1e-6)
    one = mf(torch.tensor([1]), torch.tensor([2])).detach()
    assert float(one) == pytest.approx(got[1, 2], abs=1e-6)
    assert mf.item_biases().tolist() == [0.0, 1.0, -2.0, 0.5]


def test_without_item_bias_the_model_has_no_bias_parameter() -> None:
    mf = plain_mf(3, 4, 2, seed=0)
    assert mf.item_bias is None
    assert "item_bias" not in dict(mf.named_parameters())
    assert mf.item_biases().tolist() == [0.0] * 4


def _first_loss(mf: MatrixFactorization, config: BPRConfig, seed: int) -> float:
    """The loss of the first step, recomputed by hand from train_bpr's documented draws."""
    n = len(PAIRS)
    pool = torch.as_tensor(np.unique(PAIRS[:, 1]))
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen)
    neg = pool[torch.randint(len(pool), (n, config.negatives), generator=gen)][order]
    u = torch.as_tensor(PAIRS[:, 0])[order]
    i = torch.as_tensor(PAIRS[:, 1])[order]
    with torch.no_grad():
        uv = mf.user_embedding(u)
        pv = mf.item_embedding(i)
        nv = mf.item_embedding(neg)
        bias = mf.item_bias if mf.item_bias is not None else torch.zeros(mf.num_items)
        pos = (uv * pv).sum(-1) + bias[i]
        negs = (uv.unsqueeze(1) * nv).sum(-1) + bias[neg]
        if config.loss == "bpr":
            loss = -F.logsigmoid(pos.unsqueeze(1) - negs).mean()
        elif config.loss == "softmax":
            loss = -torch.log_softmax(torch.cat([pos.unsqueeze(1), negs], 1), 1)[:, 0].mean()
        else:
            loss = warp_loss(pos, negs, len(pool))
        reg = (
            uv.pow(2).sum(-1)
            + pv.pow(2).sum(-1)
            + bias[i] ** 2
            + (nv.pow(2).sum(-1) + bias[neg] ** 2).mean(1)
        ).mean()
    return float(loss + config.l2 * reg)


@pytest.mark.parametrize(
    ("loss", "negatives"), [("bpr", 1), ("bpr", 3), ("softmax", 4), ("warp", 3)]
)
def test_first_step_loss_matches_a_hand_computation(loss: str, negatives: int) -> None:
    config = BPRConfig(epochs=1, batch_size=64, lr=1e-2, l2=0.1, loss=loss, negatives=negatives)
    mf = plain_mf(3, 3, 4, item_bias=True, seed=1)
    with torch.no_grad():
        assert mf.item_bias is not None
        mf.item_bias.copy_(torch.tensor([0.3, -0.2, 0.1]))
    want = _first_loss(mf, config, seed=5)
    history = train_bpr(mf, PAIRS, config, seed=5)
    assert history == [pytest.approx(want, abs=1e-6)]


def test_item_biases_learn_popularity() -> None:
    # Item 0 is everyone's positive, item 3 no one's.
    rng = np.random.default_rng(0)
    users = np.arange(40)
    pairs = np.concatenate(
        [np.stack([users, np.zeros(40, int)], 1), np.stack([users, rng.integers(1, 3, 40)], 1)]
    )
    pairs = np.concatenate([pairs, [[0, 3]]])
    mf = plain_mf(40, 4, 4, item_bias=True, seed=0)
    config = BPRConfig(epochs=30, batch_size=16, lr=0.05, loss="warp", negatives=3)
    train_bpr(mf, pairs, config, seed=0)
    bias = mf.item_biases()
    assert bias[0] > bias[1] and bias[0] > bias[2] and bias[0] > bias[3]


def test_config_checks_negatives_and_loss() -> None:
    with pytest.raises(ConfigError, match=r"'negatives' parameter of BPRConfig.*Got 0"):
        BPRConfig(negatives=0)
    with pytest.raises(ConfigError, match=r"'bpr', 'softmax', 'warp'\. Got 'hinge'"):
        BPRConfig(loss="hinge")
    assert BPRConfig().negatives == 1 and BPRConfig().loss == "bpr"


def test_synthetic_mf_passes_only_what_is_given_and_learns_item_biases() -> None:
    from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer

    feats = torch.rand(5, 3)
    mf = synthetic_mf(3, feats, 4, item_bias=True, seed=0)
    default = SyntheticEmbeddingLayer(5, 4, side_features=feats)
    items = mf.item_embedding
    assert isinstance(items, SyntheticEmbeddingLayer)
    assert items.config.technique == default.config.technique
    assert items.config.synthesis_rate == default.config.synthesis_rate
    assert items.config.train_synthetic_fraction == default.config.train_synthetic_fraction
    assert items.config.cold_threshold == 1
    assert mf.item_bias is not None and mf.item_bias.shape == (5,)
