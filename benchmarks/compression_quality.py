"""Ranking quality against parameter count: compressed item tables on MovieLens (warm items).

Protocol: the MovieLens cold-start split of ``synthembed.recsys`` (seeded,
ColdRec-style), BPR matrix factorisation (``synthembed.recsys.models.train_bpr``,
its default budget), full ranking of the warm items with each user's training
items left out; warm Recall@20 and NDCG@20 on the test part. Users keep a
plain table; only the item table is replaced by each base, sized to use 4x,
16x and 64x fewer parameters than the full ``V x D`` item table (DHE's MLP
counted; mixed dimensions get the training counts of the items). Every model
gets the same budget and learning rate, and outputs of the same scale at
initialisation (``init_std=0.1`` like ``plain_mf``; DHE uses its own MLP init).
Hyper-parameters per base are chosen once by the sizing rule below, never
tuned on the test part.

Run:
    .venv/bin/python benchmarks/compression_quality.py --out benchmarks/results/compression_quality.md

One intra-op thread (the machine is shared; tiny batches gain nothing from
more). About 25 minutes at ``--epochs 20`` on a loaded 2-core machine; peak
memory well under 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from synthembed.io import atomic_write
from synthembed.layers.compressed import (
    DHEEmbedding,
    HashEmbedding,
    LowRankEmbedding,
    MixedDimEmbedding,
    QREmbedding,
    qr_partition_sizes,
)
from synthembed.layers.embedding import Embedding
from synthembed.recsys.evaluate import evaluate_split
from synthembed.recsys.models import (
    BPRConfig,
    MatrixFactorization,
    popularity_scores,
    seeded,
    train_bpr,
)

D = 64
INIT_STD = 0.1
RATIOS = (4, 16, 64)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def build_item_base(
    name: str, v: int, budget: int, counts: np.ndarray
) -> tuple[nn.Module, str] | None:
    """The base of kind ``name`` with the most parameters not above ``budget`` (None if impossible)."""
    if name == "lowrank":
        r = budget // (v + D)
        if r < 1:
            return None
        return LowRankEmbedding(v, D, rank=r, init_std=INIT_STD), f"rank={r}"
    if name == "hash":
        k = 2
        # Per-id importance weights (the paper) when they fit in a fifth of the budget, else hashed.
        w = v if v * k <= budget // 5 else max(1, budget // 5 // k)
        b = (budget - w * k) // D
        if b < k:
            return None
        layer = HashEmbedding(
            v, D, num_buckets=b, num_hashes=k, num_weights=None if w == v else w, init_std=INIT_STD
        )
        return layer, f"B={b}, k={k}, importance rows={w}"
    if name == "qr":
        best: tuple[int, int, int] | None = None
        for parts in (2, 3):
            for m in range(2, v + 1):
                sizes = qr_partition_sizes(v, parts, m)
                p = sum(sizes) * D
                if p <= budget and (best is None or p > best[0]):
                    best = (p, parts, m)
                if sizes[0] > v // 2:
                    break
        if best is None:
            return None
        _, parts, m = best
        layer = QREmbedding(v, D, num_buckets=m, num_partitions=parts, init_std=INIT_STD)
        return layer, f"sizes={layer.sizes}, product"
    if name == "dhe":
        k = min(256, budget // 128)
        h = (budget - D) // (k + 1 + D)
        if k < 2 or h < 1:
            return None
        return DHEEmbedding(v, D, num_hashes=k, hidden_dims=(h,)), f"k={k}, hidden=({h},)"
    if name == "mixed":
        best_m: tuple[int, int, float] | None = None
        for blocks in range(2, 9):
            for alpha in np.linspace(0.0, 3.0, 61):
                m = MixedDimEmbedding(v, D, counts=counts, num_blocks=blocks, alpha=float(alpha))
                p = n_params(m)
                if p <= budget and (best_m is None or p > best_m[0]):
                    best_m = (p, blocks, float(alpha))
        if best_m is None:
            return None
        _, blocks, alpha = best_m
        layer = MixedDimEmbedding(
            v, D, counts=counts, num_blocks=blocks, alpha=alpha, init_std=INIT_STD
        )
        return layer, f"blocks={layer.block_sizes}, dims={layer.block_dims}"
    raise ValueError(name)


def run(seed: int, epochs: int | None) -> list[dict[str, Any]]:
    from synthembed.data.movielens import movielens
    from synthembed.recsys.split import cold_start_split

    data = movielens()
    split = cold_start_split(data.interactions, seed=seed)
    nu, ni = split.num_users, split.num_items
    counts = split.item_train_counts().astype(np.float64)
    config = BPRConfig() if epochs is None else BPRConfig(epochs=epochs)
    full_params = ni * D
    pop = evaluate_split(
        popularity_scores(split.train, nu, ni, seed=seed), split, part="test", k=20
    )
    rows: list[dict[str, Any]] = [
        {
            "base": "popularity (floor)",
            "ratio": 0,
            "params": 0,
            "detail": "no item vectors",
            "recall": float(pop["warm"]["recall"]),
            "ndcg": float(pop["warm"]["ndcg"]),
            "seconds": 0.0,
        }
    ]
    plans: list[tuple[str, int]] = [("full", 1)] + [
        (name, r) for r in RATIOS for name in ("lowrank", "mixed", "hash", "qr", "dhe")
    ]
    for name, ratio in plans:
        with seeded(seed):
            users = Embedding(nu, D)
            nn.init.normal_(users.weight, std=INIT_STD)
            if name == "full":
                items: nn.Module = Embedding(ni, D)
                nn.init.normal_(items.weight, std=INIT_STD)
                detail = f"{ni} x {D}"
            else:
                # 2% slack so that, e.g., rank 1 (9,130 params) counts as 64x of 580,224.
                built = build_item_base(name, ni, int(full_params / ratio * 1.02), counts)
                if built is None:
                    rows.append(
                        {
                            "base": name,
                            "ratio": ratio,
                            "params": None,
                            "detail": "cannot fit the budget",
                        }
                    )
                    continue
                items, detail = built
        model = MatrixFactorization(users, items)
        start = time.perf_counter()
        train_bpr(model, split.train, config, seed=seed)
        seconds = time.perf_counter() - start
        warm = evaluate_split(model.score_matrix(), split, part="test", k=20)["warm"]
        row = {
            "base": name,
            "ratio": ratio,
            "params": n_params(items),
            "detail": detail,
            "recall": float(warm["recall"]),
            "ndcg": float(warm["ndcg"]),
            "seconds": seconds,
        }
        logging.info("%s", row)
        rows.append(row)
    return rows


def to_markdown(
    all_rows: list[list[dict[str, Any]]], seeds: list[int], epochs: int | None, command: str
) -> str:
    first = all_rows[0]
    full = [r for r in (rows[1] for rows in all_rows)]
    full_recall = statistics.mean(r["recall"] for r in full)
    full_ndcg = statistics.mean(r["ndcg"] for r in full)
    lines = [
        "### Quality against parameter count (MovieLens, warm items)",
        "",
        f"Command: `{command}`",
        "",
        f"Item table of {first[1]['detail']} (D={D}) replaced by each base; users keep a full table. "
        f"BPR ({'default' if epochs is None else epochs} epochs), warm Recall@20 / NDCG@20 on the test part, "
        f"mean over seeds {seeds}; relative change against the full table of the same seeds.",
        "",
        "| base | target | item params | actual ratio | Recall@20 | NDCG@20 | Δ Recall | Δ NDCG | sizing | train s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(first):
        group = [rows[i] for rows in all_rows]
        if r["params"] is None:
            lines.append(
                f"| {r['base']} | {r['ratio']}x | - | - | - | - | - | - | {r['detail']} | - |"
            )
            continue
        if r["params"] == 0:  # the popularity floor
            rec, nd = r["recall"], r["ndcg"]
            lines.append(
                f"| {r['base']} | - | 0 | - | {rec:.4f} | {nd:.4f} | {(rec / full_recall - 1) * 100:+.1f}% "
                f"| {(nd / full_ndcg - 1) * 100:+.1f}% | {r['detail']} | - |"
            )
            continue
        rec = statistics.mean(g["recall"] for g in group)
        nd = statistics.mean(g["ndcg"] for g in group)
        secs = statistics.median(g["seconds"] for g in group)
        actual = first[1]["params"] / r["params"]
        lines.append(
            f"| {r['base']} | {r['ratio']}x | {r['params']:,} | {actual:.1f}x | {rec:.4f} | {nd:.4f} | "
            f"{(rec / full_recall - 1) * 100:+.1f}% | {(nd / full_ndcg - 1) * 100:+.1f}% | {r['detail']} | {secs:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--epochs", type=int, default=None, help="BPR epochs (default: BPRConfig's)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=str, default=None)
    parser.add_argument("--json", type=str, default=None, help="also save the raw rows here")
    parser.add_argument("--render", type=str, default=None, help="render rows saved by --json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    if args.render:
        with open(args.render, encoding="utf-8") as f:
            all_rows = json.load(f)
    else:
        all_rows = [run(s, args.epochs) for s in args.seeds]
    if args.json:
        with atomic_write(args.json, "w") as f:
            json.dump(all_rows, f, indent=1)
    command = (
        "python benchmarks/compression_quality.py"
        + (f" --seeds {' '.join(map(str, args.seeds))}" if args.seeds != [0] else "")
        + (f" --epochs {args.epochs}" if args.epochs else "")
    )
    text = to_markdown(all_rows, args.seeds, args.epochs, command)
    print(text)
    if args.out:
        with atomic_write(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
