"""synthembed.layers.embedding_bags: the pooling of bags and the checks of their inputs."""

from __future__ import annotations

import pytest
import torch

from synthembed.errors import ConfigError, NonFiniteError, ShapeError
from synthembed.layers.embedding import pool_bags as reexported
from synthembed.layers.embedding_bags import check_bag_inputs, pool_bags


def test_pool_bags_function_directly() -> None:
    v = torch.tensor([[[1.0, -1.0], [3.0, 5.0]]])  # (1, 2, 2)
    assert pool_bags(v, "sum", None, None).tolist() == [[4.0, 4.0]]
    assert pool_bags(v, "mean", None, None).tolist() == [[2.0, 2.0]]
    assert pool_bags(v, "max", None, None).tolist() == [[3.0, 5.0]]
    valid = torch.tensor([[True, False]])
    assert pool_bags(v, "max", None, valid).tolist() == [[1.0, -1.0]]
    assert pool_bags(v, "mean", torch.tensor([[2.0, 1.0]]), valid).tolist() == [[2.0, -2.0]]
    assert reexported is pool_bags  # the old import path still works


def test_check_bag_inputs_names_the_problem() -> None:
    ids = torch.tensor([[1, 2]])
    weights = torch.tensor([[0.5, 2.0]])
    assert check_bag_inputs(ids, "sum", None, weights) is weights
    assert check_bag_inputs(ids, "mean", torch.ones(1, 2, dtype=torch.bool), None) is None
    with pytest.raises(ShapeError, match="got a 0-d id"):
        check_bag_inputs(torch.tensor(1), "sum", None, None)
    with pytest.raises(ShapeError, match=r"per_sample_weights must have the ids' shape \(1, 2\)"):
        check_bag_inputs(ids, "sum", None, torch.ones(2))
    with pytest.raises(ShapeError, match=r"mask must be a torch\.Tensor; got list"):
        check_bag_inputs(ids, "sum", [[True, True]], None)  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match=r"must be floating point; got dtype torch\.int64"):
        check_bag_inputs(ids, "sum", None, torch.ones(1, 2, dtype=torch.long))
    with pytest.raises(ConfigError, match="not 'max'"):
        check_bag_inputs(ids, "max", None, weights)
    with pytest.raises(NonFiniteError, match="per_sample_weights"):
        check_bag_inputs(ids, "sum", None, torch.tensor([[1.0, float("inf")]]))
