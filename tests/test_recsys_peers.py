"""The peer baselines: the hand-written content MLP and the LightFM wrapper."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from synthembed.errors import ConfigError, ShapeError
from synthembed.recsys.models import BPRConfig, train_bpr
from synthembed.recsys.peers import (
    ContentMLPItems,
    content_mlp_mf,
    lightfm_available,
    lightfm_scores,
)
from synthembed.recsys.split import cold_start_split


def test_untrained_ids_are_served_by_the_mlp_alone_in_eval() -> None:
    feats = torch.rand(6, 3)
    items = ContentMLPItems(feats, 4, hidden=5).eval()
    ids = torch.tensor([[0, 5], [2, 2]])
    with torch.no_grad():
        want = items.mlp(feats[ids])
        got = items(ids)
    assert got.shape == (2, 2, 4)
    torch.testing.assert_close(got, want)


def test_trained_ids_blend_row_and_mlp_at_the_rate() -> None:
    feats = torch.rand(6, 3)
    items = ContentMLPItems(feats, 4, rate=0.25, mlp_only_fraction=0.0)
    items(torch.tensor([1, 3]))  # a training forward marks them
    assert items.trained.tolist() == [False, True, False, True, False, False]
    items.eval()
    ids = torch.tensor([1, 3, 4])
    with torch.no_grad():
        got = items(ids)
        row, content = items.table(ids), items.mlp(feats[ids])
    torch.testing.assert_close(got[:2], 0.75 * row[:2] + 0.25 * content[:2])
    torch.testing.assert_close(got[2], content[2])  # never trained


def test_training_share_served_by_the_mlp_alone() -> None:
    feats = torch.rand(4, 2)
    items = ContentMLPItems(feats, 3, mlp_only_fraction=1.0)
    ids = torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        torch.testing.assert_close(items(ids), items.mlp(feats))
    blended = ContentMLPItems(feats, 3, mlp_only_fraction=0.0)
    with torch.no_grad():
        got = blended(ids)
        want = 0.5 * blended.table(ids) + 0.5 * blended.mlp(feats)
    torch.testing.assert_close(got, want)


def test_content_mlp_arguments_are_checked() -> None:
    with pytest.raises(ShapeError, match=r"shape \(V, F\) with V, F >= 1; got \(4,\)"):
        ContentMLPItems(torch.rand(4), 3)
    with pytest.raises(ConfigError, match="'rate' parameter of ContentMLPItems"):
        ContentMLPItems(torch.rand(4, 2), 3, rate=1.5)
    with pytest.raises(ConfigError, match="'mlp_only_fraction' parameter"):
        ContentMLPItems(torch.rand(4, 2), 3, mlp_only_fraction=-0.1)


def test_content_mlp_mf_trains_and_scores_every_pair() -> None:
    feats = np.random.default_rng(0).random((5, 2)).astype(np.float32)
    mf = content_mlp_mf(3, feats, 4, item_bias=True, seed=0)
    pairs = np.array([[0, 0], [1, 1], [2, 2], [0, 1]])
    history = train_bpr(mf, pairs, BPRConfig(epochs=2, batch_size=2, negatives=2), seed=0)
    assert len(history) == 2 and all(np.isfinite(history))
    assert mf.score_matrix().shape == (3, 5)
    items = mf.item_embedding
    assert isinstance(items, ContentMLPItems)
    assert items.trained.tolist() == [True, True, True, False, False]  # negatives: train items
    again = content_mlp_mf(3, feats, 4, item_bias=True, seed=0)
    train_bpr(again, pairs, BPRConfig(epochs=2, batch_size=2, negatives=2), seed=0)
    np.testing.assert_array_equal(again.score_matrix(), mf.score_matrix())  # seeded


def _tiny_split():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user_id": rng.integers(0, 30, 600), "item_id": rng.integers(0, 25, 600)})
    return cold_start_split(frame.drop_duplicates(), seed=0)


def test_lightfm_scores_every_pair_after_each_checkpoint() -> None:
    if not lightfm_available():
        pytest.skip("lightfm is not installed")
    split = _tiny_split()
    feats = np.random.default_rng(1).random((split.num_items, 3)).astype(np.float32)
    runs = lightfm_scores(split, feats, embedding_dim=4, epochs=(2, 1), seed=0)
    assert sorted(runs) == [1, 2]
    for scores in runs.values():
        assert scores.shape == (split.num_users, split.num_items)
        assert scores.dtype == np.float32 and np.isfinite(scores).all()
    again = lightfm_scores(split, feats, embedding_dim=4, epochs=(1,), seed=0)
    np.testing.assert_array_equal(again[1], runs[1])


def test_lightfm_checks_the_feature_rows() -> None:
    if not lightfm_available():
        pytest.skip("lightfm is not installed")
    split = _tiny_split()
    with pytest.raises(ShapeError, match=rf"shape \({split.num_items}, F\); got \(3, 2\)"):
        lightfm_scores(split, np.zeros((3, 2)), seed=0)
