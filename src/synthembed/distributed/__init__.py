"""Beyond one process: data-parallel training (DDP) and TorchRec-sharded tables.

- :mod:`.ddp` (needs only torch): :func:`data_parallel`, :func:`sync_state` and
  :func:`add_items` keep a synthetic layer's per-id state (counts, cold flags,
  added items) equal on every rank under ``DistributedDataParallel``.
- :mod:`.torchrec` (the ``distributed`` extra: ``torchrec`` and ``fbgemm-gpu-cpu``,
  imported only when used): :func:`to_torchrec` / :func:`from_torchrec` convert
  tables to TorchRec collections and back, and :class:`TorchRecBase` serves a
  synthetic layer's base from a collection that ``DistributedModelParallel`` shards
  while the synthesizer stays replicated; :func:`shard` wraps a model in
  ``DistributedModelParallel`` and :func:`replicated_parameters` lists what your
  optimizer trains.

Guide: ``docs/guides/distributed.md``.
"""

from __future__ import annotations

from typing import Any

from synthembed.distributed.ddp import add_items, data_parallel, sync_state

__all__ = [
    "TorchRecBase",
    "add_items",
    "data_parallel",
    "from_torchrec",
    "gather_weights",
    "replicated_parameters",
    "shard",
    "sync_state",
    "to_torchrec",
]

_TORCHREC_NAMES = (
    "TorchRecBase",
    "from_torchrec",
    "gather_weights",
    "replicated_parameters",
    "shard",
    "to_torchrec",
)


def __getattr__(name: str) -> Any:
    # TorchRec takes seconds to import and is an optional extra: load it on first use only.
    if name in _TORCHREC_NAMES:
        from synthembed.distributed import torchrec as interop

        return getattr(interop, name)
    raise AttributeError(f"module 'synthembed.distributed' has no attribute {name!r}")
