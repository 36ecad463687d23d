"""Renamed arguments keep their old names for one release, with a warning.

Example:
    >>> import warnings
    >>> @renamed(pool="mode")
    ... def reduce(x, *, mode="mean"):
    ...     return mode
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     reduce(1, pool="max")
    'max'
    >>> print(caught[0].message)
    reduce(pool=...) is deprecated; use reduce(mode=...). The old name goes in the next release.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from synthembed.errors import ConfigError

__all__ = ["renamed"]

F = TypeVar("F", bound=Callable[..., Any])


def _owner(fn: Callable[..., Any]) -> str:
    qualname = fn.__qualname__
    return qualname.removesuffix(".__init__")


def renamed(**old_to_new: str) -> Callable[[F], F]:
    """Decorator: accept each old keyword as its new name, with a ``DeprecationWarning``.

    Giving both the old and the new name raises :class:`~synthembed.errors.ConfigError`.
    """

    def decorate(fn: F) -> F:
        owner = _owner(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise ConfigError(
                        f"{owner}() got both {old}= (deprecated) and {new}=; pass only {new}=."
                    )
                warnings.warn(
                    f"{owner}({old}=...) is deprecated; use {owner}({new}=...). "
                    "The old name goes in the next release.",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
