"""Tests for synthembed._deprecation.renamed: old argument names warn and still work."""

from __future__ import annotations

import pytest

from synthembed._deprecation import renamed
from synthembed.errors import ConfigError


class Layer:
    @renamed(hidden="hidden_dims", random_state="seed")
    def __init__(self, *, hidden_dims=(4,), seed=0):
        self.hidden_dims, self.seed = hidden_dims, seed


def test_old_names_warn_and_map_to_the_new_ones() -> None:
    with pytest.warns(
        DeprecationWarning,
        match=r"Layer\(hidden=\.\.\.\) is deprecated; use Layer\(hidden_dims=\.\.\.\)",
    ):
        layer = Layer(hidden=(8, 2))
    assert layer.hidden_dims == (8, 2)
    with pytest.warns(DeprecationWarning, match="random_state"):
        assert Layer(random_state=3).seed == 3


def test_both_names_at_once_is_an_error() -> None:
    with pytest.raises(
        ConfigError,
        match=r"Layer\(\) got both hidden= \(deprecated\) and hidden_dims=; pass only hidden_dims=",
    ):
        Layer(hidden=(1,), hidden_dims=(2,))
