"""Forward + backward time of SyntheticEmbeddingLayer per technique against torch.nn.Embedding.

Setting (issue 3): a table of V = 100,000 ids, D = 128, a batch of 65,536 ids
drawn uniformly, 2 threads, float32, CPU. One timed step is
``out = layer(ids); out.backward(grad)`` with gradients reset to None before
each step (both peers then allocate their dense table gradient the same way).
Auxiliary losses (``get_loss()``) are not included. Variants are interleaved
round by round so that load on the shared machine hits them alike; each
figure is the median of the rounds, and ratios are against
``torch.nn.Embedding`` measured in the same run.

Goals: ``combination`` <= 1.5x, rate 0 <= 1.05x.

Run: ``.venv/bin/python benchmarks/synthesis.py`` (``--rounds N``, ``--quick``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from synthembed.io import atomic_write
from synthembed.layers.embedding import Embedding
from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer

RESULTS = Path(__file__).resolve().parent / "results" / "synthesis.md"
GOALS = {"rate 0 (synthesizer skipped)": 1.05, "combination (default)": 1.5}


def build_variants(v: int, d: int, side_dim: int) -> dict[str, nn.Module]:
    g = torch.Generator().manual_seed(0)
    side = torch.rand(v, side_dim, generator=g)
    torch.manual_seed(0)
    variants: dict[str, nn.Module] = {
        "torch.nn.Embedding": nn.Embedding(v, d),
        "synthembed.Embedding (the base alone)": Embedding(v, d),
        "rate 0 (synthesizer skipped)": SyntheticEmbeddingLayer(v, d, 0.0),
        "combination (default)": SyntheticEmbeddingLayer(v, d),
        f"combination + side features (F={side_dim})": SyntheticEmbeddingLayer(
            v, d, side_features=side
        ),
        "combination, rank=16": SyntheticEmbeddingLayer(v, d, rank=16),
        f"autoencoder (F={side_dim})": SyntheticEmbeddingLayer(
            v, d, technique="autoencoder", side_features=side
        ),
        f"gan (F={side_dim})": SyntheticEmbeddingLayer(v, d, technique="gan", side_features=side),
    }
    t0 = time.perf_counter()
    variants[f"manifold, spectral (F={side_dim})"] = SyntheticEmbeddingLayer(
        v, d, technique="manifold", side_features=side
    )
    print(f"manifold coordinates fitted in {time.perf_counter() - t0:.1f} s (not part of the step)")
    return variants


def step(layer: nn.Module, ids: torch.Tensor, grad: torch.Tensor) -> float:
    for p in layer.parameters():
        p.grad = None
    start = time.perf_counter()
    layer(ids).backward(grad)
    return time.perf_counter() - start


def run(v: int, d: int, n: int, rounds: int, side_dim: int) -> tuple[dict[str, float], str]:
    torch.set_num_threads(2)
    variants = build_variants(v, d, side_dim)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, v, (n,), generator=g)
    grad = torch.randn(n, d, generator=g)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for layer in variants.values():  # warm-up
        step(layer, ids, grad)
    for _ in range(rounds):
        for name, layer in variants.items():
            times[name].append(step(layer, ids, grad))
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    base = medians["torch.nn.Embedding"]
    ours = medians["synthembed.Embedding (the base alone)"]
    lines = [
        "## SyntheticEmbeddingLayer: forward + backward per technique",
        "",
        f"V = {v:,}, D = {d}, {n:,} ids per step, float32, 2 threads, CPU "
        f"({platform.processor() or platform.machine()}), torch {torch.__version__}; "
        f"median of {rounds} interleaved rounds; ratio = time / torch.nn.Embedding's time in the same run. "
        "Default synthesis rate 0.1; side features (where named) are random, "
        f"F = {side_dim}. The shared machine was loaded by other jobs while this ran.",
        "",
        "| variant | median ms | ratio vs torch.nn.Embedding | ratio vs synthembed.Embedding | goal (vs torch) |",
        "|---|---:|---:|---:|---|",
    ]
    for name, t in medians.items():
        goal = GOALS.get(name)
        verdict = "" if goal is None else f"<= {goal}x: {'met' if t / base <= goal else 'missed'}"
        lines.append(f"| {name} | {t * 1e3:.1f} | {t / base:.2f}x | {t / ours:.2f}x | {verdict} |")
    lines += [
        "",
        "Reproduce: `.venv/bin/python benchmarks/synthesis.py`",
        "",
    ]
    return medians, "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="small sizes, no results file")
    args = parser.parse_args(argv)
    if args.quick:
        _, text = run(5_000, 32, 4_096, 3, 8)
        print(text)
        return
    _, text = run(100_000, 128, 65_536, args.rounds, 16)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(RESULTS, "w") as handle:
        handle.write(text)


if __name__ == "__main__":
    main()
