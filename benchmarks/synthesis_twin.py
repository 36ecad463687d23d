"""The synthetic layer against its own plain-PyTorch twin (issue 13, "Speed").

The twin is the model a user would write by hand: ``torch.nn.Embedding`` plus
the *same* synthesizer module (the layer's own, so the MLP is identical, weights
included) run on every position, blended with ``torch.lerp`` at the same rate.
The layer differs in how it runs that model: one synthesis per distinct id of a
batch, copied back to every position, and the base table on huge pages.

Setting: V = 100,000 ids, D = 128, 16 side features per id, 65,536 ids a batch,
uniform and Zipf(1.1); one timed step is ``out = model(ids); out.backward(grad)``
with gradients reset to None before each; 2 threads; variants interleaved round
by round, medians of the rounds. Goals: layer / twin <= 0.7 on uniform ids and
<= 0.3 on the Zipf stream.

    .venv/bin/python benchmarks/synthesis_twin.py [--rounds 11] [--technique T] [--write]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer

RESULTS = Path(__file__).resolve().parent / "results" / "synthesis_twin.md"
GOALS = {"uniform": 0.7, "Zipf(1.1)": 0.3}


class Twin(nn.Module):
    """``nn.Embedding`` + the layer's synthesizer on every position + ``lerp``."""

    def __init__(self, layer: SyntheticEmbeddingLayer) -> None:
        super().__init__()
        self.table = nn.Embedding(layer.num_embeddings, layer.embedding_dim)
        with torch.no_grad():
            self.table.weight.copy_(layer.weight)
        self.synthesizer = layer.synthesizer
        self.register_buffer("side", layer.side_features)
        self.rate = float(layer.config.synthesis_rate)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = self.table(ids)  # (B, D)
        side = None if self.side is None else self.side[ids]  # (B, F)
        synth = self.synthesizer(ids, rows, side, None)  # (B, D)
        return torch.lerp(rows, synth, self.rate)


def zipf_ids(v: int, n: int, a: float, gen: torch.Generator) -> torch.Tensor:
    ranks = torch.arange(1, v + 1, dtype=torch.float64)
    probs = ranks.pow(-a)
    return torch.multinomial(probs / probs.sum(), n, replacement=True, generator=gen)


def step(model: nn.Module, ids: torch.Tensor, grad: torch.Tensor) -> float:
    for p in model.parameters():
        p.grad = None
    start = time.perf_counter()
    out = model(ids)
    out.backward(grad)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--technique", default=None, help="default: the layer's default")
    parser.add_argument("--quick", action="store_true", help="V=10,000, 8,192 ids, 3 rounds")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    v, n, d, f = (10_000, 8_192, 128, 16) if args.quick else (100_000, 65_536, 128, 16)
    rounds = 3 if args.quick else args.rounds
    gen = torch.Generator().manual_seed(0)
    side = torch.rand(v, f, generator=gen)
    torch.manual_seed(0)
    options = {} if args.technique is None else {"technique": args.technique}
    layer = SyntheticEmbeddingLayer(v, d, side_features=side, **options).train()
    twin = Twin(layer).train()
    technique = layer.config.technique
    lines = []
    for name, ids in (
        ("uniform", torch.randint(v, (n,), generator=gen)),
        ("Zipf(1.1)", zipf_ids(v, n, 1.1, gen)),
    ):
        grad = torch.randn(n, d, generator=gen)
        for model in (layer, twin, layer, twin):  # warm-up
            step(model, ids, grad)
        times: dict[str, list[float]] = {"layer": [], "twin": []}
        ratios = []
        for _ in range(rounds):
            t_layer = step(layer, ids, grad)
            t_twin = step(twin, ids, grad)
            times["layer"].append(t_layer)
            times["twin"].append(t_twin)
            ratios.append(t_layer / t_twin)
        layer.get_loss()  # drop the pending auxiliary losses
        ratio = statistics.median(ratios)
        goal = GOALS[name]
        lines.append(
            f"| {name} | {int(ids.unique().numel()):,} | "
            f"{1e3 * statistics.median(times['twin']):.1f} | "
            f"{1e3 * statistics.median(times['layer']):.1f} | **{ratio:.2f}x** | "
            f"<= {goal} {'met' if ratio <= goal else 'missed'} |"
        )
        print(lines[-1], flush=True)
    load = os.getloadavg()[0]
    text = "\n".join(
        [
            f"## The synthetic layer against its plain-PyTorch twin ({technique!r}, the default)",
            "",
            f"`.venv/bin/python benchmarks/synthesis_twin.py --rounds {rounds} --write`: "
            f"V={v:,}, D={d}, {f} side features, {n:,} ids a batch, forward + backward, 2 threads, "
            f"median of {rounds} interleaved rounds; load average {load:.1f} at the end. The twin "
            "is `nn.Embedding` + the layer's own synthesizer on every position + `torch.lerp` "
            "(the same MLP and weights); the ratio is the median of per-round layer / twin.",
            "",
            "| ids | distinct | twin ms | layer ms | layer / twin | goal |",
            "|---|---:|---:|---:|---:|---|",
            *lines,
            "",
        ]
    )
    print(text)
    if args.write:
        RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
