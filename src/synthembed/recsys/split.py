"""The cold-start item split of the ColdRec protocol, one split per seed.

The convention of the cold-start literature (the unified ColdRec benchmark used
for DropoutNet, Heater, GAR and ALDI), so that figures mean what theirs mean:

1. Among items with at least ``min_interactions`` interactions, a fraction
   ``cold_fraction`` (20%) becomes *cold*: none of their interactions is seen
   in training. Cold items split 1:1 into validation and test items.
2. Interactions of the remaining (warm) items split 80/10/10 at random into
   train, validation and test.
3. A warm validation or test pair whose user or item is absent from train
   moves into train (nothing is evaluated on an id the model never saw).
   Cold pairs whose *user* is absent from train are dropped: a recommender
   cannot rank for a user it has never seen, and that is not what the cold
   item protocol measures.

Users and items are renumbered to dense indices ``0..n-1``; ``user_ids`` and
``item_ids`` map an index back to the original id. Items with no interaction
at all may still be given (``item_ids=``) so that indices line up with a side
feature matrix; they are warm items without training data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from synthembed._validation import check_float, check_int
from synthembed.errors import ConfigError, ShapeError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ColdStartSplit", "cold_start_split", "new_releases_split"]

_OWNER = "cold_start_split"


@dataclass(frozen=True)
class ColdStartSplit:
    """One seed's train / validation / test partition for cold-start evaluation.

    Every pair array has shape ``(n, 2)`` and dtype int64: column 0 the user
    index, column 1 the item index.

    Attributes:
        num_users: number of user indices.
        num_items: number of item indices (warm and cold).
        user_ids: ``(num_users,)`` original user id of each index.
        item_ids: ``(num_items,)`` original item id of each index.
        train: training pairs (warm items only).
        warm_val: warm validation pairs.
        warm_test: warm test pairs.
        cold_val: pairs of the cold validation items.
        cold_test: pairs of the cold test items.
        cold_val_items: sorted indices of the cold validation items.
        cold_test_items: sorted indices of the cold test items.
        seed: the seed that drew the split.
    """

    num_users: int
    num_items: int
    user_ids: np.ndarray
    item_ids: np.ndarray
    train: np.ndarray
    warm_val: np.ndarray
    warm_test: np.ndarray
    cold_val: np.ndarray
    cold_test: np.ndarray
    cold_val_items: np.ndarray
    cold_test_items: np.ndarray
    seed: int

    @property
    def cold_items(self) -> np.ndarray:
        """Sorted indices of every cold item (validation and test)."""
        return np.union1d(self.cold_val_items, self.cold_test_items)

    @property
    def warm_items(self) -> np.ndarray:
        """Sorted indices of every item that is not cold."""
        return np.setdiff1d(np.arange(self.num_items), self.cold_items)

    def item_train_counts(self) -> np.ndarray:
        """``(num_items,)`` number of training interactions of each item."""
        return np.bincount(self.train[:, 1], minlength=self.num_items)

    def subsample_train(self, fraction: float, *, seed: int) -> ColdStartSplit:
        """The same split with only a random ``fraction`` of the training pairs kept.

        Validation and test pairs are unchanged (for data-efficiency studies).

        Raises:
            ConfigError: ``fraction`` is not in ``(0, 1]``.
        """
        check_float(
            "ColdStartSplit.subsample_train", "fraction", fraction, 0.0, 1.0, low_closed=False
        )
        rng = np.random.default_rng(seed)
        n_keep = max(1, round(fraction * len(self.train)))
        keep = np.sort(rng.permutation(len(self.train))[:n_keep])
        return replace(self, train=self.train[keep])


def _as_index(values: np.ndarray, universe: np.ndarray, what: str) -> np.ndarray:
    order = np.argsort(universe, kind="stable")
    pos = np.searchsorted(universe, values, sorter=order)
    pos = np.clip(pos, 0, len(universe) - 1)
    idx = order[pos]
    bad = universe[idx] != values
    if bad.any():
        some = np.unique(values[bad])[:5].tolist()
        raise ConfigError(
            f"{_OWNER} got {int(np.unique(values[bad]).size)} {what} id(s) absent from "
            f"item_ids (for example {some}); item_ids must list every item that has an interaction."
        )
    return idx


def cold_start_split(
    interactions: pd.DataFrame,
    *,
    seed: int,
    item_ids: Sequence[int] | np.ndarray | None = None,
    min_interactions: int = 5,
    cold_fraction: float = 0.2,
    warm_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> ColdStartSplit:
    """Split interactions by the ColdRec cold-start item protocol.

    Args:
        interactions: a frame with ``user_id`` and ``item_id`` columns (one row
            per implicit interaction; duplicate pairs are kept once).
        seed: seed of the random draw; the same seed gives the same split.
        item_ids: every item id, in the order of the item index (e.g. the rows
            of a side-feature matrix). Defaults to the sorted ids that occur.
        min_interactions: only items with at least this many interactions may
            become cold.
        cold_fraction: fraction of those items that become cold.
        warm_fractions: train / validation / test fractions of warm interactions.

    Returns:
        A :class:`ColdStartSplit`.

    Raises:
        ConfigError: an argument is out of range, or an interaction names an
            item absent from ``item_ids``.
        ShapeError: the frame lacks a ``user_id`` or ``item_id`` column.

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"user_id": [1, 1, 2, 2, 3, 3] * 4,
        ...                       "item_id": [10, 11, 10, 12, 11, 12] * 4})
        >>> split = cold_start_split(frame.drop_duplicates(), seed=0, min_interactions=1)
        >>> split.num_users, split.num_items
        (3, 3)
    """
    check_int(_OWNER, "seed", seed, 0)
    check_int(_OWNER, "min_interactions", min_interactions, 1)
    check_float(_OWNER, "cold_fraction", cold_fraction, 0.0, 1.0, high_closed=False)
    _check_warm_fractions(_OWNER, warm_fractions)
    user_ids, items, pairs = _pairs(interactions, item_ids, _OWNER)
    rng = np.random.default_rng(seed)

    counts = np.bincount(pairs[:, 1], minlength=len(items))
    eligible = np.flatnonzero(counts >= min_interactions)
    n_cold = round(cold_fraction * len(eligible))
    cold = rng.permutation(eligible)[:n_cold]
    return _assemble(pairs, user_ids, items, cold, rng, warm_fractions, seed)


def new_releases_split(
    interactions: pd.DataFrame,
    years: Sequence[float] | np.ndarray,
    *,
    seed: int,
    item_ids: Sequence[int] | np.ndarray | None = None,
    cold_fraction: float = 0.2,
    warm_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> ColdStartSplit:
    """The newest items are cold: a time-shifted cold-start split.

    Items with a known year are ordered by year; every item from the cut-off
    year on is cold, where the cut-off is the earliest year such that at most
    ``cold_fraction`` of the items with interactions lie at or after it. So a
    cold item's year lies outside the training items' range (a content model
    must extrapolate, not interpolate). Items with an unknown (NaN) year stay
    warm. Cold items split 1:1 at random (by ``seed``) into validation and
    test items; warm interactions split as in :func:`cold_start_split`.

    Args:
        interactions: a frame with ``user_id`` and ``item_id`` columns.
        years: ``(num_items,)`` year of each item, in the order of ``item_ids``
            (NaN: unknown).
        seed: seed of the random draws.
        item_ids: every item id in index order (default: the sorted ids that occur).
        cold_fraction: the largest share of items with interactions that become cold.
        warm_fractions: train / validation / test fractions of warm interactions.

    Raises:
        ConfigError: an argument is out of range, or an interaction names an
            item absent from ``item_ids``.
        ShapeError: the frame lacks a column, or ``years`` has not one entry per item.

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"user_id": [1, 1, 2, 2, 3, 3, 1, 2],
        ...                       "item_id": [10, 11, 10, 12, 11, 12, 13, 13]})
        >>> split = new_releases_split(frame, [1990, 1995, 2000, 2010], seed=0,
        ...                            item_ids=[10, 11, 12, 13], cold_fraction=0.25)
        >>> split.cold_items.tolist()  # the 2010 item
        [3]
    """
    owner = "new_releases_split"
    check_int(owner, "seed", seed, 0)
    check_float(owner, "cold_fraction", cold_fraction, 0.0, 1.0, high_closed=False)
    _check_warm_fractions(owner, warm_fractions)
    user_ids, items, pairs = _pairs(interactions, item_ids, owner)
    year = np.asarray(years, dtype=np.float64)
    if year.shape != (len(items),):
        raise ShapeError(
            f"{owner} expects one year per item: shape ({len(items)},); got {year.shape}."
        )
    rng = np.random.default_rng(seed)
    active = np.bincount(pairs[:, 1], minlength=len(items)) > 0
    known = active & ~np.isnan(year)
    budget = int(np.floor(cold_fraction * active.sum()))
    cold = np.array([], dtype=np.int64)
    for cut in np.unique(year[known]):  # ascending: the first cut within budget is the largest
        newer = np.flatnonzero(known & (year >= cut))
        if len(newer) <= budget:
            cold = newer
            break
    return _assemble(pairs, user_ids, items, rng.permutation(cold), rng, warm_fractions, seed)


def _check_warm_fractions(owner: str, warm_fractions: tuple[float, float, float]) -> None:
    if (
        len(warm_fractions) != 3
        or any(f < 0 for f in warm_fractions)
        or not np.isclose(sum(warm_fractions), 1.0)
        or warm_fractions[0] <= 0
    ):
        raise ConfigError(
            f"The 'warm_fractions' parameter of {owner} must be three non-negative fractions "
            f"(train > 0, validation, test) summing to 1. Got {warm_fractions!r} instead."
        )


def _pairs(
    interactions: pd.DataFrame, item_ids: Sequence[int] | np.ndarray | None, owner: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Original user ids, item ids and the sorted ``(n, 2)`` index pairs of the frame."""
    missing_cols = [c for c in ("user_id", "item_id") if c not in interactions.columns]
    if missing_cols:
        raise ShapeError(
            f"{owner} needs a frame with 'user_id' and 'item_id' columns; missing {missing_cols} "
            f"(found {list(interactions.columns)})."
        )
    pairs_raw = interactions[["user_id", "item_id"]].drop_duplicates().to_numpy(dtype=np.int64)
    user_ids = np.unique(pairs_raw[:, 0])
    items = np.unique(pairs_raw[:, 1]) if item_ids is None else np.asarray(item_ids, dtype=np.int64)
    if len(np.unique(items)) != len(items):
        raise ConfigError(f"The 'item_ids' parameter of {owner} must not repeat ids.")
    users = np.searchsorted(user_ids, pairs_raw[:, 0])
    item_idx = _as_index(pairs_raw[:, 1], items, "item")
    # Sort the pairs so the result does not depend on the frame's row order.
    pairs = np.stack([users, item_idx], axis=1).astype(np.int64)
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    return user_ids, items, pairs


def _assemble(
    pairs: np.ndarray,
    user_ids: np.ndarray,
    items: np.ndarray,
    cold: np.ndarray,
    rng: np.random.Generator,
    warm_fractions: tuple[float, float, float],
    seed: int,
) -> ColdStartSplit:
    """The split once the cold items are drawn (in random order: first half validation)."""
    n_cold = len(cold)
    n_cold_val = n_cold // 2
    cold_val_items = np.sort(cold[:n_cold_val])
    cold_test_items = np.sort(cold[n_cold_val:])

    is_cold = np.isin(pairs[:, 1], cold)
    warm_pairs = pairs[~is_cold]
    order = rng.permutation(len(warm_pairs))
    n_train = round(warm_fractions[0] * len(order))
    n_val = round(warm_fractions[1] * len(order))
    train = warm_pairs[order[:n_train]]
    val = warm_pairs[order[n_train : n_train + n_val]]
    test = warm_pairs[order[n_train + n_val :]]

    # Pairs whose user or item never occurs in train move into train.
    train_users = np.zeros(len(user_ids), dtype=bool)
    train_users[train[:, 0]] = True
    train_items = np.zeros(len(items), dtype=bool)
    train_items[train[:, 1]] = True
    moved = []
    kept = []
    for part in (val, test):
        ok = train_users[part[:, 0]] & train_items[part[:, 1]]
        moved.append(part[~ok])
        kept.append(part[ok])
    train = np.concatenate([train, *moved])
    train_users[train[:, 0]] = True

    cold_pairs = pairs[is_cold]
    cold_pairs = cold_pairs[train_users[cold_pairs[:, 0]]]
    in_val = np.isin(cold_pairs[:, 1], cold_val_items)

    def tidy(p: np.ndarray) -> np.ndarray:
        p = p.reshape(-1, 2)
        return np.ascontiguousarray(p[np.lexsort((p[:, 1], p[:, 0]))], dtype=np.int64)

    return ColdStartSplit(
        num_users=len(user_ids),
        num_items=len(items),
        user_ids=user_ids,
        item_ids=items,
        train=tidy(train),
        warm_val=tidy(kept[0]),
        warm_test=tidy(kept[1]),
        cold_val=tidy(cold_pairs[in_val]),
        cold_test=tidy(cold_pairs[~in_val]),
        cold_val_items=cold_val_items.astype(np.int64),
        cold_test_items=cold_test_items.astype(np.int64),
        seed=seed,
    )
