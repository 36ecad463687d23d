"""Run functions on two ``gloo`` processes and collect what rank 0 returns (distributed tests).

Each run spawns ``world`` fresh processes (one torch thread each), joins them
through a file store in a temporary folder (no port to pick: gloo itself opens
free ports), calls ``fn(rank, world, *args)`` on every rank and returns the JSON
that rank 0's call returned.
"""

from __future__ import annotations

import faulthandler
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _main(
    rank: int, world: int, folder: str, fn: Callable[..., Any], args: tuple[Any, ...]
) -> None:
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    faulthandler.dump_traceback_later(240, exit=True)  # a hung collective fails, with stacks
    store = Path(folder) / "store"
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        result = fn(rank, world, *args)
        if rank == 0:
            (Path(folder) / "result.json").write_text(json.dumps(result))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def spawn(fn: Callable[..., Any], folder: Path, *args: Any, world: int = 2) -> Any:
    """``fn(rank, world, *args)`` on ``world`` processes; rank 0's JSON-able result."""
    folder.mkdir(parents=True, exist_ok=True)
    mp.spawn(_main, args=(world, str(folder), fn, args), nprocs=world, join=True)
    return json.loads((folder / "result.json").read_text())


def gathered_max_diff(tensors: list[torch.Tensor]) -> float:
    """Largest difference between this rank's tensors and rank 0's (a collective)."""
    flat = (
        torch.cat([t.detach().reshape(-1).double() for t in tensors]) if tensors else torch.zeros(1)
    )
    mine = flat.clone()
    dist.broadcast(flat, src=0)
    diff = torch.tensor([float((mine - flat).abs().max()) if mine.numel() else 0.0])
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    return float(diff)


def state_tensors(module: torch.nn.Module) -> list[torch.Tensor]:
    """Every parameter and buffer of ``module``, in a fixed order."""
    return [t for _, t in sorted(module.state_dict().items()) if isinstance(t, torch.Tensor)]
