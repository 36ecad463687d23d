"""Scale: a synthetic click log with a planted model, 10M and 100M ids, one subprocess per base.

The generator (seeded, streamed: nothing of size V is stored):

- an id is drawn from a Zipf law over ``V`` ids (exponent 1.05, continuous
  inverse-CDF), its rank scrambled into a raw id by ``rank * 2654435761 mod V``
  (a bijection), so frequent ids are not the small ones;
- a context (a user, say) is drawn uniformly from 1,000;
- the label is Bernoulli(sigmoid(logit + noise)) with the planted logit
  ``3 <u_c, v_id> / sqrt(r) - 1`` of a hidden rank-16 model; ``v_id`` comes from
  stable hashes of the id (Box-Muller), so the planted model needs no table
  either; noise is N(0, 1) on the logit.

The *planted AUC* is the AUC of the noiseless planted logit on the test
stream: the ceiling any model can reach. Each base is trained as the item side
of a two-tower dot model (``<base(id), context(c)> + b``, D = 128) with
row-wise Adagrad (sparse gradients for the tables, one accumulator per row:
Adam's two full-size states would not fit beside a full 10M x 128 table) for the same number of steps, then AUC on a held-out
stream of 200,000 clicks.

Each configuration runs in its own subprocess, one after the other (the
machine is shared: never two big ones at once), and reports peak RSS
(``ru_maxrss``) and training steps/s (forward, backward, optimizer; data
generation excluded). The full float32 table runs at 10M ids only (5.1 GB);
at 100M it would be 51.2 GB and is reported from ``memory_report`` on the
meta device, never allocated.

Run:
    .venv/bin/python benchmarks/clicklog.py --out benchmarks/results/clicklog.md
    .venv/bin/python benchmarks/clicklog.py --one qr --ids 100000000   # one configuration
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

D = 128
RANK = 16
CONTEXTS = 1000
ZIPF_S = 1.05
MULT = 2654435761  # odd and not a multiple of 5: a bijection modulo 10**k
BATCH = 4096
LR = 0.1  # chosen once on 100k-id streams (0.02 and 0.1 tried), never on the reported runs


# --------------------------------------------------------------------------- generator
def planted_item_vectors(ids: torch.Tensor) -> torch.Tensor:
    """The hidden rank-16 vector of each id, from stable hashes: (N,) -> (N, RANK)."""
    from synthembed.layers.compressed import hash_ids

    m = 1 << 30
    cols = []
    for j in range(RANK // 2):
        u1 = (hash_ids(ids, m, seed=1000 + 2 * j).double() + 1.0) / m
        u2 = (hash_ids(ids, m, seed=1001 + 2 * j).double() + 1.0) / m
        r = torch.sqrt(-2.0 * torch.log(u1))
        cols += [r * torch.cos(2 * math.pi * u2), r * torch.sin(2 * math.pi * u2)]
    return torch.stack(cols, dim=1).float()


def planted_contexts() -> torch.Tensor:
    return torch.randn(CONTEXTS, RANK, generator=torch.Generator().manual_seed(7))


def sample(
    num_ids: int, n: int, gen: torch.Generator, ctx: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """n clicks: (ids, contexts, labels, planted logits)."""
    u = torch.rand(n, generator=gen, dtype=torch.float64)
    top = (num_ids + 1) ** (1 - ZIPF_S)
    rank = torch.floor(((top - 1) * u + 1) ** (1 / (1 - ZIPF_S))).long() - 1
    rank = rank.clamp_(0, num_ids - 1)
    ids = (rank * MULT) % num_ids  # rank < 2**27 * ... fits: MULT * 1e8 < 2**63
    c = torch.randint(0, CONTEXTS, (n,), generator=gen)
    logit = 3.0 * (planted_item_vectors(ids) * ctx[c]).sum(1) / math.sqrt(RANK) - 1.0
    noisy = logit + torch.randn(n, generator=gen)
    labels = (torch.rand(n, generator=gen) < torch.sigmoid(noisy)).float()
    return ids, c, labels, logit


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    pos = labels > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# --------------------------------------------------------------------------- models
def build(base: str, num_ids: int) -> nn.Module:
    from synthembed.layers.compressed import (
        DHEEmbedding,
        HashEmbedding,
        LowRankEmbedding,
        MixedDimEmbedding,
        QREmbedding,
    )
    from synthembed.layers.embedding import Embedding

    std = 0.01
    if base == "full":
        emb = Embedding(num_ids, D, sparse=True)
        with torch.no_grad():
            emb.weight.mul_(std)
        return emb
    if base == "hash":
        weights = None if num_ids <= 10_000_000 else 1 << 20
        return HashEmbedding(
            num_ids,
            D,
            num_buckets=1 << 17,
            num_hashes=2,
            num_weights=weights,
            sparse=True,
            init_std=std,
        )
    if base == "qr":
        return QREmbedding(
            num_ids, D, num_collisions=math.isqrt(num_ids), sparse=True, init_std=std
        )
    if base == "dhe":
        return DHEEmbedding(num_ids, D, num_hashes=64, hidden_dims=(128,))  # small: CPU time
    if base == "lowrank":
        return LowRankEmbedding(num_ids, D, rank=8, sparse=True, init_std=std)
    if base == "mixed":
        order = (torch.arange(num_ids) * MULT) % num_ids  # true frequency order (rank -> id)
        return MixedDimEmbedding(
            num_ids, D, order=order, num_blocks=4, alpha=0.5, sparse=True, init_std=std
        )
    raise ValueError(base)


class RowWiseAdagrad(torch.optim.Optimizer):
    """Adagrad with one accumulator per row (the DLRM / torchrec choice for big tables).

    Sparse gradients update only the rows they touch; the state is one float
    per row (40 MB for 10M rows, where Adam's would be two full tables). Dense
    parameters (MLPs, projections, the bias) get the same rule, row by row.
    """

    def __init__(self, params: Any, lr: float, eps: float = 1e-8) -> None:
        super().__init__(params, {"lr": lr, "eps": eps})

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            lr, eps = group["lr"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                rows = p.shape[0] if p.dim() else 1
                state = self.state[p]
                if "sum" not in state:
                    state["sum"] = torch.zeros(rows, dtype=p.dtype)
                acc = state["sum"]
                g = p.grad
                if g.is_sparse:
                    g = g.coalesce()
                    idx, val = g.indices()[0], g.values()
                    acc.index_add_(0, idx, val.pow(2).mean(1))
                    scale = acc[idx].sqrt_().add_(eps)
                    p.index_add_(0, idx, val / scale.unsqueeze(1), alpha=-lr)
                else:
                    g2 = g.reshape(rows, -1)
                    acc += g2.pow(2).mean(1)
                    p.add_((g2 / acc.sqrt().add(eps).unsqueeze(1)).reshape(p.shape), alpha=-lr)


class TwoTower(nn.Module):
    def __init__(self, items: nn.Module) -> None:
        super().__init__()
        self.items = items
        self.contexts = nn.Embedding(CONTEXTS, D)
        nn.init.normal_(self.contexts.weight, std=0.1)
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, ids: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return (self.items(ids) * self.contexts(c)).sum(-1) + self.bias


def run_one(base: str, num_ids: int, steps: int, seed: int, args_lr: float = LR) -> dict[str, Any]:
    from synthembed.memory import memory_report

    torch.manual_seed(seed)
    t0 = time.perf_counter()
    model = TwoTower(build(base, num_ids))
    build_s = time.perf_counter() - t0
    report = memory_report(model.items)
    opt = RowWiseAdagrad(model.parameters(), lr=args_lr)
    ctx = planted_contexts()
    gen = torch.Generator().manual_seed(seed)
    step_time = 0.0
    losses = []
    for _ in range(steps):
        ids, c, y, _ = sample(num_ids, BATCH, gen, ctx)
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.binary_cross_entropy_with_logits(model(ids, c), y)
        loss.backward()
        opt.step()
        step_time += time.perf_counter() - t
        losses.append(float(loss.detach()))
    test_gen = torch.Generator().manual_seed(10_000 + seed)
    ids, c, y, logit = sample(num_ids, 200_000, test_gen, ctx)
    with torch.no_grad():
        scores = torch.cat(
            [model(ids[i : i + 20_000], c[i : i + 20_000]) for i in range(0, len(ids), 20_000)]
        )
    return {
        "base": base,
        "num_ids": num_ids,
        "config": model.items.extra_repr(),
        "param_bytes": report.total_bytes,
        "compression": report.compression_ratio,
        "steps": steps,
        "steps_per_s": steps / step_time,
        "build_s": build_s,
        "final_loss": float(np.mean(losses[-50:])),
        "auc": auc(scores.numpy(), y.numpy()),
        "planted_auc": auc(logit.numpy(), y.numpy()),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


PLAN = [
    ("full", 10_000_000),
    ("lowrank", 10_000_000),
    ("mixed", 10_000_000),
    ("hash", 10_000_000),
    ("qr", 10_000_000),
    ("dhe", 10_000_000),
    ("hash", 100_000_000),
    ("qr", 100_000_000),
    ("dhe", 100_000_000),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", type=str, default=None, help="run one base in this process")
    parser.add_argument("--ids", type=int, default=10_000_000)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=LR)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=str, default=None)
    parser.add_argument(
        "--render",
        type=str,
        nargs="+",
        default=None,
        help="render result JSON lines saved from --one runs",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(run_one(args.one, args.ids, args.steps, args.seed, args.lr)), flush=True)
        return
    from synthembed.io import atomic_write
    from synthembed.memory import format_bytes, memory_report

    results: list[dict[str, Any]] = []
    if args.render:
        for path in args.render:
            with open(path, encoding="utf-8") as f:
                results += [json.loads(line) for line in f if line.strip().startswith("{")]
        order = {key: i for i, key in enumerate(PLAN)}
        results.sort(
            key=lambda r: (r["num_ids"], order.get((r["base"], r["num_ids"]), 99), -r["steps"])
        )
    for base, n in [] if args.render else PLAN:  # one subprocess at a time
        cmd = [sys.executable, __file__, "--one", base, "--ids", str(n), "--steps", str(args.steps)]
        cmd += ["--seed", str(args.seed), "--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            results.append(
                {"base": base, "num_ids": n, "error": proc.stderr.strip().splitlines()[-1:]}
            )
        else:
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(results[-1], flush=True)
    full_100m = memory_report(nn.Embedding(100_000_000, D, device="meta")).total_bytes
    lines = [
        "### Synthetic click log: 10M and 100M ids (planted model)",
        "",
        "Command: `python benchmarks/clicklog.py --steps S` runs every row (one subprocess each, in "
        "turn); one row alone: `python benchmarks/clicklog.py --one BASE --ids N --steps S`, and "
        "`--render FILES` renders saved rows.",
        "",
        f"Zipf({ZIPF_S}) ids, 1,000 contexts, planted rank-{RANK} logit plus N(0,1) noise; two-tower dot "
        f"model with D={D}, row-wise Adagrad steps (the steps column) of {BATCH} clicks (lr {LR}), AUC on 200,000 held-out "
        "clicks. Planted AUC = the noiseless planted logit's AUC on the same clicks (the ceiling). "
        "Each row is its own subprocess, run one at a time; peak RSS is that process's `ru_maxrss` "
        "(Python, torch and the data generator included).",
        "",
        "| ids | base | steps | item params + buffers | vs full fp32 | AUC | planted AUC | AUC / planted | peak RSS | steps/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(
                f"| {r['num_ids']:,} | {r['base']} | - | failed: {r['error']} | | | | | | |"
            )
            continue
        lines.append(
            f"| {r['num_ids']:,} | {r['base']} ({r['config']}) | {r['steps']} | {format_bytes(r['param_bytes'])} | "
            f"{r['compression']:.0f}x smaller | {r['auc']:.4f} | {r['planted_auc']:.4f} | "
            f"{r['auc'] / r['planted_auc']:.3f} | {format_bytes(r['peak_rss_bytes'])} | {r['steps_per_s']:.1f} |"
        )
    lines.append(
        f"| 100,000,000 | full (not run) | - | {format_bytes(full_100m)} | 1x | - | - | - | "
        "> 24 GiB machine | - |"
    )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with atomic_write(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
