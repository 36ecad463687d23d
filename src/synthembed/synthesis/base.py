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

Synthesizing once per distinct id: a technique whose output row depends only on
that row's own inputs (no noise, no batch statistics) says so by returning True
from :meth:`Synthesizer.per_id`. The layer then calls it on the *distinct*
``(id, visible)`` pairs of a batch only (real id streams repeat popular ids
many times) and copies the synthetic rows back to every position, and it
passes ``counts=``, a ``(U,)`` long tensor of how many batch positions each
row stands for: auxiliary losses that average over rows weight by it, so they
equal the loss over every position. Such a technique's ``forward`` takes a
``counts`` keyword (None when the layer did not deduplicate).

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

        def get_options(self):
            return {"scale": self.scale}
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from synthembed.errors import ConfigError
from synthembed.layers.embedding import allocate_table

__all__ = [
    "TECHNIQUES",
    "Synthesizer",
    "accumulate_grad",
    "alloc_like",
    "blend_backward",
    "blend_rows",
    "column_sums",
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
    accepted = cls.option_names()
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"Unknown option(s) {unknown} for synthesis technique {name!r}; it accepts "
            f"{sorted(accepted) or 'no options'}."
        )
    cls.check_side_features(side_dim, options)
    return cls(num_embeddings, embedding_dim, side_dim, **options)


def lookup_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows of ``table`` for ids ``(*)`` -> ``(*, C)``, or a soft lookup ``(*, V) @ table``."""
    if index.is_floating_point():
        return torch.matmul(index.to(table.dtype), table)
    return F.embedding(index, table)


def alloc_like(rows: int, cols: int, like: torch.Tensor, *, zero: bool = False) -> torch.Tensor:
    """An uninitialised (or zeroed) ``(rows, cols)`` tensor like ``like``, on 2 MiB pages.

    For large intermediates (see :func:`~synthembed.layers.embedding.allocate_table`):
    a fresh ``(N, D)`` tensor from torch's allocator costs a page fault per 4 KiB,
    measured here as much as the operation that fills it.
    """
    return allocate_table(rows, cols, device=like.device, dtype=like.dtype, zero=zero)


def blend_rows(
    rows: torch.Tensor,
    syn: torch.Tensor,
    rate: float | torch.Tensor,
    skip: int,
    pad_row: int | None,
) -> torch.Tensor:
    """``lerp(rows, syn, r)`` per distinct row; rows ``[:skip]`` take ``syn`` (r = 1) and the
    padding row ``(1 - r) * rows`` (no synthetic part)."""
    n, d = rows.shape
    out = alloc_like(n, d, rows)
    if skip:
        out[:skip].copy_(syn[:skip])
    if skip < n:
        torch.lerp(rows[skip:], syn[skip:], rate, out=out[skip:])
    if pad_row is not None:
        torch.mul(rows[pad_row], 1 - rate, out=out[pad_row])
    return out


def blend_backward(
    grad: torch.Tensor,
    rows: torch.Tensor,
    syn: torch.Tensor,
    rate: float | torch.Tensor,
    skip: int,
    pad_row: int | None,
    *,
    need_rows: bool = True,
    need_syn: bool = True,
    need_rate: bool = False,
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Gradients of :func:`blend_rows` with respect to rows, syn and the rate."""
    n, d = grad.shape
    g_rows = g_syn = g_rate = None
    if need_rows:
        g_rows = alloc_like(n, d, grad)
        g_rows[:skip].zero_()
        torch.mul(grad[skip:], 1 - rate, out=g_rows[skip:])
    if need_syn:
        g_syn = alloc_like(n, d, grad)
        g_syn[:skip].copy_(grad[:skip])
        torch.mul(grad[skip:], rate, out=g_syn[skip:])
        if pad_row is not None:
            g_syn[pad_row].zero_()
    if need_rate:
        # d out / d r = syn - rows on the blended rows (syn = 0 on the padding row).
        g = grad[skip:].reshape(-1)
        g_rate = torch.dot(g, syn[skip:].reshape(-1)) - torch.dot(g, rows[skip:].reshape(-1))
        if pad_row is not None:
            g_rate = g_rate - torch.dot(grad[pad_row], syn[pad_row])
    return g_rows, g_syn, g_rate


def column_sums(x: torch.Tensor) -> torch.Tensor:
    """``x.sum(0)`` of a 2-d tensor as a matrix-vector product: torch's column reduction
    measured 8x slower here under load (0.4 ms alone, 8 ms median on a busy machine)."""
    if x.shape[0] == 0:
        return x.new_zeros(x.shape[1])
    ones = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
    return torch.mv(x.t(), ones)


def accumulate_grad(param: torch.Tensor, grad: torch.Tensor | None) -> None:
    """Add ``grad`` into ``param.grad`` as autograd does (create it on first use)."""
    if grad is None or not param.requires_grad:
        return
    if param.grad is None:
        param.grad = grad.detach().clone()
    else:
        param.grad.add_(grad.detach())


class Synthesizer(nn.Module):
    """Base class of synthesis techniques: make ``(*, D)`` vectors for ids.

    Subclasses set the class attributes, implement :meth:`forward`, and
    override :meth:`aux_loss`, :meth:`fit`, :meth:`grow`, :meth:`get_options`
    and :meth:`backward` when they have something to add.

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
    """

    technique: ClassVar[str] = ""
    needs_side_features: ClassVar[bool] = False
    uses_rows: ClassVar[bool] = True
    id_tables: ClassVar[bool] = False

    def __init__(self, num_embeddings: int, embedding_dim: int, side_dim: int | None) -> None:
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.side_dim = side_dim

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
        """JSON-safe options that rebuild this synthesizer (for saving)."""
        return {}

    def per_id(self) -> bool:
        """True if each output row depends only on its own id, row, side features and
        visibility (no noise, no batch statistics), so the layer may synthesize once per
        distinct id and ``forward`` accepts ``counts=`` (see the module notes). Default False."""
        return False

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

    def aux_loss(self) -> torch.Tensor | None:
        """Auxiliary loss of the last training forward, or None when there is none."""
        return None

    def fused_blend(
        self,
        index: torch.Tensor,
        rows: torch.Tensor,
        side: torch.Tensor | None,
        visible: torch.Tensor | None,
        rate: float | torch.Tensor,
        pad_row: int | None,
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Optional speed hook: the layer's blend and this technique in one autograd step.

        For ``(U, D)`` deduplicated rows whose ``visible`` mask is a prefix of
        False (hidden rows first): return ``(blend_rows(rows, forward(...), rate,
        skip, pad_row), forward(...))``, the second output not differentiable, or
        None (the default) to let the layer call :meth:`forward` and blend.
        """
        return None

    def grow(
        self,
        n: int,
        new_side: torch.Tensor | None,
        old_side: torch.Tensor | None,
        **kwargs: Any,
    ) -> None:
        """Make room for ``n`` new ids (default: nothing depends on the id count)."""
        self.num_embeddings += n

    def backward(
        self,
        grad_output: torch.Tensor,
        index: torch.Tensor,
        rows: torch.Tensor,
        side: torch.Tensor | None,
        visible: torch.Tensor | None,
        output: torch.Tensor,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """Accumulate parameter gradients of one forward; return input gradients.

        The default differentiates the technique's own sub-graph (recorded by
        autograd during :meth:`forward`) with :func:`torch.autograd.grad` and
        adds the parameter gradients into ``.grad`` by hand. Techniques whose
        chain rule is simple override this with explicit formulas.

        Returns:
            Gradients with respect to ``rows``, ``side`` and ``index`` (None
            where that input needs none).
        """
        params = [p for p in self.parameters() if p.requires_grad]
        wanted: list[torch.Tensor] = []
        slots: list[int] = []
        for slot, t in enumerate((rows, side, index)):
            if t is not None and t.requires_grad:
                wanted.append(t)
                slots.append(slot)
        if not wanted and not params:
            return None, None, None
        if not output.requires_grad:
            return None, None, None
        grads = torch.autograd.grad(
            output, [*wanted, *params], grad_output, allow_unused=True, retain_graph=True
        )
        result: list[torch.Tensor | None] = [None, None, None]
        for slot, g in zip(slots, grads[: len(wanted)]):
            result[slot] = g
        for p, g in zip(params, grads[len(wanted) :]):
            accumulate_grad(p, g)
        return result[0], result[1], result[2]
