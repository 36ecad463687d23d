"""Tests for synthembed._validation: one wording for every argument and input error."""

from __future__ import annotations

import re

import pytest
import torch

from synthembed import _validation as v
from synthembed.errors import (
    ConfigError,
    InvalidIndexError,
    MissingDependencyError,
    NonFiniteError,
    ShapeError,
    SynthembedError,
)


def test_check_int() -> None:
    assert v.check_int("Thing", "n", 3, 1) == 3
    assert v.check_int("Thing", "n", None, 1, optional=True) is None
    msg = "The 'n_bins' parameter of KBins must be an int in the range [2, inf). Got 1 instead."
    with pytest.raises(ConfigError, match=re.escape(msg)):
        v.check_int("KBins", "n_bins", 1, 2)
    with pytest.raises(ConfigError, match=re.escape("an int or None in the range [0, 5]. Got 2.0")):
        v.check_int("T", "k", 2.0, 0, 5, optional=True)
    with pytest.raises(ConfigError, match="Got True instead"):
        v.check_int("T", "k", True)
    with pytest.raises(ValueError):  # ConfigError is a ValueError
        v.check_int("T", "k", "3")


def test_check_float() -> None:
    assert v.check_float("T", "lr", 1, 0.0, low_closed=False) == 1.0
    assert v.check_float("T", "lr", torch.tensor(0.5)) == 0.5
    assert v.check_float("T", "lr", None, optional=True) is None
    with pytest.raises(ConfigError, match=re.escape("a float in the range (0, inf). Got 0.0")):
        v.check_float("T", "lr", 0.0, 0.0, low_closed=False)
    with pytest.raises(ConfigError, match=re.escape("in the range [0, 1). Got 1.0")):
        v.check_float("T", "p", 1.0, 0.0, 1.0, high_closed=False)
    with pytest.raises(ConfigError, match="Got nan"):
        v.check_float("T", "p", float("nan"))
    with pytest.raises(ConfigError, match="Got 'x'"):
        v.check_float("T", "p", "x")


def test_check_choice_lists_every_choice() -> None:
    assert v.check_choice("T", "mode", "sum", ("sum", "max")) == "sum"
    msg = "The 'mode' parameter of T must be one of 'sum', 'max'. Got 'avg' instead."
    with pytest.raises(ConfigError, match=re.escape(msg)):
        v.check_choice("T", "mode", "avg", ("sum", "max"))


def test_check_ids() -> None:
    v.check_ids(torch.tensor([0, 4]), 5, "T")
    v.check_ids(torch.zeros(0, dtype=torch.long), 0, "T")
    with pytest.raises(InvalidIndexError) as info:
        v.check_ids(torch.tensor([[5, 1], [9, 7]]), 5, "T")
    assert str(info.value) == (
        "T got 3 id(s) outside the valid range [0, 4] (smallest offending id 5, largest 9); "
        "grow the table or build it with num_embeddings > 9."
    )
    assert isinstance(info.value, IndexError) and isinstance(info.value, SynthembedError)
    with pytest.raises(
        InvalidIndexError, match=r"smallest offending id -3, largest -3.*negative ids"
    ):
        v.check_ids(torch.tensor([1, -3]), 5, "T")


def test_check_integer_ids() -> None:
    ids = torch.tensor([1, 2], dtype=torch.int32)
    assert v.check_integer_ids(ids, "T") is ids
    with pytest.raises(ShapeError, match=re.escape("got ids of dtype torch.float64")):
        v.check_integer_ids(torch.tensor([1.0], dtype=torch.float64), "T")
    with pytest.raises(ShapeError, match=r"got ids of dtype torch.complex64"):
        v.check_integer_ids(torch.tensor([1j], dtype=torch.complex64), "T")
    with pytest.raises(ShapeError, match="pass it as mask="):
        v.check_integer_ids(torch.tensor([True]), "T")
    with pytest.raises(ShapeError, match="got tuple"):
        v.check_integer_ids((1, 2), "T")


def test_check_finite_and_last_dim() -> None:
    v.check_finite(torch.ones(3), "x")
    v.check_finite(torch.tensor([1, 2]), "integers are always finite")
    with pytest.raises(NonFiniteError, match="x contains 2 NaN and 1 infinite value"):
        v.check_finite(torch.tensor([float("nan"), float("nan"), -float("inf")]), "x")
    v.check_last_dim(torch.zeros(2, 3), 3, "x")
    with pytest.raises(ShapeError, match=re.escape("x must have shape (*, 3); got (2, 4). Try y.")):
        v.check_last_dim(torch.zeros(2, 4), 3, "x", "Try y.")
    with pytest.raises(ShapeError, match=re.escape("got ()")):
        v.check_last_dim(torch.tensor(1.0), 3, "x")


def test_require() -> None:
    assert v.require("json", "dev", "Testing").dumps([1]) == "[1]"
    with pytest.raises(MissingDependencyError, match=r"pip install 'synthembed\[viz\]'") as info:
        v.require("not_a_real_module_xyz", "viz", "Plotting")
    assert "Plotting needs the optional dependency 'not_a_real_module_xyz'" in str(info.value)
    assert isinstance(info.value, ImportError)
