"""One lookup row before and after a change, in one process, steps interleaved.

``benchmarks/lookup.py`` compares each tree against torch in separate runs; a row
that moves by more than 10% between such runs is settled here: both trees'
``Embedding`` in one process, the padded dense training step (forward, backward,
SGD) at V = 1,000,000, D = 128, 65,536 ids with 10% padding, interleaved round by
round. The figure to read is the median of the per-round ratios after / before.

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
    steps = {}
    for name, src in (("before", args.before), ("after", args.after)):
        layer = _load(src)(V, D, padding_idx=0)
        steps[name] = (layer, torch.optim.SGD(layer.parameters(), lr=1e-3))

    def step(layer: Any, opt: torch.optim.Optimizer) -> float:
        opt.zero_grad(set_to_none=True)
        start = time.perf_counter()
        layer(ids).backward(grad)
        opt.step()
        return time.perf_counter() - start

    for name in steps:
        step(*steps[name])
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name in steps:
            times[name].append(step(*steps[name]))
    before, after = (statistics.median(times[n]) * 1e3 for n in ("before", "after"))
    paired = statistics.median(a / b for b, a in zip(times["before"], times["after"]))
    print(
        f"padding_idx dense train step (SGD): before {before:.1f} ms, after {after:.1f} ms, "
        f"after / before {paired:.2f} (median of {args.rounds} paired rounds)"
    )


if __name__ == "__main__":
    main()
