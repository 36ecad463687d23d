"""The synthesizer interface, the technique registry and shared helpers.

A *synthesizer* makes embedding vectors instead of storing them. It is one small
:class:`torch.nn.Module` per technique, registered by name with
:func:`register_technique`, and built by :func:`make_synthesizer` (which
:class:`~synthembed.layers.synthetic_embedding.SyntheticEmbeddingLayer` calls).

What every synthesizer receives for a batch (see :class:`Synthesizer.forward`):

- ``index``: the ids ``(*)`` (long), or soft-lookup weights ``(*, V)`` (float);
- ``rows``: the base's vectors of those ids, ``(*, D)``, carrying gradients;
- ``side``: the side features of those ids, ``(*, F)``, or None;
- ``visible``: ``(*)`` bool, or None for all True. Rows marked False must be
  synthesized without looking at their base row: they are cold ids (served by
  the synthesizer alone) or ids the layer hides in training so the synthesizer
  learns to stand alone (the DropoutNet idea). :meth:`Synthesizer.visible_rows`
  applies the mask.

Synthesizing once per distinct id: real id streams repeat popular ids many
times, so the layer calls a technique on the *distinct* ``(id, visible)`` pairs
of a batch and copies the rows back. A technique whose output row depends on
more than that row's own inputs (noise drawn per position, batch statistics)
sets the class attribute ``per_id = False`` and sees every position. An
auxiliary loss that averages over rows implements :meth:`Synthesizer.aux_loss_rows`
(one loss per row): the layer then weights each distinct row by how many
positions it stands for, and the loss equals the mean over every position.

Gradients come from autograd: a technique is a plain ``forward``.

Write your own technique:

.. code-block:: python

    @register_technique("affine")
    class Affine(Synthesizer):
        def __init__(self, num_embeddings, embedding_dim, side_dim, *, scale=1.0):
            super().__init__(num_embeddings, embedding_dim, side_dim)
            self.proj = nn.Linear(self.input_dim(), embedding_dim)
            self.scale = scale

        def forward(self, index, rows, side, visible=None):
            return self.scale * self.proj(self.inputs(rows, side, visible))

Its options are saved from the attributes of the same name (``self.scale``);
see :meth:`Synthesizer.get_options`.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from synthembed.errors import ConfigError

__all__ = [
    "TECHNIQUES",
    "Synthesizer",
    "get_technique",
    "lookup_rows",
    "make_synthesizer",
    "register_technique",
]

TECHNIQUES: dict[str, type[Synthesizer]] = {}
"""Registered synthesis techniques, name -> class (filled by :func:`register_technique`)."""

S = TypeVar("S", bound="type[Synthesizer]")


def register_technique(name: str) -> Callable[[S], S]:
    """Class decorator: make a :class:`Synthesizer` subclass available under ``name``.

    Registering a name twice replaces the earlier class (so a user can override
    a built-in technique deliberately).

    Example:
        >>> @register_technique("zeros")
        ... class Zeros(Synthesizer):
        ...     def forward(self, index, rows, side, visible=None):
        ...         return torch.zeros_like(rows)
        >>> "zeros" in TECHNIQUES
        True
        >>> del TECHNIQUES["zeros"]
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"A technique name must be a non-empty string; got {name!r}.")

    def decorate(cls: S) -> S:
        if not (isinstance(cls, type) and issubclass(cls, Synthesizer)):
            raise ConfigError(
                f"@register_technique({name!r}) decorates Synthesizer subclasses; got {cls!r}."
            )
        cls.technique = name
        TECHNIQUES[name] = cls
        return cls

    return decorate


def get_technique(name: str) -> type[Synthesizer]:
    """The class registered as ``name``; an unknown name lists the registered ones."""
    if name not in TECHNIQUES:
        raise ConfigError(
            f"Unknown synthesis technique {name!r}; registered techniques are "
            f"{sorted(TECHNIQUES)}. Register your own with @register_technique(name)."
        )
    return TECHNIQUES[name]


def make_synthesizer(
    name: str,
    num_embeddings: int,
    embedding_dim: int,
    side_dim: int | None,
    **options: Any,
) -> Synthesizer:
    """Build the synthesizer registered as ``name``.

    Args:
        name: a key of :data:`TECHNIQUES`.
        num_embeddings: number of ids the layer serves.
        embedding_dim: size ``D`` of the vectors to make.
        side_dim: size ``F`` of the per-id side features, or None without them.
        options: the technique's own keyword options.

    Raises:
        ConfigError: unknown name (the message lists the registered ones), an
            unknown option (the message lists the accepted ones), or side
            features missing for a technique that needs them.
    """
    cls = get_technique(name)
    options = _renamed_options(cls, name, options)
    accepted = cls.option_names()
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"Unknown option(s) {unknown} for synthesis technique {name!r}; it accepts "
            f"{sorted(accepted) or 'no options'}."
        )
    cls.check_side_features(side_dim, options)
    return cls(num_embeddings, embedding_dim, side_dim, **options)


def _renamed_options(cls: type[Synthesizer], name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Options under their old names (``cls.renamed_options``) mapped to the new, with a warning."""
    out = dict(options)
    for old, new in cls.renamed_options.items():
        if old not in out:
            continue
        if new in out:
            raise ConfigError(
                f"Synthesis technique {name!r} got both {old}= (deprecated) and {new}=; "
                f"pass only {new}=."
            )
        warnings.warn(
            f"The {name!r} option {old}= is deprecated; use {new}=. "
            "The old name goes in the next release.",
            DeprecationWarning,
            stacklevel=3,
        )
        out[new] = out.pop(old)
    return out


def lookup_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows of ``table`` for ids ``(*)`` -> ``(*, C)``, or a soft lookup ``(*, V) @ table``."""
    if index.is_floating_point():
        return torch.matmul(index.to(table.dtype), table)
    return F.embedding(index, table)


class _LastForward:
    """Tensors of the last training forward that an auxiliary loss reads.

    They carry the forward's autograd graph, so a copy or a pickle of the
    module leaves them behind (``copy.deepcopy`` of a module works after a
    training step; the copy has no last forward).
    """

    __slots__ = ("tensors",)

    def __init__(self, tensors: tuple[torch.Tensor, ...] | None = None) -> None:
        self.tensors = tensors

    def __deepcopy__(self, memo: dict[int, Any]) -> _LastForward:
        return _LastForward()

    def __reduce__(self) -> tuple[type[_LastForward], tuple[()]]:
        return (_LastForward, ())


class Synthesizer(nn.Module):
    """Base class of synthesis techniques: make ``(*, D)`` vectors for ids.

    Subclasses set the class attributes, implement :meth:`forward`, and
    override :meth:`aux_loss` (or :meth:`aux_loss_rows`), :meth:`fit`,
    :meth:`grow` and :meth:`get_options` when they have something to add.
    Gradients come from autograd.

    Args:
        num_embeddings: number of ids served.
        embedding_dim: size ``D`` of the vectors made.
        side_dim: size ``F`` of side features, or None.

    Attributes:
        technique: the registered name (set by :func:`register_technique`).
        needs_side_features: True if the technique cannot work without side features.
        uses_rows: True if the technique reads the base rows (so gradients
            flow from the synthetic vectors into the base table).
        id_tables: True if the technique keeps per-id state (a row per id,
            like ``manifold``'s coordinates), so it serves only ids in
            ``[0, num_embeddings)`` even when the base takes any 64-bit id.
        per_id: True (the default) if each output row depends only on its own
            id, row, side features and visibility, so the layer may synthesize
            once per distinct id; False for techniques that draw noise per
            position or use batch statistics (``gan``).
    """

    technique: ClassVar[str] = ""
    needs_side_features: ClassVar[bool] = False
    uses_rows: ClassVar[bool] = True
    id_tables: ClassVar[bool] = False
    per_id: ClassVar[bool] = True
    #: Options renamed for one name per concept: old name -> new name (still accepted, warned).
    renamed_options: ClassVar[dict[str, str]] = {}
    #: Constructor options not saved with the layer (e.g. data that fitting consumed).
    unsaved_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, num_embeddings: int, embedding_dim: int, side_dim: int | None) -> None:
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.side_dim = side_dim
        self._last_forward = _LastForward()

    # ------------------------------------------------------------------ construction
    @classmethod
    def option_names(cls) -> list[str]:
        """Keyword options the constructor accepts beyond the three sizes."""
        params = list(inspect.signature(cls.__init__).parameters.values())[4:]
        return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]

    @classmethod
    def check_side_features(cls, side_dim: int | None, options: dict[str, Any]) -> None:
        """Raise :class:`ConfigError` if the technique needs side features and has none."""
        if cls.needs_side_features and side_dim is None:
            raise ConfigError(
                f"Synthesis technique {cls.technique!r} needs side features (a per-id feature "
                "matrix); build the layer with side_features=<tensor of shape "
                "(input_dim, F)> or pick a technique that works without them "
                f"({sorted(n for n, c in TECHNIQUES.items() if not c.needs_side_features)})."
            )

    def fit(self, side_features: torch.Tensor | None) -> None:
        """Configure-time fitting on all side features ``(V, F)`` (default: nothing)."""

    def get_options(self) -> dict[str, Any]:
        """JSON-safe options that rebuild this synthesizer (for saving).

        By default each constructor option (:meth:`option_names`, less
        ``unsaved_options``) read from the attribute of the same name, tuples as
        lists; override when an attribute holds something else.
        """
        out: dict[str, Any] = {}
        for name in self.option_names():
            if name in self.unsaved_options:
                continue
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else value
        return out

    # ------------------------------------------------------------------ helpers
    def input_dim(self) -> int:
        """Size of :meth:`inputs`: ``D`` (+ ``F`` with side features)."""
        return self.embedding_dim + (self.side_dim or 0)

    @staticmethod
    def visible_rows(rows: torch.Tensor, visible: torch.Tensor | None) -> torch.Tensor:
        """``rows`` with the rows of hidden ids (``visible`` False) set to zero."""
        if visible is None:
            return rows
        return rows * visible.unsqueeze(-1).to(rows.dtype)

    def inputs(
        self, rows: torch.Tensor, side: torch.Tensor | None, visible: torch.Tensor | None
    ) -> torch.Tensor:
        """``concat(visible rows, side features)`` -> ``(*, D [+ F])``."""
        x = self.visible_rows(rows, visible)
        if side is not None:
            x = torch.cat([x, side.to(x.dtype)], dim=-1)
        return x

    def remember(self, *tensors: torch.Tensor) -> None:
        """Keep tensors of this training forward for :meth:`aux_loss` (dropped in eval mode)."""
        self._last_forward = _LastForward(tensors if self.training else None)

    def forget(self) -> None:
        """Drop the last forward's record (and the autograd graph it holds), e.g. before
        the tables grow: a live graph keeps autograd's per-leaf state at the old size."""
        self._last_forward = _LastForward()

    def remembered(self) -> tuple[torch.Tensor, ...] | None:
        """What the last forward passed to :meth:`remember` (None in eval mode or after a copy)."""
        return self._last_forward.tensors

    def last_record(self) -> _LastForward:
        """The record :meth:`remember` made in the last forward (opaque; for :meth:`replay`)."""
        return self._last_forward

    @contextlib.contextmanager
    def replay(self, record: _LastForward) -> Iterator[None]:
        """Within the block, :meth:`remembered` (hence :meth:`aux_loss`) reads ``record``:
        how the layer computes the loss of each forward since ``get_loss()`` was last read."""
        saved, self._last_forward = self._last_forward, record
        try:
            yield
        finally:
            self._last_forward = saved

    # ------------------------------------------------------------------ the technique
    def forward(
        self,
        index: torch.Tensor,
        rows: torch.Tensor,
        side: torch.Tensor | None,
        visible: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Make synthetic vectors.

        Args:
            index: ``(*)`` long ids, or ``(*, V)`` soft-lookup weights.
            rows: ``(*, D)`` base vectors of those ids.
            side: ``(*, F)`` side features of those ids, or None.
            visible: ``(*)`` bool; False rows must not read their base row.

        Shape:
            Output: ``(*, D)``.
        """
        raise NotImplementedError

    def aux_loss_rows(self) -> torch.Tensor | None:
        """``(*)`` auxiliary loss of each row of the last training forward, or None.

        Implement this (instead of :meth:`aux_loss`) when the loss is a mean over
        rows: :meth:`aux_loss` is then its mean, and the layer weights the rows of
        a deduplicated forward by their number of positions.
        """
        return None

    def aux_loss(self) -> torch.Tensor | None:
        """Auxiliary loss of the last training forward, or None when there is none."""
        rows = self.aux_loss_rows()
        return None if rows is None else rows.mean()

    def grow(
        self,
        n: int,
        new_side: torch.Tensor | None,
        old_side: torch.Tensor | None,
        **kwargs: Any,
    ) -> None:
        """Make room for ``n`` new ids (default: nothing depends on the id count)."""
        self.num_embeddings += n
