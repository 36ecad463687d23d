"""GAN synthesis: a conditional generator of embedding rows against a discriminator.

After Goodfellow et al. (NeurIPS 2014), conditioned as in Mirza & Osindero
(2014), and in the spirit of GAN-based cold-start item embeddings (e.g. GAR,
Chen et al., SIGIR 2022)::

    generator(cond, noise)  ──► fake row (D)
    discriminator(row, cond) ──► logit "this row is a learned row of this item"

``cond`` is the id's side features when the layer has them, else its visible
base row. Real rows are the learned base rows of the ids in the training batch
(detached). Noise is drawn in training mode only; in eval mode the noise is
its mean (zero), so inference is deterministic.

Losses (non-saturating GAN):

- generator (:meth:`Gan.aux_loss`, the layer's ``get_loss()``):
  ``softplus(-D(fake)) + align_weight * mse(fake, real)``. The alignment term
  (a departure from a pure GAN, on by default) ties each generated row to its
  own item's learned row; an unconditional adversarial loss alone only makes
  rows *plausible*, and short runs are unstable without it.
- discriminator (:meth:`Gan.discriminator_loss`, the layer's
  ``discriminator_loss()``): ``softplus(-D(real)) + softplus(D(fake.detach()))``.

The generator loss reads the discriminator through *detached* parameters and
the discriminator loss reads detached fakes, so the two losses touch disjoint
parameters: one optimizer over everything works, and so do two.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from synthembed._validation import check_float, check_int
from synthembed.errors import ConfigError
from synthembed.synthesis.base import Synthesizer, register_technique

__all__ = ["Gan"]


@register_technique("gan")
class Gan(Synthesizer):
    """Conditional generator ``(cond, noise) -> (D)`` with a discriminator on ``(row, cond)``.

    Args:
        num_embeddings: number of ids served.
        embedding_dim: ``D``.
        side_dim: ``F``; the condition is the side features when given, else the base row.
        noise_dim: size of the noise vector.
        hidden_dims: widths of the hidden layers of both networks (``hidden``, one int, is
            the deprecated name).
        align_weight: weight of the alignment term in the generator loss.

    Shape:
        ``(*, F)`` side features (or ``(*, D)`` rows) -> ``(*, D)``.

    Example:
        >>> gan = Gan(10, 8, 5)
        >>> fake = gan(torch.tensor([1, 2]), torch.randn(2, 8), torch.rand(2, 5))
        >>> fake.shape, gan.discriminator_loss().dim()
        (torch.Size([2, 8]), 0)
    """

    per_id = False  # noise is drawn per batch position in training
    renamed_options: ClassVar[dict[str, str]] = {"hidden": "hidden_dims"}

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        side_dim: int | None,
        *,
        noise_dim: int = 16,
        hidden_dims: Sequence[int] | int = (64,),
        align_weight: float = 1.0,
    ) -> None:
        check_int("Gan", "noise_dim", noise_dim, 0)
        hidden = (hidden_dims,) if isinstance(hidden_dims, int) else tuple(hidden_dims)
        if not hidden:
            raise ConfigError(
                "The 'hidden_dims' parameter of Gan needs at least one width; got ()."
            )
        for width in hidden:
            check_int("Gan", "hidden_dims", width, 1)
        check_float("Gan", "align_weight", align_weight, 0.0)
        super().__init__(num_embeddings, embedding_dim, side_dim)
        self.noise_dim = noise_dim
        self.hidden_dims = hidden
        self.align_weight = float(align_weight)
        cond_dim = side_dim if side_dim is not None else embedding_dim
        self.generator = _mlp(cond_dim + noise_dim, hidden, embedding_dim)
        self.discriminator = _mlp(embedding_dim + cond_dim, hidden, 1)

    def forward(
        self,
        index: torch.Tensor,
        rows: torch.Tensor,
        side: torch.Tensor | None,
        visible: torch.Tensor | None = None,
    ) -> torch.Tensor:
        cond = side.to(rows.dtype) if side is not None else self.visible_rows(rows, visible)
        shape = (*cond.shape[:-1], self.noise_dim)
        if self.training:
            noise = torch.randn(shape, dtype=cond.dtype, device=cond.device)
        else:
            noise = cond.new_zeros(shape)  # the noise's mean: deterministic inference
        fake = self.generator(torch.cat([cond, noise], dim=-1))  # (*, D)
        self.remember(fake, rows, cond)
        return fake

    def _critic(self, row: torch.Tensor, cond: torch.Tensor, *, frozen: bool) -> torch.Tensor:
        x = torch.cat([row, cond.detach()], dim=-1)
        if not frozen:
            return self.discriminator(x).squeeze(-1)
        params = {k: v.detach() for k, v in self.discriminator.named_parameters()}
        return functional_call(self.discriminator, params, (x,)).squeeze(-1)

    def aux_loss(self) -> torch.Tensor | None:
        """Generator loss of the last training forward (None in eval mode)."""
        saved = self.remembered()
        if saved is None:
            return None
        fake, rows, cond = saved
        adversarial = F.softplus(-self._critic(fake, cond, frozen=True)).mean()
        return adversarial + self.align_weight * F.mse_loss(fake, rows.detach())

    def discriminator_loss(self) -> torch.Tensor | None:
        """Discriminator loss of the last training forward (None in eval mode)."""
        saved = self.remembered()
        if saved is None:
            return None
        fake, rows, cond = saved
        real_logit = self._critic(rows.detach(), cond, frozen=False)
        fake_logit = self._critic(fake.detach(), cond, frozen=False)
        return F.softplus(-real_logit).mean() + F.softplus(fake_logit).mean()


def _mlp(d_in: int, hidden: tuple[int, ...], d_out: int) -> nn.Sequential:
    """``Linear -> LeakyReLU(0.2)`` per hidden width, then ``Linear`` to ``d_out``."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(d_in, width), nn.LeakyReLU(0.2)]
        d_in = width
    return nn.Sequential(*layers, nn.Linear(d_in, d_out))
