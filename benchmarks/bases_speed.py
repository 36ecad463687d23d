"""Speed of each base: forward + backward against torch.nn.Embedding.

V = 1,000,000 ids, D = 128, a batch of 65,536 ids drawn uniformly. Each base
is timed interleaved with ``torch.nn.Embedding`` (dense gradients, as every
base here) rep by rep, median of the reps, and reported as the ratio
``base / nn.Embedding`` (below 1 is faster). Compressed bases are sized to
about 16x fewer parameters than the full table; DHE uses a reduced MLP
(k=256 hash codes, one hidden layer of 256): the paper's k=1024 and 1800-wide
layers cost ~10x more per id.

Run:
    .venv/bin/python benchmarks/bases_speed.py --out benchmarks/results/bases_speed.md

Peak memory about 1.5 GiB (the 1M x 128 table and its dense gradient).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from synthembed.io import atomic_write
from synthembed.layers.bases import make_base
from synthembed.memory import format_bytes, memory_report

V, D, N = 1_000_000, 128, 65_536

CONFIGS: dict[str, dict[str, object]] = {
    "full (synthembed.Embedding)": {},
    "lowrank": {"rank": 8},
    "mixed": {"num_blocks": 4, "alpha": 0.5},
    "hash": {"num_buckets": V // 32, "num_hashes": 2},
    "qr": {"num_collisions": 1000},
    "dhe": {"num_hashes": 256, "hidden_dims": (256,)},
}


def step(module: nn.Module, ids: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        for p in module.parameters():
            p.grad = None
        module(ids).sum().backward()

    return run


def paired(ours: Callable[[], None], peer: Callable[[], None], reps: int) -> tuple[float, float]:
    ours()
    peer()
    a: list[float] = []
    b: list[float] = []
    for _ in range(reps):
        for fn, acc in ((peer, b), (ours, a)):
            t = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t)
    return statistics.median(a) * 1e3, statistics.median(b) * 1e3


def precision_section(reps: int) -> list[str]:
    """int8 / half tables: lookup error, memory and lookup time against float32."""
    from synthembed.layers.embedding import Embedding
    from synthembed.quantize import quantize, to_half

    torch.manual_seed(1)
    ref = Embedding(V, D)
    ids = torch.randint(0, V, (N,))
    with torch.no_grad():
        exact = ref(ids)
    base_bytes = memory_report(ref).total_bytes
    out = [
        "### Precision: int8 and half tables against float32",
        "",
        f"A {V:,} x {D} table drawn from N(0, 1) (``nn.Embedding``'s init), {N:,} uniform ids; "
        "lookup time is forward only, median of interleaved reps against the float32 table.",
        "",
        "| table | memory | vs float32 | max abs error | mean abs error | max error / documented bound | lookup ms | float32 ms | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    q = quantize(ref)
    half = to_half(Embedding(V, D), torch.float16)
    bf16 = to_half(Embedding(V, D), torch.bfloat16)
    with torch.no_grad():
        half.weight.copy_(ref.weight.half())
        bf16.weight.copy_(ref.weight.bfloat16())
        for name, layer in (("int8 row-wise", q), ("float16", half), ("bfloat16", bf16)):
            got = layer(ids).float()
            err = (got - exact).abs()
            if name.startswith("int8"):
                bound = q.error_bound()[ids].unsqueeze(1)
                ratio_txt = f"{float((err / bound).max()):.3f}"
            else:
                ratio_txt = "-"
            mem = memory_report(layer).total_bytes
            ours, theirs = paired(lambda layer=layer: layer(ids), lambda: ref(ids), reps)
            out.append(
                f"| {name} | {format_bytes(mem)} | {base_bytes / mem:.2f}x smaller | {float(err.max()):.2e} "
                f"| {float(err.mean()):.2e} | {ratio_txt} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f} |"
            )
            print(out[-1], flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=str, default=None)
    parser.add_argument("--only-precision", action="store_true", help="skip the speed table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ids = torch.randint(0, V, (N,))
    peer = nn.Embedding(V, D)
    lines = [
        "### Forward + backward speed of each base",
        "",
        f"Command: `python benchmarks/bases_speed.py --reps {args.reps} --threads {args.threads}`",
        "",
        f"V={V:,}, D={D}, {N:,} uniform ids, dense gradients, {args.threads} threads, "
        f"median of {args.reps} interleaved reps; ratio = base / torch.nn.Embedding in the same run.",
        "",
        "| base | config | memory | base ms | nn.Embedding ms | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for name, options in {} if args.only_precision else CONFIGS.items():
        kind = "full" if name.startswith("full") else name
        module = make_base(kind, V, D, **options)
        mem = memory_report(module)
        ours, theirs = paired(step(module, ids), step(peer, ids), args.reps)
        detail = ", ".join(f"{k}={v}" for k, v in options.items()) or "-"
        lines.append(
            f"| {name} | {detail} | {format_bytes(mem.total_bytes)} ({mem.compression_ratio:.0f}x smaller) "
            f"| {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f} |"
        )
        print(lines[-1], flush=True)
        del module
    lines += ["", *precision_section(args.reps)]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with atomic_write(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
