"""The base registry: bases register by name; the registry imports no base.

A base maps integer ids of any shape ``(*)`` to ``(*, embedding_dim)`` vectors.
Every base registers itself with :func:`register_base`, so
``SyntheticEmbeddingLayer(base="qr")`` and ``make_base("qr", ...)`` find it
(the bases register when :mod:`synthembed.layers.bases` is imported).

The interface every base keeps (see :class:`Base`):

- attributes ``num_embeddings`` and ``embedding_dim``;
- ``forward(ids)``: ``(*)`` long ids -> ``(*, D)``. Every base checks its own
  ids (a wrapping layer may check first for a better message). Bases whose
  class attribute ``accepts_any_id`` is True (``hash``, ``qr``, ``dhe``) hash
  their ids and take any 64-bit id in ``[0, 2**63 - 1]``: for them
  ``num_embeddings`` is the number of ids the tables are sized for, not a
  bound, so a caller must only reject negative ids, not ids ``>= num_embeddings``;
- ``grow(n) -> (n,) new ids``: room for ``n`` more ids without renumbering;
- ``get_config()`` / ``from_config()`` for :func:`synthembed.save`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

import torch
from torch import nn

from synthembed.errors import ConfigError

__all__ = ["BASES", "Base", "base_names", "get_base", "make_base", "register_base"]


@runtime_checkable
class Base(Protocol):
    """What a base provides to :class:`~synthembed.SyntheticEmbeddingLayer`."""

    num_embeddings: int
    embedding_dim: int

    def __call__(self, ids: torch.Tensor) -> torch.Tensor: ...

    def grow(self, n: int) -> torch.Tensor: ...

    def get_config(self) -> dict[str, Any]: ...


BASES: dict[str, Callable[..., nn.Module]] = {}
M = TypeVar("M", bound=Callable[..., nn.Module])


def register_base(name: str) -> Callable[[M], M]:
    """Decorator: make a base class (or factory) available under ``name``."""

    def decorate(factory: M) -> M:
        BASES[name] = factory
        return factory

    return decorate


def base_names() -> list[str]:
    """The registered base names, sorted."""
    return sorted(BASES)


def get_base(name: str) -> Callable[..., nn.Module]:
    """The class (or factory) registered as ``name``.

    Raises:
        ConfigError: ``name`` is not registered; the message lists the registered names.
    """
    if name not in BASES:
        raise ConfigError(
            f"Unknown base {name!r}; registered bases are {base_names()}. "
            "Register your own with @register_base(name)."
        )
    return BASES[name]


def make_base(name: str, num_embeddings: int, embedding_dim: int, **options: Any) -> nn.Module:
    """Build the base registered as ``name``.

    Raises:
        ConfigError: ``name`` is not registered; the message lists the registered names.
    """
    return get_base(name)(num_embeddings, embedding_dim, **options)
