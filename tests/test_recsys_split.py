"""The ColdRec cold-start item split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthembed.errors import ConfigError, ShapeError
from synthembed.recsys.split import ColdStartSplit, cold_start_split


def _frame(seed: int = 0, users: int = 60, items: int = 120, n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # Skewed item popularity so that some items have fewer than 5 interactions.
    p = 1.0 / np.arange(1, items + 1)
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(0, users, n) * 7 + 3,
            "item_id": rng.choice(items, n, p=p / p.sum()) * 10 + 1000,
        }
    )
    return frame.drop_duplicates().reset_index(drop=True)


def _pairs(a: np.ndarray) -> set[tuple[int, int]]:
    return {(int(u), int(i)) for u, i in a}


@pytest.fixture(scope="module")
def split() -> ColdStartSplit:
    return cold_start_split(_frame(), seed=3)


def test_parts_partition_the_interactions(split: ColdStartSplit) -> None:
    parts = [split.train, split.warm_val, split.warm_test, split.cold_val, split.cold_test]
    sets = [_pairs(p) for p in parts]
    total = sum(len(s) for s in sets)
    assert total == len(set().union(*sets))  # disjoint
    frame = _frame()
    assert total == len(frame)  # nothing lost (every cold user is in train here)
    back = {(int(split.user_ids[u]), int(split.item_ids[i])) for s in sets for (u, i) in s}
    assert back == set(zip(frame["user_id"], frame["item_id"]))


def test_cold_items_never_appear_in_training(split: ColdStartSplit) -> None:
    cold = split.cold_items
    assert len(np.intersect1d(split.cold_val_items, split.cold_test_items)) == 0
    assert not np.isin(split.train[:, 1], cold).any()
    assert not np.isin(split.warm_val[:, 1], cold).any()
    assert not np.isin(split.warm_test[:, 1], cold).any()
    assert set(np.unique(split.cold_val[:, 1])) <= set(split.cold_val_items)
    assert set(np.unique(split.cold_test[:, 1])) <= set(split.cold_test_items)
    assert split.item_train_counts()[cold].sum() == 0


def test_cold_items_are_a_fifth_of_items_with_five_interactions(split: ColdStartSplit) -> None:
    frame = _frame()
    counts = frame["item_id"].value_counts()
    eligible = int((counts >= 5).sum())
    assert len(split.cold_items) == round(0.2 * eligible)
    assert len(split.cold_val_items) == round(0.2 * eligible) // 2
    cold_ids = split.item_ids[split.cold_items]
    assert (counts.loc[cold_ids] >= 5).all()


def test_warm_evaluation_pairs_have_user_and_item_in_train(split: ColdStartSplit) -> None:
    train_users = set(split.train[:, 0].tolist())
    train_items = set(split.train[:, 1].tolist())
    for part in (split.warm_val, split.warm_test):
        assert set(part[:, 0].tolist()) <= train_users
        assert set(part[:, 1].tolist()) <= train_items
    warm_total = len(split.train) + len(split.warm_val) + len(split.warm_test)
    # Roughly 80/10/10 (moves into train only make train bigger).
    assert 0.8 * warm_total - 1 <= len(split.train) <= 0.9 * warm_total
    assert len(split.warm_val) <= round(0.1 * warm_total) + 1


def test_same_seed_same_split_and_row_order_does_not_matter() -> None:
    frame = _frame()
    a = cold_start_split(frame, seed=5)
    b = cold_start_split(frame.sample(frac=1.0, random_state=1), seed=5)
    c = cold_start_split(frame, seed=6)
    for name in ("train", "warm_val", "warm_test", "cold_val", "cold_test"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.cold_test_items, c.cold_test_items)


def test_item_ids_fix_the_index_including_items_without_interactions() -> None:
    frame = _frame()
    all_items = np.arange(1000, 1000 + 10 * 130, 10)  # 10 more than occur
    s = cold_start_split(frame, seed=0, item_ids=all_items[::-1])
    assert s.num_items == 130
    assert np.array_equal(s.item_ids, all_items[::-1])
    assert int(s.item_ids[s.train[0, 1]]) in set(frame["item_id"])


def test_subsample_train_keeps_evaluation_parts(split: ColdStartSplit) -> None:
    half = split.subsample_train(0.5, seed=0)
    assert len(half.train) == round(0.5 * len(split.train))
    assert _pairs(half.train) <= _pairs(split.train)
    assert np.array_equal(half.warm_test, split.warm_test)
    with pytest.raises(ConfigError, match=r"'fraction'.*\(0, 1\]. Got 0 instead"):
        split.subsample_train(0, seed=0)


def test_bad_arguments_raise() -> None:
    frame = _frame()
    with pytest.raises(ConfigError, match=r"'cold_fraction'.*\[0, 1\)\. Got 1.0 instead"):
        cold_start_split(frame, seed=0, cold_fraction=1.0)
    with pytest.raises(ConfigError, match="'warm_fractions'"):
        cold_start_split(frame, seed=0, warm_fractions=(0.5, 0.1, 0.1))
    with pytest.raises(ShapeError, match=r"missing \['item_id'\]"):
        cold_start_split(frame.rename(columns={"item_id": "movie"}), seed=0)
    with pytest.raises(ConfigError, match="absent from item_ids"):
        cold_start_split(frame, seed=0, item_ids=[1000, 1010])


def test_new_releases_are_the_newest_items_and_outside_the_training_years() -> None:
    from synthembed.recsys.split import new_releases_split

    frame = _frame()
    items = np.sort(frame["item_id"].unique())
    rng = np.random.default_rng(1)
    years = rng.integers(1950, 2016, len(items)).astype(float)
    years[:3] = np.nan  # unknown years stay warm
    split = new_releases_split(frame, years, seed=2, item_ids=items)
    cold = split.cold_items
    assert len(cold) <= 0.2 * len(items)
    assert not np.isnan(years[cold]).any()
    train_items = np.unique(split.train[:, 1])
    known_train = years[train_items][~np.isnan(years[train_items])]
    assert years[cold].min() > known_train.max()  # outside the training range
    # The cut is the earliest that fits: one year earlier would exceed 20%.
    earlier = np.unique(years[~np.isnan(years)])
    cut = years[cold].min()
    prev = earlier[earlier < cut].max()
    assert (years >= prev).sum() > 0.2 * len(items)
    assert abs(len(split.cold_val_items) - len(split.cold_test_items)) <= 1
    assert not np.isin(split.train[:, 1], cold).any()
    # The cold items are the same for every seed; their val/test halves are drawn.
    other = new_releases_split(frame, years, seed=5, item_ids=items)
    np.testing.assert_array_equal(other.cold_items, cold)


def test_new_releases_needs_one_year_per_item() -> None:
    from synthembed.recsys.split import new_releases_split

    frame = _frame()
    with pytest.raises(ShapeError, match=r"one year per item: shape \(\d+,\); got \(3,\)"):
        new_releases_split(frame, [1990.0, 2000.0, 2010.0], seed=0)
    with pytest.raises(ConfigError, match="'cold_fraction' parameter of new_releases_split"):
        new_releases_split(frame, np.zeros(3), seed=0, cold_fraction=1.0)
