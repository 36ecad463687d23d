"""Ranking quality against parameter count: compressed item tables on MovieLens (warm items).

Protocol: the MovieLens cold-start split of ``synthembed.recsys`` (seeded,
ColdRec-style), BPR matrix factorisation trained with Adam (the loss and
sampling of ``synthembed.recsys.models.train_bpr``), full ranking of the warm
items with each user's training items left out; warm Recall@20 and NDCG@20 on
the test part. Users keep a plain table; only the item table is replaced by
each base, sized to use 4x, 16x and 64x fewer parameters than the full
``V x D`` item table (DHE's MLP counted; mixed dimensions get the training
counts of the items). Outputs of the same scale at initialisation
(``init_std=0.1`` like ``plain_mf``; DHE uses its own MLP init).

Training hyper-parameters, two ways:

- untuned (default): every model gets ``BPRConfig``'s learning rate and L2 and
  the same number of epochs (``--epochs``);
- tuned (``--tune FILE`` then ``--tuned FILE``): each (base, ratio) and the
  full table get their own learning rate, L2 weight, learning-rate scale of the
  shared dense parameters (projections, MLPs: they get a gradient at every step,
  table rows only when their id is drawn) and number of epochs, chosen on the
  VALIDATION part of seed 0 (warm Recall@20, checkpoints every 5 epochs) from
  the same grid and the same epoch budget for every base. The test part is
  never looked at while tuning.

Run:
    .venv/bin/python benchmarks/compression_quality.py --tune benchmarks/results/compression_tuned.json
    .venv/bin/python benchmarks/compression_quality.py --tuned benchmarks/results/compression_tuned.json \
        --seeds 0 1 2 --out benchmarks/results/compression_quality.md

One intra-op thread (the machine is shared; tiny batches gain nothing from
more). Peak memory well under 1 GiB.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
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
)

D = 64
INIT_STD = 0.1
RATIOS = (4, 16, 64)
BASES = ("lowrank", "mixed", "hash", "qr", "dhe")
# The tuning grid, the same for every base (the dense scale is a no-op for bases without
# dense parameters: full, hash, qr). DHE, 10-30x slower per step, gets a smaller grid.
GRID: dict[str, list[float]] = {
    "lr": [1e-3, 2e-3, 5e-3, 1e-2],
    "l2": [1e-4, 1e-2, 5e-2],
    "dense_lr_scale": [1.0, 0.01],
}
DHE_GRID: dict[str, list[float]] = {"lr": [5e-3], "l2": [1e-4, 1e-2], "dense_lr_scale": [1.0, 0.1]}
TUNE_EPOCHS = 30
CHECK_EVERY = 5


def train(
    model: MatrixFactorization,
    pairs: np.ndarray,
    *,
    epochs: int,
    lr: float,
    l2: float,
    dense_lr_scale: float,
    seed: int,
    batch_size: int = 1024,
    on_epoch: Callable[[int], None] | None = None,
) -> None:
    """``train_bpr``'s loop (same sampling, loss, L2 on the batch's output vectors, Adam) with
    one addition: parameters outside embedding tables get ``lr * dense_lr_scale``.

    With ``dense_lr_scale=1`` this is bit-for-bit ``train_bpr(model, pairs, BPRConfig(epochs,
    lr=lr, l2=l2), seed=seed)`` (checked on the full table).
    """
    table_params, dense_params = [], []
    for module in model.modules():
        is_table = isinstance(module, (nn.Embedding, Embedding))
        for p in module.parameters(recurse=False):
            if p.requires_grad:
                (table_params if is_table else dense_params).append(p)
    groups: list[dict[str, Any]] = [{"params": table_params, "lr": lr}]
    if dense_params:
        groups.append({"params": dense_params, "lr": lr * dense_lr_scale})
    optimizer = torch.optim.Adam(groups)
    pool = torch.as_tensor(np.unique(pairs[:, 1]), dtype=torch.long)
    users_all = torch.as_tensor(pairs[:, 0], dtype=torch.long)
    items_all = torch.as_tensor(pairs[:, 1], dtype=torch.long)
    n = len(pairs)
    steps = math.ceil(n / batch_size)
    model.train()
    with seeded(seed):
        gen = torch.Generator().manual_seed(seed)
        for epoch in range(epochs):
            order = torch.randperm(n, generator=gen)
            negatives = pool[torch.randint(len(pool), (n,), generator=gen)]
            for step in range(steps):
                idx = order[step * batch_size : (step + 1) * batch_size]
                u, i, j = users_all[idx], items_all[idx], negatives[idx]
                user_vec = model.user_embedding(u)  # (B, D)
                item_vec = model.item_embedding(torch.stack([i, j], dim=1))  # (B, 2, D)
                scores = (user_vec.unsqueeze(1) * item_vec).sum(dim=-1)  # (B, 2)
                loss = -F.logsigmoid(scores[:, 0] - scores[:, 1]).mean()
                if l2 > 0:
                    reg = (
                        user_vec.pow(2).sum(dim=-1).mean()
                        + item_vec.pow(2).sum(dim=-1).sum(dim=-1).mean()
                    )
                    loss = loss + l2 * reg
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            if on_epoch is not None:
                on_epoch(epoch + 1)
    model.eval()


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
        layer = QREmbedding(v, D, num_collisions=m, num_partitions=parts, init_std=INIT_STD)
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


def build_model(
    name: str, ratio: int, nu: int, ni: int, counts: np.ndarray, seed: int
) -> tuple[MatrixFactorization, str] | None:
    """Users: a full table; items: ``name`` sized for ``ratio`` (None when it cannot fit)."""
    with seeded(seed):
        users = Embedding(nu, D)
        nn.init.normal_(users.weight, std=INIT_STD)
        if name == "full":
            items: nn.Module = Embedding(ni, D)
            nn.init.normal_(items.weight, std=INIT_STD)
            detail = f"{ni} x {D}"
        else:
            # 2% slack so that, e.g., rank 1 (9,130 params) counts as 64x of 580,224.
            built = build_item_base(name, ni, int(ni * D / ratio * 1.02), counts)
            if built is None:
                return None
            items, detail = built
    return MatrixFactorization(users, items), detail


def _load_split(seed: int) -> Any:
    from synthembed.data.movielens import movielens
    from synthembed.recsys.split import cold_start_split

    return cold_start_split(movielens().interactions, seed=seed)


def default_hp(epochs: int | None) -> dict[str, Any]:
    config = BPRConfig() if epochs is None else BPRConfig(epochs=epochs)
    return {"lr": config.lr, "l2": config.l2, "dense_lr_scale": 1.0, "epochs": config.epochs}


def tune(bases: list[str], ratios: list[int], seed: int = 0) -> dict[str, dict[str, Any]]:
    """Grid search on the validation part of ``seed``: best hyper-parameters per (base, ratio)."""
    split = _load_split(seed)
    nu, ni = split.num_users, split.num_items
    counts = split.item_train_counts().astype(np.float64)
    chosen: dict[str, dict[str, Any]] = {}
    plans = [(b, r) for b in bases for r in ([1] if b == "full" else ratios)]
    for name, ratio in plans:
        grid = DHE_GRID if name == "dhe" else GRID
        best: dict[str, Any] | None = None
        trials = []
        for lr, l2, scale in itertools.product(grid["lr"], grid["l2"], grid["dense_lr_scale"]):
            built = build_model(name, ratio, nu, ni, counts, seed)
            if built is None:
                break
            model, _ = built
            has_dense = any(
                p.requires_grad
                for m in model.item_embedding.modules()
                if not isinstance(m, (nn.Embedding, Embedding))
                for p in m.parameters(recurse=False)
            )
            if scale != 1.0 and not has_dense:
                continue  # a no-op for this base: do not spend the time twice
            curve: list[tuple[int, float, float]] = []

            def check(epoch: int, model: MatrixFactorization = model, curve: list = curve) -> None:
                if epoch % CHECK_EVERY == 0:
                    warm = evaluate_split(model.score_matrix(), split, part="val", k=20)["warm"]
                    curve.append((epoch, float(warm["recall"]), float(warm["ndcg"])))

            start = time.perf_counter()
            train(
                model,
                split.train,
                epochs=TUNE_EPOCHS,
                lr=lr,
                l2=l2,
                dense_lr_scale=scale,
                seed=seed,
                on_epoch=check,
            )
            for epoch, rec, nd in curve:
                trial = {
                    "lr": lr,
                    "l2": l2,
                    "dense_lr_scale": scale,
                    "epochs": epoch,
                    "val_recall": rec,
                    "val_ndcg": nd,
                }
                trials.append(trial)
                if best is None or (rec, nd) > (best["val_recall"], best["val_ndcg"]):
                    best = trial
            logging.info(
                "tune %s %sx lr=%g l2=%g scale=%g: val recall %s (%.0f s)",
                name,
                ratio,
                lr,
                l2,
                scale,
                [round(c[1], 4) for c in curve],
                time.perf_counter() - start,
            )
        if best is not None:
            chosen[f"{name}@{ratio}"] = {**best, "trials": len(trials)}
            logging.info("chosen %s %sx: %s", name, ratio, best)
    return chosen


def run(
    seed: int,
    epochs: int | None,
    tuned: dict[str, dict[str, Any]] | None = None,
    bases: tuple[str, ...] = BASES,
) -> list[dict[str, Any]]:
    split = _load_split(seed)
    nu, ni = split.num_users, split.num_items
    counts = split.item_train_counts().astype(np.float64)
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
        (name, r) for r in RATIOS for name in BASES if name in bases
    ]
    for name, ratio in plans:
        built = build_model(name, ratio, nu, ni, counts, seed)
        if built is None:
            rows.append(
                {"base": name, "ratio": ratio, "params": None, "detail": "cannot fit the budget"}
            )
            continue
        model, detail = built
        hp = default_hp(epochs)
        if tuned is not None:
            # Ratios not tuned (64x by default: the tuning budget) take the choice of the
            # largest tuned ratio below them.
            keys = [f"{name}@{r}" for r in sorted({1, *RATIOS}) if r <= ratio]
            keys = [k for k in keys if k in tuned]
            if not keys:
                raise SystemExit(f"--tuned file has no entry for {name} at {ratio}x or below.")
            hp = {k: tuned[keys[-1]][k] for k in ("lr", "l2", "dense_lr_scale", "epochs")}
            hp["tuned_at"] = keys[-1]
            hp["_ratio"] = ratio
        start = time.perf_counter()
        train(
            model,
            split.train,
            seed=seed,
            **{k: v for k, v in hp.items() if k not in ("tuned_at", "_ratio")},
        )
        seconds = time.perf_counter() - start
        warm = evaluate_split(model.score_matrix(), split, part="test", k=20)["warm"]
        row = {
            "base": name,
            "ratio": ratio,
            "params": n_params(model.item_embedding),
            "detail": detail,
            "hp": hp,
            "tuned": tuned is not None,
            "recall": float(warm["recall"]),
            "ndcg": float(warm["ndcg"]),
            "seconds": seconds,
        }
        logging.info("%s", row)
        rows.append(row)
    return rows


def _hp_text(hp: dict[str, Any] | None) -> str:
    if not hp:
        return "-"
    scale = "" if hp["dense_lr_scale"] == 1.0 else f", dense x{hp['dense_lr_scale']:g}"
    at = hp.get("tuned_at", "")
    borrowed = (
        f" (of {at.split('@')[1]}x)" if at and not at.endswith("@" + str(hp.get("_ratio"))) else ""
    )
    return f"lr {hp['lr']:g}, l2 {hp['l2']:g}{scale}, {hp['epochs']} ep{borrowed}"


def to_markdown(
    all_rows: list[list[dict[str, Any]]],
    seeds: list[int],
    epochs: int | None,
    command: str,
    tuned: bool = False,
) -> str:
    first = all_rows[0]
    full = [r for r in (rows[1] for rows in all_rows)]
    full_recall = statistics.mean(r["recall"] for r in full)
    full_ndcg = statistics.mean(r["ndcg"] for r in full)
    if tuned:
        budget = "Per-model hyper-parameters tuned on the validation part of seed 0 (column hp)"
    else:
        budget = f"BPR ({'default' if epochs is None else epochs} epochs, default lr and L2)"
    spread = len(seeds) > 1
    lines = [
        "### Quality against parameter count (MovieLens, warm items)"
        + (" — tuned on validation" if tuned else ""),
        "",
        f"Command: `{command}`",
        "",
        f"Item table of {first[1]['detail']} (D={D}) replaced by each base; users keep a full table. "
        f"{budget}; warm Recall@20 / NDCG@20 on the test part, "
        f"mean over seeds {seeds}"
        + (" (± the sample standard deviation over seeds)" if spread else "")
        + "; relative change against the full table of the same seeds.",
        "",
        "| base | target | item params | actual ratio | Recall@20 | NDCG@20 | Δ Recall | Δ NDCG | sizing | hp | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(first):
        group = [rows[i] for rows in all_rows]
        if r["params"] is None:
            lines.append(
                f"| {r['base']} | {r['ratio']}x | - | - | - | - | - | - | {r['detail']} | - | - |"
            )
            continue
        rec = statistics.mean(g["recall"] for g in group)
        nd = statistics.mean(g["ndcg"] for g in group)
        rec_s = f"{rec:.4f}" + (
            f" ± {statistics.stdev(g['recall'] for g in group):.4f}" if spread else ""
        )
        nd_s = f"{nd:.4f}" + (
            f" ± {statistics.stdev(g['ndcg'] for g in group):.4f}" if spread else ""
        )
        if r["params"] == 0:  # the popularity floor
            lines.append(
                f"| {r['base']} | - | 0 | - | {rec_s} | {nd_s} | {(rec / full_recall - 1) * 100:+.1f}% "
                f"| {(nd / full_ndcg - 1) * 100:+.1f}% | {r['detail']} | - | - |"
            )
            continue
        secs = statistics.median(g["seconds"] for g in group)
        actual = first[1]["params"] / r["params"]
        lines.append(
            f"| {r['base']} | {r['ratio']}x | {r['params']:,} | {actual:.1f}x | {rec_s} | {nd_s} | "
            f"{(rec / full_recall - 1) * 100:+.1f}% | {(nd / full_ndcg - 1) * 100:+.1f}% | {r['detail']} "
            f"| {_hp_text(r.get('hp'))} | {secs:.0f} |"
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
    parser.add_argument(
        "--tune", type=str, default=None, help="grid-search on validation, save choices here"
    )
    parser.add_argument("--bases", nargs="+", default=list(BASES), help="bases to run")
    parser.add_argument("--tune-bases", nargs="+", default=["full", *BASES])
    parser.add_argument("--tune-ratios", type=int, nargs="+", default=list(RATIOS))
    parser.add_argument(
        "--tuned", type=str, nargs="+", default=None, help="train with the choices of --tune"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    if args.tune:
        chosen = tune(args.tune_bases, args.tune_ratios)
        with atomic_write(args.tune, "w") as f:
            json.dump(chosen, f, indent=1)
        return
    tuned: dict[str, dict[str, Any]] | None = None
    if args.tuned:
        tuned = {}
        for path in args.tuned:
            with open(path, encoding="utf-8") as f:
                tuned.update(json.load(f))
    if args.render:
        with open(args.render, encoding="utf-8") as f:
            all_rows = json.load(f)
        tuned_rows = any(r.get("tuned") for r in all_rows[0])
    else:
        all_rows = [run(s, args.epochs, tuned, tuple(args.bases)) for s in args.seeds]
        tuned_rows = tuned is not None
    if args.json:
        with atomic_write(args.json, "w") as f:
            json.dump(all_rows, f, indent=1)
    command = (
        "python benchmarks/compression_quality.py"
        + (f" --tuned {' '.join(args.tuned)}" if args.tuned else "")
        + (f" --seeds {' '.join(map(str, args.seeds))}" if args.seeds != [0] else "")
        + (f" --epochs {args.epochs}" if args.epochs else "")
    )
    text = to_markdown(
        all_rows, args.seeds, args.epochs, command, tuned=tuned_rows or bool(args.tuned)
    )
    print(text)
    if args.out:
        with atomic_write(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
