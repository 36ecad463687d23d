"""Feature combination: a content tower over the side features (and the visible base row).

The layer's default technique without side features (with them the default is
the autoencoder, which measured better on MovieLens cold start:
``benchmarks/results/default_technique.md``). An MLP maps each id's inputs to an
unbounded vector of the base table's scale, fit for dot-product scoring
(``[LayerNorm]`` with ``norm=True``)::

    x = concat([LayerNorm](visible row), [LayerNorm](side))  (*, D + F)
    h = act([LayerNorm](x @ C + b))                          (*, H)   per hidden width
    z = h @ W_out + b_out                                    (*, D)

The founding document's ``combine_features`` is the one-layer special case::

    combined = torch.matmul(x, self.combination_matrix)
    return torch.sigmoid(combined)

and stays available: ``technique_options=Combination.FOUNDING`` (no hidden
layer, no normalisation, ``output="sigmoid"``) computes ``sigmoid(x @ C + b)``
with ``x = concat(base row, side features)`` exactly. Its outputs all lie in
``(0, 1)``: every pair of vectors has a positive dot product, a poor shape for
scoring, which is why it is no longer the default (``docs/guides/synthetic.md``
has the measurement).

Departures and choices, each measured in ``benchmarks/results/synthesizers.md``:

- ``norm=False`` (default): with LayerNorm on the inputs and hidden layers the
  tower lost 0.014 cold AUC and 0.006 cold Recall@20 on MovieLens (3 seeds);
  LayerNorm on the inputs alone lost more. Turn it on for features of wildly
  different scales.
- ``rows=None`` (default): the tower reads the base row only when the layer has
  no side features. With side features the row already enters through the
  blend, and a tower that leans on it learns little it can serve to cold ids,
  whose row is hidden.
- A hidden row (``visible`` False) enters as zeros *after* its normalisation,
  so the tower's output for that id does not depend on the row.
- The bias ``b`` (on by default, zero at start) gives an id without a visible
  row and without side features a learned "typical" vector.
- Dropout, when set, is drawn once per distinct id of a batch (the layer
  synthesizes each distinct id once).

Gradients come from autograd. The concatenation is never built
(``x @ C = row @ C[:D] + side @ C[D:]``) and the bias is fused into the product.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from synthembed._validation import check_choice, check_float, check_int
from synthembed.errors import ConfigError
from synthembed.synthesis.base import Synthesizer, register_technique

__all__ = ["Combination"]

_OUTPUTS = ("linear", "sigmoid")
_ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "tanh": nn.Tanh, "relu": nn.ReLU}


@register_technique("combination")
class Combination(Synthesizer):
    """A content tower ``MLP(concat(row, side))`` (LayerNorm optional), or the founding
    ``sigmoid(concat(row, side) @ C + b)``.

    Args:
        num_embeddings: number of ids served.
        embedding_dim: ``D``.
        side_dim: ``F``, or None without side features.
        hidden_dims: widths of the hidden layers (default ``(256,)``); ``()`` is one
            linear map ``x @ C + b``.
        norm: LayerNorm on the inputs (row and side features apart) and after each
            hidden layer's product (off by default: on MovieLens it cost 0.014 cold
            AUC, see the module notes).
        dropout: dropout after each hidden activation (training mode only).
        activation: the hidden layers' activation, ``"gelu"`` (default), ``"tanh"``
            or ``"relu"``.
        output: ``"linear"`` (unbounded, the default) or ``"sigmoid"`` (outputs in
            ``(0, 1)``, the founding formula).
        rows: read the (visible) base row: True, False, or None for "only without
            side features" (see the module notes).
        bias: learn the first layer's bias ``b``.
        rank: if set, factor the first matrix ``C = U @ V`` with ``U: (D [+ F], rank)``.

    Shape:
        ``(*, D)`` rows and ``(*, F)`` side features -> ``(*, D)``.

    Example:
        >>> comb = Combination(10, 4, 3)
        >>> comb(torch.tensor([1, 2]), torch.randn(2, 4), torch.rand(2, 3)).shape
        torch.Size([2, 4])
        >>> founding = Combination(10, 4, None, **Combination.FOUNDING)
        >>> bool(((z := founding(torch.tensor([1]), torch.randn(1, 4), None)) > 0).all())
        True
    """

    #: Options that give the founding document's ``sigmoid(x @ C + b)``.
    FOUNDING: ClassVar[dict[str, Any]] = {
        "hidden_dims": (),
        "norm": False,
        "output": "sigmoid",
        "rows": True,
    }

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        side_dim: int | None,
        *,
        hidden_dims: Sequence[int] = (256,),
        norm: bool = False,
        dropout: float = 0.0,
        output: str = "linear",
        activation: str = "gelu",
        rows: bool | None = None,
        bias: bool = True,
        rank: int | None = None,
    ) -> None:
        hidden = _widths("Combination", hidden_dims)
        if not isinstance(norm, bool):
            raise ConfigError(f"The 'norm' parameter of Combination must be a bool. Got {norm!r}.")
        check_float("Combination", "dropout", dropout, 0.0, 1.0, high_closed=False)
        check_choice("Combination", "output", output, _OUTPUTS)
        check_choice("Combination", "activation", activation, tuple(_ACTIVATIONS))
        if rows is not None and not isinstance(rows, bool):
            raise ConfigError(
                f"The 'rows' parameter of Combination must be True, False or None. Got {rows!r}."
            )
        if rows is False and side_dim is None:
            raise ConfigError(
                "Combination(rows=False) reads side features only, but the layer has none: "
                "pass side_features=, or rows=None."
            )
        check_int("Combination", "rank", rank, 1, optional=True)
        super().__init__(num_embeddings, embedding_dim, side_dim)
        self.hidden_dims = hidden
        self.norm = norm
        self.dropout = float(dropout)
        self.output = output
        self.activation = activation
        self.rows = rows
        self.rank = rank
        self.read_rows = rows if rows is not None else side_dim is None
        d = embedding_dim
        d_in = (d if self.read_rows else 0) + (side_dim or 0)
        width = hidden[0] if hidden else d
        self.row_norm = nn.LayerNorm(d) if norm and self.read_rows else None
        self.side_norm = nn.LayerNorm(side_dim) if norm and side_dim else None
        # std 1/sqrt(d_in): unit-variance inputs give unit-variance products.
        if rank is None:
            self.combination_matrix = nn.Parameter(torch.randn(d_in, width) / math.sqrt(d_in))
            self.factor_u: nn.Parameter | None = None
            self.factor_v: nn.Parameter | None = None
        else:
            self.register_parameter("combination_matrix", None)
            self.factor_u = nn.Parameter(torch.randn(d_in, rank) / math.sqrt(d_in))
            self.factor_v = nn.Parameter(torch.randn(rank, width) / math.sqrt(rank))
        self.bias = nn.Parameter(torch.zeros(width)) if bias else None
        self.tower = _tower(hidden, d, norm=norm, dropout=self.dropout, activation=activation)

    def get_options(self) -> dict[str, Any]:
        # self.bias holds the parameter (or None), not the constructor's flag.
        return {
            "hidden_dims": list(self.hidden_dims),
            "norm": self.norm,
            "dropout": self.dropout,
            "output": self.output,
            "activation": self.activation,
            "rows": self.rows,
            "bias": self.bias is not None,
            "rank": self.rank,
        }

    def combine_features(self, x: torch.Tensor) -> torch.Tensor:
        """The tower on ``x = concat(row, side)``: ``(*, D [+ F])`` -> ``(*, D)``.

        Without ``rows`` reading the row, ``x`` is the side features ``(*, F)``.
        """
        d = self.embedding_dim if self.read_rows else 0
        rows = x[..., :d] if self.read_rows else None
        side = x[..., d:] if self.side_dim else None
        return self._combine(rows, side, None, x.shape[:-1])

    def forward(
        self,
        index: torch.Tensor,
        rows: torch.Tensor,
        side: torch.Tensor | None,
        visible: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self._combine(rows if self.read_rows else None, side, visible, rows.shape[:-1])

    def _combine(
        self,
        rows: torch.Tensor | None,
        side: torch.Tensor | None,
        visible: torch.Tensor | None,
        lead: torch.Size,
    ) -> torch.Tensor:
        n = math.prod(lead)
        first = self.combination_matrix if self.factor_u is None else self.factor_u
        assert first is not None
        parts: list[tuple[torch.Tensor, torch.Tensor]] = []  # (input (N, k), its rows of C)
        d = 0
        if rows is not None:
            d = self.embedding_dim
            x = rows.reshape(n, d)  # (N, D)
            if self.row_norm is not None:
                x = self.row_norm(x)
            if visible is not None:  # hidden rows enter as zeros, after the norm
                x = x * visible.reshape(n, 1).to(x.dtype)
            parts.append((x, first[:d]))
        if side is not None:
            s = side.to(first.dtype).reshape(n, side.shape[-1])  # (N, F)
            if self.side_norm is not None:
                s = self.side_norm(s)
            parts.append((s, first[d:]))
        # x @ C = rows @ C[:D] + side @ C[D:]: no (N, D + F) copy.
        direct = self.factor_v is None
        z: torch.Tensor | None = None
        for x, w in parts:
            if z is None:
                use_bias = direct and self.bias is not None
                z = torch.addmm(self.bias, x, w) if use_bias else x @ w  # type: ignore[arg-type]
            else:
                z = z.addmm(x, w)
        if z is None:  # no inputs at all: an id's output is its bias (or zero)
            width = self.factor_v.shape[1] if self.factor_v is not None else first.shape[1]
            z = first.new_zeros(n, width)
            if direct and self.bias is not None:
                z = z + self.bias
        if not direct:
            assert self.factor_v is not None
            z = z @ self.factor_v if self.bias is None else torch.addmm(self.bias, z, self.factor_v)
        z = self.tower(z)  # (N, D)
        if self.output == "sigmoid":
            z = z.sigmoid()
        return z.reshape(*lead, self.embedding_dim)


def _widths(owner: str, hidden_dims: Sequence[int] | int) -> tuple[int, ...]:
    """``hidden_dims`` as a tuple of positive ints (one int is one width)."""
    hidden = (hidden_dims,) if isinstance(hidden_dims, int) else tuple(hidden_dims)
    for width in hidden:
        check_int(owner, "hidden_dims", width, 1)
    return hidden


def _tower(
    hidden: tuple[int, ...], d_out: int, *, norm: bool, dropout: float, activation: str
) -> nn.Sequential:
    """After the first product (to ``hidden[0]``): ``[LayerNorm] -> activation -> [Dropout]
    -> Linear`` per hidden width, ending at ``d_out``. Empty when ``hidden`` is ``()``."""
    layers: list[nn.Module] = []
    widths = [*hidden, d_out]
    for d_in, d_next in itertools.pairwise(widths):
        if norm:
            layers.append(nn.LayerNorm(d_in))
        layers.append(_ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(d_in, d_next))
    return nn.Sequential(*layers)
