"""The auxiliary losses a synthetic layer owes to :meth:`get_loss`, one per training forward.

A recommender loop calls an item layer more than once per step (positives,
then negatives), so ``SyntheticEmbeddingLayer.get_loss()`` must cover every
training forward since it was last read, not only the last one.
:class:`PendingLosses` keeps, per such forward, what the synthesizer remembered
(:meth:`synthembed.synthesis.Synthesizer.remember`) and the forward's
position -> distinct-row map; the losses are computed only when read.
:class:`AuxLosses` is the layer's part that reads them (``get_loss``) and
the ``gan`` technique's discriminator side.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from synthembed.errors import ConfigError
from synthembed.layers.synthesis_config import SynthesisConfig
from synthembed.synthesis import Synthesizer

__all__ = ["AuxLosses", "PendingLosses"]

#: One training forward: the synthesizer's record, its position -> row map, and
#: the layer's own loss terms (the distillation loss), already weighted.
Record = tuple[Any, "torch.Tensor | None", "torch.Tensor | None"]

#: Forwards kept while ``get_loss()`` is not read and the synthesizer does not change;
#: past it the oldest are dropped (with one warning), so a loop that never reads the
#: loss holds a bounded number of autograd graphs.
LIMIT = 64


def _owes(record: Record) -> bool:
    """Does this forward carry a loss (the synthesizer's remembered tensors, alignment)?"""
    synth, _, extra = record
    return extra is not None or getattr(synth, "tensors", None) is not None


class PendingLosses:
    """The unread training forwards of a layer (dropped by ``deepcopy`` and pickling).

    Records are dropped when the synthesizer's parameters changed since they
    were made (an optimizer step ran, so a loss nobody read can train nothing
    any more), and past :data:`LIMIT` records.
    """

    __slots__ = ("records", "version", "warned", "warned_unread")

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.version: int | None = None
        self.warned = False
        self.warned_unread = False

    def add(
        self,
        record: Any,
        inverse: torch.Tensor | None,
        version: int | None,
        extra: torch.Tensor | None = None,
    ) -> None:
        """Keep one forward: the synthesizer's record, its position -> row map, the layer's loss."""
        if self.records and version != self.version:
            if not self.warned_unread and any(_owes(r) for r in self.records):
                warnings.warn(
                    "SyntheticEmbeddingLayer: the synthesizer's parameters changed (an "
                    "optimizer step) while the losses of its last training forwards were "
                    "never read: the technique's own terms (the autoencoder's reconstruction "
                    "and alignment, the GAN generator's loss, distillation) train only "
                    "through get_loss(). Add layer.get_loss() to the loss each step.",
                    stacklevel=5,  # add <- forward <- Module._call_impl <- __call__ <- user
                )
                self.warned_unread = True
            self.records.clear()  # parameters stepped since: those losses are stale
        if len(self.records) >= LIMIT:
            if not self.warned:
                warnings.warn(
                    f"SyntheticEmbeddingLayer: {LIMIT} training forwards since get_loss() was "
                    "last called; the oldest auxiliary losses are dropped. Add "
                    "layer.get_loss() to the loss each step (or train in eval mode if the "
                    "technique's loss is not wanted).",
                    stacklevel=4,
                )
                self.warned = True
            del self.records[0]
        self.records.append((record, inverse, extra))
        self.version = version

    def take(self) -> list[Record]:
        """The records since the last call, oldest first; the list starts empty again."""
        records, self.records = self.records, []
        return records

    def __deepcopy__(self, memo: dict[int, Any]) -> PendingLosses:
        return PendingLosses()

    def __reduce__(self) -> tuple[type[PendingLosses], tuple[()]]:
        return (PendingLosses, ())


class AuxLosses:
    """Mixin of the synthetic layer: the losses it owes beside the task's."""

    config: SynthesisConfig
    synthesizer: Synthesizer
    _pending: PendingLosses
    _synth_ran: bool

    def _device(self) -> torch.device:
        raise NotImplementedError

    def _dtype(self) -> torch.dtype:
        raise NotImplementedError

    def get_loss(self) -> torch.Tensor:
        """Auxiliary loss of the technique over every training forward since the last call.

        ``autoencoder``: reconstruction + alignment; ``gan``: the generator's
        loss; ``combination`` and ``manifold``: none. Plus, with
        ``distill_weight > 0``, the layer's alignment of synthesized vectors with
        trained rows (see :class:`SynthesisConfig`). Add it to the task loss.
        Each training-mode forward run with gradients enabled (and not skipping
        the synthesizer) adds its own loss, a mean over its positions; the sum
        is returned and reading it starts the sum afresh. So a step that calls
        the layer twice (BPR: positives, then negatives) gets both losses.
        Losses left unread when the synthesizer's parameters change (an
        optimizer step) are dropped.

        Returns:
            A 0-d tensor; zero when the technique has no loss or no training
            forward ran since the last call.
        """
        total: torch.Tensor | None = None
        records = self._pending.take()
        for *_, extra in records:  # the layer's own terms (alignment), one per forward
            if extra is not None:
                total = extra if total is None else total + extra
        if records and all(rec.tensors is None for rec, _, _ in records):
            records = records[-1:]  # a technique that keeps its own state: the last forward
        for record, inverse, _ in records:
            with self.synthesizer.replay(record):
                aux = self._weighted_row_loss(inverse)
                if aux is None:
                    aux = self.synthesizer.aux_loss()
            if aux is not None:
                total = aux if total is None else total + aux
        if total is None:
            return torch.zeros((), dtype=self._dtype(), device=self._device())
        return total

    def _weighted_row_loss(self, inverse: torch.Tensor | None) -> torch.Tensor | None:
        """After a deduplicated forward, the technique's per-row loss averaged over positions:
        each distinct row weighs as many positions as it stands for."""
        if inverse is None:
            return None
        rows = self.synthesizer.aux_loss_rows()  # (U,)
        if rows is None or rows.dim() != 1:
            return None
        counts = torch.bincount(inverse, minlength=rows.shape[0])
        if counts.shape != rows.shape:
            return None
        return (rows * counts.to(rows.dtype)).sum() / max(inverse.numel(), 1)

    def discriminator_loss(self) -> torch.Tensor:
        """The ``gan`` technique's discriminator loss for the last training forward.

        Returns:
            A 0-d tensor (zero in eval mode or when the synthesizer was skipped).

        Raises:
            ConfigError: the technique has no discriminator.
        """
        fn = getattr(self.synthesizer, "discriminator_loss", None)
        if fn is None:
            raise ConfigError(
                f"discriminator_loss() belongs to the 'gan' technique; this layer uses "
                f"{self.config.technique!r}. Switch with configure_synthesis(technique='gan')."
            )
        loss = fn() if self._synth_ran else None
        if loss is None:
            return torch.zeros((), dtype=self._dtype(), device=self._device())
        return loss  # type: ignore[no-any-return]

    def discriminator_parameters(self) -> list[nn.Parameter]:
        """Parameters of the ``gan`` discriminator (empty for other techniques)."""
        disc = getattr(self.synthesizer, "discriminator", None)
        return list(disc.parameters()) if isinstance(disc, nn.Module) else []
