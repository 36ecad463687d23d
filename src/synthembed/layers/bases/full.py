"""The ``full`` base: a dense ``(V, D)`` table, what :class:`torch.nn.Embedding` does.

It is :class:`synthembed.layers.embedding.Embedding` itself, registered under
the name ``"full"``; nothing wraps it, so ``make_base("full", V, D)`` returns
the plain layer users reach for first.
"""

from __future__ import annotations

from synthembed.layers.bases.registry import register_base
from synthembed.layers.embedding import Embedding

__all__ = ["Embedding"]

register_base("full")(Embedding)
