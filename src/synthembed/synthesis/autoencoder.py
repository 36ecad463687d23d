"""Autoencoder synthesis: a bottleneck encoder of side features (or the base row).

Shape of the idea (cf. the content autoencoders of collaborative deep learning,
Wang et al., KDD 2015, and DropoutNet, Volkovs et al., NeurIPS 2017)::

    x ──enc──► h (bottleneck) ──head──► z (D): the synthetic vector
                       └──────dec──► x̂ (reconstruction of x)

``x`` is the id's side features when the layer has them, else its (visible)
base row. The auxiliary loss (:meth:`Autoencoder.aux_loss`, returned by the
layer's ``get_loss()``) is::

    mse(x̂, x) + align_weight * align(z, stop_grad(base row))

The alignment term pulls the synthetic vector of every id in the training
batch onto that id's learned row, so the synthetic row of a new id (made from
its side features alone) lands where a trained row would.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from synthembed._validation import check_choice, check_float, check_int
from synthembed.synthesis.base import Synthesizer, register_technique

__all__ = ["Autoencoder"]


@register_technique("autoencoder")
class Autoencoder(Synthesizer):
    """Bottleneck encoder to ``D`` with a decoder and an alignment loss.

    Args:
        num_embeddings: number of ids served.
        embedding_dim: ``D``.
        side_dim: ``F``; the encoder reads side features when given, else the base row.
        bottleneck: size of the code ``h`` (default ``min(32, D)``).
        align_weight: weight of the alignment term in :meth:`aux_loss`.
        align: ``"mse"`` or ``"cosine"`` (``1 - cos``) alignment.

    Shape:
        ``(*, F)`` side features (or ``(*, D)`` rows) -> ``(*, D)``.

    Example:
        >>> ae = Autoencoder(10, 8, 5)
        >>> z = ae(torch.tensor([1, 2]), torch.randn(2, 8), torch.rand(2, 5))
        >>> z.shape, ae.aux_loss().dim()
        (torch.Size([2, 8]), 0)
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        side_dim: int | None,
        *,
        bottleneck: int | None = None,
        align_weight: float = 1.0,
        align: str = "mse",
    ) -> None:
        check_int("Autoencoder", "bottleneck", bottleneck, 1, optional=True)
        check_float("Autoencoder", "align_weight", align_weight, 0.0)
        check_choice("Autoencoder", "align", align, ("mse", "cosine"))
        super().__init__(num_embeddings, embedding_dim, side_dim)
        self.bottleneck = bottleneck if bottleneck is not None else min(32, embedding_dim)
        self.align_weight = float(align_weight)
        self.align = align
        d_in = side_dim if side_dim is not None else embedding_dim
        self.encoder = nn.Linear(d_in, self.bottleneck)
        self.head = nn.Linear(self.bottleneck, embedding_dim)
        self.decoder = nn.Linear(self.bottleneck, d_in)

    def forward(
        self,
        index: torch.Tensor,
        rows: torch.Tensor,
        side: torch.Tensor | None,
        visible: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = side.to(rows.dtype) if side is not None else self.visible_rows(rows, visible)
        h = torch.tanh(self.encoder(x))  # (*, bottleneck)
        z = self.head(h)  # (*, D)
        self.remember(x, h, z, rows)
        return z

    def aux_loss_rows(self) -> torch.Tensor | None:
        """``(*)`` reconstruction + alignment per row of the last training forward
        (None in eval mode); :meth:`aux_loss` is their mean."""
        saved = self.remembered()
        if saved is None:
            return None
        x, h, z, rows = saved
        target = rows.detach()
        recon = (self.decoder(h) - x.detach()).pow(2).mean(-1)
        if self.align == "mse":
            alignment = (z - target).pow(2).mean(-1)
        else:
            alignment = 1 - F.cosine_similarity(z, target, dim=-1)
        return recon + self.align_weight * alignment
