"""EncodedBatch: a padded batch of ragged sequences, as :meth:`Vocabulary.encode_batch` returns it.

It is a named pair ``(ids, mask)``, like the named tuples torch returns from
``topk`` or ``max``: ``ids, mask = batch`` unpacks it, ``batch[0]`` is ``ids``,
``len(batch) == 2``. The sequence lengths are ``batch.lengths``. Two batches
compare equal when their tensors are equal (tuple equality on tensors would raise).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from synthembed.errors import ShapeError

__all__ = ["EncodedBatch"]


class EncodedBatch(NamedTuple):
    """A padded batch of ragged sequences: the named pair ``(ids, mask)``.

    Attributes:
        ids: ``(B, L)`` long tensor, padded with the pad id.
        mask: ``(B, L)`` bool tensor, True on real tokens (each row's Trues come first).

    Shape:
        ``ids`` and ``mask``: ``(B, L)``; :attr:`lengths`: ``(B,)``.

    Example:
        >>> batch = EncodedBatch(torch.tensor([[2, 3], [4, 0]]), torch.tensor([[1, 1], [1, 0]]).bool())
        >>> ids, mask = batch
        >>> batch.lengths.tolist(), len(batch), batch[0] is ids, batch.batch_size
        ([2, 1], 2, True, 2)
        >>> batch == EncodedBatch(ids.clone(), mask.clone())
        True
    """

    ids: torch.Tensor
    mask: torch.Tensor

    @classmethod
    def from_lengths(cls, ids: torch.Tensor, lengths: torch.Tensor) -> EncodedBatch:
        """The batch whose row ``i`` holds ``lengths[i]`` real tokens, then padding.

        Raises:
            ShapeError: ``ids`` not ``(B, L)`` or ``lengths`` not ``(B,)``.
        """
        if ids.dim() != 2 or lengths.shape != (ids.shape[0],):
            raise ShapeError(
                f"from_lengths needs ids (B, L) and lengths (B,); got {tuple(ids.shape)} and "
                f"{tuple(lengths.shape)}."
            )
        positions = torch.arange(ids.shape[1], device=ids.device)
        return cls(ids, positions.unsqueeze(0) < lengths.to(ids.device).unsqueeze(1))  # (B, L)

    @property
    def lengths(self) -> torch.Tensor:
        """``(B,)`` long tensor: the number of real tokens in each sequence."""
        return self.mask.sum(dim=1)

    @property
    def batch_size(self) -> int:
        """``B``, the number of sequences."""
        return int(self.ids.shape[0])

    @property
    def device(self) -> torch.device:
        """The device of :attr:`ids` (and :attr:`mask`)."""
        return self.ids.device

    def to(self, *args: Any, **kwargs: Any) -> EncodedBatch:
        """Both tensors moved with ``Tensor.to(*args, **kwargs)`` (a device; ``ids`` keep
        their integer dtype and ``mask`` stays bool: a dtype argument is refused)."""
        if any(isinstance(a, torch.dtype) for a in args) or "dtype" in kwargs:
            raise ShapeError(
                "EncodedBatch.to moves the batch to a device; ids stay long and mask bool. "
                "Convert batch.ids or batch.mask yourself for another dtype."
            )
        return EncodedBatch(self.ids.to(*args, **kwargs), self.mask.to(*args, **kwargs))

    def pin_memory(self) -> EncodedBatch:
        """Both tensors in pinned memory (what ``DataLoader(pin_memory=True)`` calls)."""
        return EncodedBatch(self.ids.pin_memory(), self.mask.pin_memory())

    def __eq__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, EncodedBatch):
            # False, not NotImplemented: Python would then try tuple equality, which asks
            # a tensor for its truth value and raises.
            return False
        return all(
            a.shape == b.shape and a.dtype == b.dtype and torch.equal(a.cpu(), b.cpu())
            for a, b in ((self.ids, other.ids), (self.mask, other.mask))
        )

    def __ne__(self, other: object) -> bool:  # type: ignore[override]
        return not self.__eq__(other)

    def __hash__(self) -> int:  # tensors are mutable and compared by value: no hash
        raise TypeError("unhashable type: 'EncodedBatch' (it holds tensors)")

    def __repr__(self) -> str:
        device = "" if self.ids.device.type == "cpu" else f", device='{self.ids.device}'"
        return (
            f"EncodedBatch(shape={tuple(self.ids.shape)}, lengths={self.lengths.tolist()}{device})"
        )
