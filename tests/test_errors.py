"""Tests of synthembed.errors: each error is also the built-in a user would catch."""

from __future__ import annotations

import pytest

from synthembed import errors


@pytest.mark.parametrize(
    ("ours", "builtin"),
    [
        (errors.InvalidIndexError, IndexError),
        (errors.UnknownTokenError, KeyError),
        (errors.ShapeError, ValueError),
        (errors.ConfigError, ValueError),
        (errors.NonFiniteError, ValueError),
        (errors.FileFormatError, ValueError),
        (errors.NotFittedError, RuntimeError),
        (errors.MissingDependencyError, ImportError),
    ],
)
def test_each_error_is_ours_and_the_builtin(
    ours: type[Exception], builtin: type[Exception]
) -> None:
    assert issubclass(ours, errors.SynthembedError) and issubclass(ours, builtin)
    with pytest.raises(builtin, match="the value 7 is outside \\[0, 3\\]"):
        raise ours("the value 7 is outside [0, 3]")
