"""SyntheticEmbeddingLayer before and after a change, in one process, steps interleaved.

Separate runs of ``benchmarks/synthesis.py`` on this shared 2-core machine moved
``torch.nn.Embedding``'s own step by 40% between runs, which swamps a 10% question.
This script loads two source trees of synthembed into one process (the older one
first, under its own module objects), builds the same layers from each, and times
``out = layer(ids); out.backward(grad)`` for every variant of both trees and for
``torch.nn.Embedding``, interleaved round by round. The last column is the median
of the per-round ratios new / before, the figure least moved by load.

Run (issue 12's check, the older tree checked out with ``git worktree``)::

    git worktree add /tmp/before 18f4de1
    .venv/bin/python benchmarks/synthesis_ab.py --before /tmp/before/src --rounds 11
    .venv/bin/python benchmarks/synthesis_ab.py --before /tmp/before/src --kernels reference
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
V, D, N, F = 100_000, 128, 65_536, 16


def _load(src: str) -> tuple[Any, Any]:
    """SyntheticEmbeddingLayer and Embedding from the package under ``src``."""
    for name in [k for k in sys.modules if k == "synthembed" or k.startswith("synthembed.")]:
        del sys.modules[name]
    sys.path.insert(0, src)
    try:
        layer = importlib.import_module("synthembed.layers.synthetic_embedding")
        table = importlib.import_module("synthembed.layers.embedding")
    finally:
        sys.path.remove(src)
    return layer.SyntheticEmbeddingLayer, table.Embedding


def _variants(layer_cls: Any, table_cls: Any, side: torch.Tensor) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    with warnings.catch_warnings():  # both trees' spellings: keywords everywhere
        warnings.simplefilter("ignore")
        return {
            "synthembed.Embedding": table_cls(V, D),
            "rate 0": layer_cls(V, D, synthesis_rate=0.0),
            "combination": layer_cls(V, D),
            "combination + side features": layer_cls(V, D, side_features=side),
            "combination, rank=16": layer_cls(V, D, rank=16),
            "autoencoder": layer_cls(V, D, technique="autoencoder", side_features=side),
            "gan": layer_cls(V, D, technique="gan", side_features=side),
        }


def _step(layer: nn.Module, ids: torch.Tensor, grad: torch.Tensor) -> float:
    for p in layer.parameters():
        p.grad = None
    start = time.perf_counter()
    layer(ids).backward(grad)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="src/ folder of the older tree")
    parser.add_argument("--after", default=str(HERE.parent / "src"), help="src/ of the newer")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--kernels", choices=("fast", "reference"), default="fast")
    args = parser.parse_args()
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(0)
    side = torch.rand(V, F, generator=gen)
    before = _variants(*_load(args.before), side)
    after = _variants(*_load(args.after), side)
    kernels = importlib.import_module("synthembed._kernels")  # the newer tree's
    kernels.set_kernels(args.kernels)
    sys.path.insert(0, str(HERE))
    zipf_ids = importlib.import_module("synthesis").zipf_ids
    torch.manual_seed(0)
    peer = nn.Embedding(V, D)
    streams = {
        "uniform": torch.randint(0, V, (N,), generator=gen),
        "Zipf(1.1)": zipf_ids(V, N, 1.1, seed=1),
    }
    grad = torch.randn(N, D, generator=gen)
    for label, ids in streams.items():
        t_before: dict[str, list[float]] = {k: [] for k in before}
        t_after: dict[str, list[float]] = {k: [] for k in before}
        t_peer: list[float] = []
        for name in before:  # warm-up
            _step(before[name], ids, grad)
            _step(after[name], ids, grad)
        _step(peer, ids, grad)
        for _ in range(args.rounds):
            for name in before:
                t_peer.append(_step(peer, ids, grad))
                t_before[name].append(_step(before[name], ids, grad))
                t_after[name].append(_step(after[name], ids, grad))
        peer_ms = statistics.median(t_peer) * 1e3
        print(
            f"\n{label} ids: after on the {args.kernels} kernels; torch.nn.Embedding "
            f"{peer_ms:.1f} ms; median of {args.rounds} rounds; load average "
            f"{os.getloadavg()[0]:.1f}\n"
        )
        print(
            "| variant | before ms | before / torch | after ms | after / torch | after / before |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for name in before:
            b = statistics.median(t_before[name]) * 1e3
            a = statistics.median(t_after[name]) * 1e3
            paired = statistics.median(y / x for x, y in zip(t_before[name], t_after[name]))
            print(
                f"| {name} | {b:.1f} | {b / peer_ms:.2f}x | {a:.1f} | {a / peer_ms:.2f}x "
                f"| {paired:.2f} |"
            )


if __name__ == "__main__":
    main()
