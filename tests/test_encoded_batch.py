"""Tests of synthembed.encoded_batch.EncodedBatch: a named pair (ids, mask)."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

from synthembed.encoded_batch import EncodedBatch
from synthembed.errors import ShapeError


def _batch() -> EncodedBatch:
    return EncodedBatch.from_lengths(torch.tensor([[2, 3, 4], [5, 0, 0]]), torch.tensor([3, 1]))


def test_unpack_index_len_and_lengths() -> None:
    batch = _batch()
    ids, mask = batch
    assert ids is batch.ids and mask is batch.mask and batch[0] is ids and batch[1] is mask
    assert len(batch) == 2 and batch.batch_size == 2
    assert mask.tolist() == [[True, True, True], [True, False, False]]
    assert batch.lengths.tolist() == [3, 1] and batch.lengths.dtype == torch.long
    assert batch.device == torch.device("cpu")
    assert repr(batch) == "EncodedBatch(shape=(2, 3), lengths=[3, 1])"


def test_equality_never_raises() -> None:
    batch = _batch()
    assert batch == copy.deepcopy(batch)
    assert (batch != copy.deepcopy(batch)) is False
    other = EncodedBatch(batch.ids.clone(), batch.mask.clone())
    other.ids[1, 0] = 9
    assert batch != other
    assert batch != EncodedBatch(batch.ids[:1], batch.mask[:1])  # other shape: False
    assert batch != (batch.ids, batch.mask) and (batch.ids, batch.mask) != batch
    assert batch != 3
    with pytest.raises(TypeError, match="unhashable"):
        hash(batch)


def test_to_device_pickle_and_errors() -> None:
    batch = _batch()
    moved = batch.to("cpu")
    assert isinstance(moved, EncodedBatch) and moved == batch
    assert pickle.loads(pickle.dumps(batch)) == batch
    with pytest.raises(ShapeError, match="moves the batch to a device"):
        batch.to(torch.float32)
    with pytest.raises(
        ShapeError, match=r"ids \(B, L\) and lengths \(B,\); got \(2, 3\) and \(3,\)"
    ):
        EncodedBatch.from_lengths(batch.ids, torch.tensor([1, 2, 3]))
