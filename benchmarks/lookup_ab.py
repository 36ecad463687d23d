"""Lookup before and after a change, in one process, steps interleaved.

``benchmarks/lookup.py`` compares each tree against torch in separate runs; rows
that move by more than 10% between such runs are settled here: both trees'
``Embedding`` in one process at V = 1,000,000, D = 128, 65,536 ids, interleaved
round by round: the forward, the dense forward + backward, the padded (10%) dense
training step with SGD, and 100 forwards of 16 ids (the per-call Python cost), under
``no_grad`` and with autograd on.
The figure to read is the median of the per-round ratios after / before.

Run (the older tree checked out with ``git worktree``)::

    git worktree add /tmp/before 18f4de1
    .venv/bin/python benchmarks/lookup_ab.py --before /tmp/before/src
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
V, D, N = 1_000_000, 128, 65_536


def _load(src: str) -> Any:
    for name in [k for k in sys.modules if k == "synthembed" or k.startswith("synthembed.")]:
        del sys.modules[name]
    sys.path.insert(0, src)
    try:
        return importlib.import_module("synthembed.layers.embedding").Embedding
    finally:
        sys.path.remove(src)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="src/ folder of the older tree")
    parser.add_argument("--after", default=str(HERE.parent / "src"), help="src/ of the newer")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, V, (N,), generator=gen)
    ids[torch.rand(N, generator=gen) < 0.1] = 0
    grad = torch.randn(N, D, generator=gen)
    small = torch.randint(0, V, (16,), generator=gen)
    layers = {}
    for name, src in (("before", args.before), ("after", args.after)):
        layer = _load(src)(V, D, padding_idx=0)
        layers[name] = (layer, torch.optim.SGD(layer.parameters(), lr=1e-3))

    def forward(layer: Any, opt: torch.optim.Optimizer) -> None:
        with torch.no_grad():
            layer(ids)

    def fwd_bwd(layer: Any, opt: torch.optim.Optimizer) -> None:
        layer.weight.grad = None
        layer(ids).backward(grad)

    def train_step(layer: Any, opt: torch.optim.Optimizer) -> None:
        opt.zero_grad(set_to_none=True)
        layer(ids).backward(grad)
        opt.step()

    def tiny(layer: Any, opt: torch.optim.Optimizer) -> None:
        with torch.no_grad():
            for _ in range(100):
                layer(small)

    def tiny_grad(layer: Any, opt: torch.optim.Optimizer) -> None:
        for _ in range(100):
            layer(small)  # autograd on: the graph is built (no backward)

    cases = {
        "forward": forward,
        "fwd+bwd dense": fwd_bwd,
        "padding_idx dense train step (SGD)": train_step,
        "100 forwards of 16 ids": tiny,
        "100 forwards of 16 ids, autograd on": tiny_grad,
    }
    print("| case | before ms | after ms | after / before (median of paired rounds) |")
    print("|---|---:|---:|---:|")
    for case, fn in cases.items():
        times: dict[str, list[float]] = {name: [] for name in layers}
        for name in layers:
            fn(*layers[name])  # warm-up
        for _ in range(args.rounds):
            for name in layers:
                start = time.perf_counter()
                fn(*layers[name])
                times[name].append(time.perf_counter() - start)
        before, after = (statistics.median(times[n]) * 1e3 for n in ("before", "after"))
        paired = statistics.median(a / b for b, a in zip(times["before"], times["after"]))
        print(f"| {case} | {before:.2f} | {after:.2f} | {paired:.2f} |")


if __name__ == "__main__":
    main()
