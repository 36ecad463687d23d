"""Rates, distillation toward trained rows and stand-alone training of SyntheticEmbeddingLayer on MovieLens.

Regenerates ``benchmarks/results/rates.md``; it chose the layer's defaults of
``adaptive``, ``distill_weight`` and ``train_synthetic_fraction`` (issue 13, items 2-4)::

    .venv/bin/python benchmarks/rates.py --seeds 3

Protocol: the cold-start split, features, BPR training (20 epochs, batch 2048,
Adam lr 0.005) and full-ranking metrics of ``benchmarks/coldstart.py``
(its tuned budget), items a ``SyntheticEmbeddingLayer`` with the default
technique and side features; every variant changes one setting of the
reference (fixed rate 0.5, ``train_synthetic_fraction=0.3``, no distillation).
Reported per variant, mean ± std over seeds, on the test split: cold, sparse
(warm items with 1-10 training interactions), warm and overall Recall@20;
the validation split's cold + warm Recall@20, which makes the choice.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent / "src"))

from synthembed.data.movielens import movielens  # noqa: E402
from synthembed.io import atomic_write  # noqa: E402
from synthembed.recsys.evaluate import evaluate_items, evaluate_split  # noqa: E402
from synthembed.recsys.features import item_side_features  # noqa: E402
from synthembed.recsys.models import BPRConfig, synthetic_mf, train_bpr  # noqa: E402
from synthembed.recsys.split import cold_start_split  # noqa: E402

DIM = 64
K = 20
REFERENCE: dict[str, Any] = {
    "synthesis_rate": 0.5,
    "train_synthetic_fraction": 0.3,
    "adaptive": False,
    "distill_weight": 0.0,
}
#: (study, label, changes from REFERENCE)
VARIANTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("rate", "fixed 0.5 (reference)", {}),
    ("rate", "fixed 0.1", {"synthesis_rate": 0.1}),
    ("rate", "adaptive=True (from 0.5)", {"adaptive": True}),
    ("rate", "adaptive='count' (k0=10: rate 0.5 at 10)", {"adaptive": "count"}),
    (
        "rate",
        "adaptive='count' (k0=1.1: rate 0.1 at 10)",
        {"adaptive": "count", "synthesis_rate": 0.1},
    ),
    ("fraction", "train_synthetic_fraction=0", {"train_synthetic_fraction": 0.0}),
    ("fraction", "train_synthetic_fraction=0.3 (reference)", {}),
    ("fraction", "train_synthetic_fraction=0.5", {"train_synthetic_fraction": 0.5}),
    ("distill", "distill_weight=0 (reference)", {}),
    ("distill", "distill_weight=0.1, distill_min_count=10", {"distill_weight": 0.1}),
    ("distill", "distill_weight=1, distill_min_count=10", {"distill_weight": 1.0}),
)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(
    data: Any, feats: np.ndarray, seed: int, settings: dict[str, Any], epochs: int
) -> dict[str, float]:
    split = cold_start_split(data.interactions, seed=seed, item_ids=data.items.index.to_numpy())
    m = synthetic_mf(split.num_users, feats, DIM, technique=TECHNIQUE, seed=seed, **settings)
    train_bpr(m, split.train, BPRConfig(epochs=epochs, batch_size=2048, lr=5e-3), seed=seed)
    scores = m.score_matrix()
    test = evaluate_split(scores, split, k=K)
    val = evaluate_split(scores, split, part="val", k=K)
    counts = split.item_train_counts()
    sparse = np.flatnonzero((counts >= 1) & (counts <= 10))
    out = {
        "cold": float(test["cold"]["recall"]),
        "sparse": float(evaluate_items(scores, split, sparse, k=K).recall),
        "warm": float(test["warm"]["recall"]),
        "overall": float(test["overall"]["recall"]),
        "val": float(val["cold"]["recall"]) + float(val["warm"]["recall"]),
    }
    layer: Any = m.item_embedding
    if getattr(layer, "rate_k", None) is not None:
        out["k"] = float(torch.nn.functional.softplus(layer.rate_k.detach()).item())
    if getattr(layer, "rate_logit", None) is not None:
        out["rate"] = float(torch.sigmoid(layer.rate_logit.detach()).item())
    return out


def cell(values: list[float]) -> str:
    a = np.asarray(values)
    std = float(a.std(ddof=1)) if len(a) > 1 else 0.0
    return f"{a.mean():.4f} ± {std:.4f}"


def report(results: dict[str, list[dict[str, float]]], seeds: int, minutes: float) -> str:
    lines = [
        "## Synthesis rates, distillation and stand-alone training (MovieLens)",
        "",
        "Reproduce: `.venv/bin/python benchmarks/rates.py --seeds 3` "
        f"({minutes:.0f} min on a shared 2-core machine, one torch thread).",
        "",
        "Protocol:" + (__doc__ or "").split("Protocol:", 1)[1].strip(),
        f"Technique: `{TECHNIQUE}` (the default). Seeds 0..{seeds - 1}.",
        "",
    ]
    for study in ("rate", "fraction", "distill"):
        lines += [
            f"### {study}",
            "",
            "| variant | cold R@20 | sparse R@20 | warm R@20 | overall R@20 | val (cold+warm) | learned |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for s, label, _ in VARIANTS:
            if s != study or label not in results:
                continue
            runs = results[label]
            learned = ""
            if "k" in runs[0]:
                learned = "k = " + ", ".join(f"{r['k']:.2f}" for r in runs)
            if "rate" in runs[0]:
                learned = "r = " + ", ".join(f"{r['rate']:.3f}" for r in runs)
            cells = [
                cell([r[m] for r in runs]) for m in ("cold", "sparse", "warm", "overall", "val")
            ]
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {learned} |")
        lines.append("")
    return "\n".join(lines) + "\n"


TECHNIQUE = "combination"


def main() -> None:
    global TECHNIQUE
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--study", action="append", default=None)
    parser.add_argument("--technique", default=None)
    parser.add_argument("--out", default=str(ROOT / "results" / "rates.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    from synthembed.layers.synthesis_config import SynthesisConfig

    TECHNIQUE = args.technique or SynthesisConfig().technique
    start = time.perf_counter()
    data = movielens()
    feats = item_side_features(data.items, text="tfidf", seed=0).matrix
    results: dict[str, list[dict[str, float]]] = {}
    done: dict[str, list[dict[str, float]]] = {}  # the reference runs once per seed
    for study, label, changes in VARIANTS:
        if args.study and study not in args.study:
            continue
        settings = {**REFERENCE, **changes}
        key = json.dumps(settings, sort_keys=True)
        if key not in done:
            done[key] = []
            for seed in range(args.seeds):
                t = time.perf_counter()
                r = run(data, feats, seed, settings, args.epochs)
                done[key].append(r)
                log(f"{label} seed {seed}: {r} ({time.perf_counter() - t:.0f} s)")
        results[label] = done[key]
    minutes = (time.perf_counter() - start) / 60
    text = report(results, args.seeds, minutes)
    with atomic_write(args.out, "w") as fh:
        fh.write(text)
    Path(args.out).with_suffix(".json").write_text(json.dumps(results, indent=1))
    print(text)


if __name__ == "__main__":
    main()
