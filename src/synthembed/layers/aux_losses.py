"""The auxiliary losses a synthetic layer owes to :meth:`get_loss`, one per training forward.

A recommender loop calls an item layer more than once per step (positives,
then negatives), so ``SyntheticEmbeddingLayer.get_loss()`` must cover every
training forward since it was last read, not only the last one.
:class:`PendingLosses` keeps, per such forward, what the synthesizer remembered
(:meth:`synthembed.synthesis.Synthesizer.remember`) and the forward's
position -> distinct-row map; the losses are computed only when read.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

__all__ = ["PendingLosses"]

#: Forwards kept while ``get_loss()`` is not read and the synthesizer does not change;
#: past it the oldest are dropped (with one warning), so a loop that never reads the
#: loss holds a bounded number of autograd graphs.
LIMIT = 64


class PendingLosses:
    """The unread training forwards of a layer (dropped by ``deepcopy`` and pickling).

    Records are dropped when the synthesizer's parameters changed since they
    were made (an optimizer step ran, so a loss nobody read can train nothing
    any more), and past :data:`LIMIT` records.
    """

    __slots__ = ("records", "version", "warned")

    def __init__(self) -> None:
        self.records: list[tuple[Any, torch.Tensor | None]] = []
        self.version: int | None = None
        self.warned = False

    def add(self, record: Any, inverse: torch.Tensor | None, version: int | None) -> None:
        """Keep one forward: the synthesizer's record and its position -> row map."""
        if self.records and version != self.version:
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
        self.records.append((record, inverse))
        self.version = version

    def take(self) -> list[tuple[Any, torch.Tensor | None]]:
        """The records since the last call, oldest first; the list starts empty again."""
        records, self.records = self.records, []
        return records

    def __deepcopy__(self, memo: dict[int, Any]) -> PendingLosses:
        return PendingLosses()

    def __reduce__(self) -> tuple[type[PendingLosses], tuple[()]]:
        return (PendingLosses, ())
