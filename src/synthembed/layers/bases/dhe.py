"""The ``dhe`` base: deep hash embedding, dense hash codes of the id through an MLP, no table.

Kang, Cheng, Yao, Chen, Hong and Chi, "Learning to Embed Categorical Features
without Embedding Tables for Recommendation", KDD 2021.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from synthembed._config import Option
from synthembed._validation import check_choice, check_int
from synthembed.errors import ConfigError
from synthembed.io import register_savable
from synthembed.layers.bases._common import HEAD_OPTIONS, TAIL_OPTIONS, CompressedBase
from synthembed.layers.bases.hashing import salted_buckets, salts
from synthembed.layers.bases.registry import register_base

__all__ = ["DHEDistribution", "DHEEmbedding"]

DHEDistribution = Literal["uniform", "gaussian"]


@register_savable
@register_base("dhe")
class DHEEmbedding(CompressedBase):
    r"""Deep hash embedding: dense hash codes of the id through an MLP, no table.

    Each id is encoded by k stable hashes into ``[0, hash_range)``, normalised to
    ``[-1, 1]`` (``"uniform"``) or to a standard normal through Box-Muller
    (``"gaussian"``), and decoded to D by an MLP (Kang et al., KDD 2021). All
    parameters are in the MLP; memory does not depend on the number of ids.

    Departures from the paper: Mish activations as in the paper but no batch
    normalisation (it couples a lookup to its batch); hash codes are computed
    in chunks of rows to bound memory.

    Args:
        num_embeddings: nominal number of ids (any id in ``[0, 2**63 - 1]`` works).
        embedding_dim: D, size of each output vector.
        padding_idx: id whose output is zero.
        num_hashes: k, length of the dense hash code (paper: 1024).
        hidden_dims: widths of the MLP's hidden layers.
        hash_range: m, each hash takes values in ``[0, m)`` (paper: 10**6).
        distribution: ``"uniform"`` or ``"gaussian"`` (k must be even).
        seed: selects the hash functions.
        check_finite: raise :class:`~synthembed.errors.NonFiniteError` at the first
            NaN or infinity in an output, naming the layer and the ids.
        fused_optimizer: not supported (a :class:`~synthembed.errors.ConfigError`):
            this base has no table; its parameters are the MLP's.

    Shape:
        ``(*)`` long ids -> ``(*, embedding_dim)``.

    Example:
        >>> emb = DHEEmbedding(10**9, 8, num_hashes=32, hidden_dims=(16,))
        >>> emb(torch.tensor([5, 10**12])).shape
        torch.Size([2, 8])
    """

    accepts_any_id: ClassVar[bool] = True
    config_options = (
        *HEAD_OPTIONS,
        Option("num_hashes"),
        Option("hidden_dims", get=lambda m: list(m.hidden_dims)),
        Option("hash_range"),
        Option("distribution"),
        Option("seed"),
        *TAIL_OPTIONS,
    )
    salts: torch.Tensor
    _CHUNK_ELEMENTS = 1 << 22  # int64 hash temporaries per chunk (32 MiB)

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        *,
        num_hashes: int = 1024,
        hidden_dims: Sequence[int] = (512, 256),
        hash_range: int = 1_000_000,
        distribution: DHEDistribution = "uniform",
        seed: int = 0,
        check_finite: bool = False,
        device: Any = None,
        dtype: torch.dtype | None = None,
        fused_optimizer: Any = None,
    ) -> None:
        owner = type(self).__name__
        if fused_optimizer is not None:
            raise ConfigError(
                f"{owner} (base 'dhe') has no table to fuse an optimizer into: its "
                "parameters are an MLP's. Drop fused_optimizer= and train it with a torch.optim "
                "optimizer, or use a table base ('full', 'hash', 'qr', 'lowrank', 'mixed')."
            )
        padding_idx = self._check_common(num_embeddings, embedding_dim, padding_idx)
        check_int(owner, "num_hashes", num_hashes, 1)
        check_int(owner, "hash_range", hash_range, 2)
        check_choice(owner, "distribution", distribution, ("uniform", "gaussian"))
        if distribution == "gaussian" and num_hashes % 2:
            raise ConfigError(
                f"distribution='gaussian' pairs hash codes (Box-Muller), so num_hashes must be "
                f"even. Got {num_hashes} instead."
            )
        hidden = list(hidden_dims)
        for width in hidden:
            check_int(owner, "hidden_dims[i]", width, 1)
        check_int(owner, "seed", seed, 0)
        super().__init__()
        self._setup(num_embeddings, embedding_dim, padding_idx, check_finite)
        self.num_hashes = int(num_hashes)
        self.hidden_dims = hidden
        self.hash_range = int(hash_range)
        self.distribution: DHEDistribution = distribution
        self.seed = int(seed)
        codes = torch.tensor(salts(self.seed, self.num_hashes), dtype=torch.long, device=device)
        self.register_buffer("salts", codes, persistent=False)
        layers: list[nn.Module] = []
        width = self.num_hashes
        for h in hidden:
            layers += [nn.Linear(width, h, device=device, dtype=dtype), nn.Mish()]
            width = h
        layers.append(nn.Linear(width, embedding_dim, device=device, dtype=dtype))
        self.mlp = nn.Sequential(*layers)

    def reset_parameters(self) -> None:
        """Re-initialise the MLP (PyTorch's default Linear initialisation)."""
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                m.reset_parameters()

    def encode(self, ids: torch.Tensor) -> torch.Tensor:
        """The dense hash code of each id: ``(N,)`` long -> ``(N, k)`` float32."""
        n, k, m = ids.numel(), self.num_hashes, self.hash_range
        out = torch.empty((n, k), dtype=torch.float32, device=ids.device)
        step = max(1, self._CHUNK_ELEMENTS // k)
        for start in range(0, n, step):
            chunk = ids[start : start + step].unsqueeze(1)  # (c, 1)
            h = salted_buckets(chunk, self.salts, m).to(torch.float64)  # (c, k)
            if self.distribution == "uniform":
                out[start : start + step] = (h * (2.0 / (m - 1)) - 1.0).to(torch.float32)
            else:  # Box-Muller on pairs of codes, both uniform in (0, 1]
                u = (h + 1.0) / m
                u1, u2 = u[:, 0::2], u[:, 1::2]
                r = torch.sqrt(-2.0 * torch.log(u1))
                z = torch.stack(
                    (r * torch.cos(2 * math.pi * u2), r * torch.sin(2 * math.pi * u2)), dim=-1
                )
                out[start : start + step] = z.reshape(-1, k).to(torch.float32)
        return out

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Encode ids and decode them with the MLP.

        Raises:
            InvalidIndexError: negative ids.
            ShapeError: non-integer ids.
            NonFiniteError: NaN/inf in the output, with ``check_finite=True``.
        """
        ids = self._prepare(input)
        first = self.mlp[0]
        assert isinstance(first, nn.Linear)
        codes = self.encode(ids.reshape(-1)).to(first.weight.dtype)  # (N, k)
        out = self.mlp(codes).reshape(*ids.shape, self.embedding_dim)
        return self._finish(out, ids)

    def grow(self, n: int) -> torch.Tensor:
        """Count ``n`` more ids and return them; nothing to allocate (no table)."""
        check_int(type(self).__name__ + ".grow", "n", n, 0)
        start, self.num_embeddings = self.num_embeddings, self.num_embeddings + n
        return torch.arange(start, self.num_embeddings, device=self.salts.device)
