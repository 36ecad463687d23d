"""Reproducible runs: one call seeds every random number generator synthembed uses.

Synthembed draws random numbers from three places: Python's :mod:`random`
(shuffling in data helpers), numpy (samplers, manifold learners, hashing seeds)
and torch (initialisation, dropout, noise for the GAN synthesizer).
:func:`seed_everything` seeds all three, so the same seed gives bit-identical
training on the CPU.

What this cannot do: make Python's ``hash()`` of strings reproducible across
processes (that is fixed by the ``PYTHONHASHSEED`` environment variable before
the interpreter starts; synthembed never uses ``hash()`` for anything that is
saved or that changes results), or make GPU kernels deterministic unless
``deterministic_algorithms=True``.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from synthembed._validation import check_int
from synthembed.errors import ConfigError

__all__ = ["seed_everything"]

# numpy's legacy global seed must lie in [0, 2**32 - 1].
_MAX_SEED = 2**32 - 1


def seed_everything(seed: int, *, deterministic_algorithms: bool = False) -> None:
    """Seed Python's ``random``, numpy's global generator and torch (CPU and every GPU).

    Args:
        seed: an int in ``[0, 2**32 - 1]``.
        deterministic_algorithms: also ask torch to use only deterministic
            kernels (``torch.use_deterministic_algorithms(True)``, with
            ``warn_only=True`` so an op without a deterministic version warns
            instead of failing) and set ``CUBLAS_WORKSPACE_CONFIG`` as CUDA
            requires. Off by default: on the CPU the kernels synthembed uses
            are already deterministic, and the flag is process-wide.

    Returns:
        Nothing; the generators are seeded in place.

    Raises:
        ConfigError: ``seed`` is not an int in ``[0, 2**32 - 1]``.

    Example:
        >>> import torch
        >>> seed_everything(0)
        >>> a = torch.randn(3)
        >>> seed_everything(0)
        >>> torch.equal(a, torch.randn(3))
        True
    """
    check_int("seed_everything", "seed", seed, 0, _MAX_SEED)
    if not isinstance(deterministic_algorithms, bool):
        raise ConfigError(
            "The 'deterministic_algorithms' parameter of seed_everything must be a bool. "
            f"Got {deterministic_algorithms!r} instead."
        )
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds the CPU and every CUDA device
    if deterministic_algorithms:
        # cuBLAS needs a fixed workspace for reproducible matmuls (CUDA >= 10.2).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        if hasattr(torch.backends, "cudnn"):
            torch.backends.cudnn.benchmark = False
