"""Ensembles of synthetic layers: several techniques over the same ids, combined.

Different techniques fail differently (an autoencoder smooths, a content tower
follows side features, a manifold follows neighbours); an ensemble lets a model
use them together. The founding documents name ensembles of synthetic layers
among the uses of synthetic embeddings.

Example:
    >>> import torch, synthembed as se
    >>> feats = torch.rand(100, 5)
    >>> members = [se.SyntheticEmbeddingLayer(100, 8, technique=t, side_features=feats)
    ...            for t in ("combination", "autoencoder")]
    >>> ens = se.SyntheticEnsemble(members, combine="gate")
    >>> ens(torch.tensor([[1, 2], [3, 4]])).shape
    torch.Size([2, 2, 8])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from synthembed.errors import ConfigError
from synthembed.io import rebuild, register_savable
from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer

__all__ = ["COMBINES", "SyntheticEnsemble"]

#: How member outputs are combined: ``"mean"``, ``"concat"`` (sizes add up) or
#: ``"gate"`` (a learned softmax weight per member at each position, from the
#: members' outputs; starts as the mean).
COMBINES = ("mean", "concat", "gate")
_OWNER = "SyntheticEnsemble"


@register_savable
class SyntheticEnsemble(nn.Module):
    """Several :class:`~synthembed.SyntheticEmbeddingLayer` s over the same ids, combined.

    Args:
        members: two or more synthetic layers with the same ``num_embeddings``
            (and, for ``"mean"`` and ``"gate"``, the same ``embedding_dim``).
        combine: one of :data:`COMBINES`.

    Shape:
        Input: ``(*)`` ids -> Output: ``(*, D)``, or ``(*, sum of D)`` for ``"concat"``.

    Attributes:
        members: the layers, an :class:`torch.nn.ModuleList`.
        embedding_dim: the output size.

    Raises:
        ConfigError: fewer than two members, a member that is not a synthetic
            layer, sizes that disagree, or an unknown ``combine``; all before any
            state is built.
    """

    def __init__(self, members: Sequence[SyntheticEmbeddingLayer], combine: str = "mean") -> None:
        members = list(members)
        if len(members) < 2:
            raise ConfigError(f"{_OWNER} needs at least 2 members; got {len(members)}.")
        for i, member in enumerate(members):
            if not isinstance(member, SyntheticEmbeddingLayer):
                raise ConfigError(
                    f"{_OWNER} member {i} must be a SyntheticEmbeddingLayer; got "
                    f"{type(member).__name__}."
                )
        if combine not in COMBINES:
            raise ConfigError(f"combine must be one of {list(COMBINES)}; got {combine!r}.")
        sizes = [m.num_embeddings for m in members]
        if len(set(sizes)) > 1:
            raise ConfigError(f"{_OWNER} members must serve the same ids; num_embeddings {sizes}.")
        dims = [m.embedding_dim for m in members]
        if combine != "concat" and len(set(dims)) > 1:
            raise ConfigError(
                f"combine={combine!r} needs members of one embedding_dim; got {dims} "
                "(combine='concat' takes any sizes)."
            )
        super().__init__()
        self.members = nn.ModuleList(members)
        self.combine = combine
        self.num_embeddings = sizes[0]
        self.embedding_dim = sum(dims) if combine == "concat" else dims[0]
        self.gate: nn.Linear | None = None
        if combine == "gate":
            first = members[0].weight
            self.gate = nn.Linear(sum(dims), len(members), device=first.device, dtype=first.dtype)
            nn.init.zeros_(self.gate.weight)  # starts as the plain mean
            nn.init.zeros_(self.gate.bias)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        outs = [member(input) for member in self.members]  # each (*, D_k)
        if self.combine == "concat":
            return torch.cat(outs, dim=-1)
        stacked = torch.stack(outs, dim=-1)  # (*, D, K)
        if self.gate is None:
            return stacked.mean(-1)
        weights = torch.softmax(self.gate(torch.cat(outs, dim=-1)), dim=-1)  # (*, K)
        return (stacked * weights.unsqueeze(-2)).sum(-1)

    def get_loss(self) -> torch.Tensor:
        """The sum of the members' auxiliary losses since they were last read."""
        losses = [member.get_loss() for member in self._layers()]
        return torch.stack([loss.reshape(()) for loss in losses]).sum()

    def add_items(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Add the same new ids to every member (arguments as
        :meth:`SyntheticEmbeddingLayer.add_items`); returns the new ids."""
        layers = self._layers()
        ids = [member.add_items(*args, **kwargs) for member in layers]
        self.num_embeddings = layers[0].num_embeddings
        return ids[0]

    def _layers(self) -> list[SyntheticEmbeddingLayer]:
        return [m for m in self.members if isinstance(m, SyntheticEmbeddingLayer)]

    def get_config(self) -> dict[str, Any]:
        return {
            "combine": self.combine,
            "members": [
                {"class": type(m).__name__, "config": m.get_config()} for m in self._layers()
            ],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], **extra: Any) -> SyntheticEnsemble:
        """Rebuild from :meth:`get_config` (tensors fresh); ``extra`` goes to every member."""
        if not isinstance(config, dict) or not isinstance(config.get("members"), list):
            raise ConfigError(f"A {_OWNER} configuration needs a 'members' list; got {config!r}.")
        members = [rebuild(m["class"], m["config"], **extra) for m in config["members"]]
        return cls(members, combine=config.get("combine", "mean"))

    def extra_repr(self) -> str:
        return f"combine={self.combine!r}"
