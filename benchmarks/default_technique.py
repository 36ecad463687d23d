"""Which technique should the synthetic layer use by default with side features?

Trains the layer with its defaults on every MovieLens split of the cold-start
benchmark (``benchmarks/coldstart.py``: same data, side features, recipe and
epochs), once with the content tower (``technique="combination"``) and once
with the autoencoder, and reports validation cold and warm Recall@20 (the
choice is made on validation; the test split is reported beside it, never used
to choose)::

    .venv/bin/python benchmarks/default_technique.py --seeds 3 --write   # ~10 minutes

Writes ``benchmarks/results/default_technique.md`` (and a JSON of every run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent / "src"))
sys.path.insert(0, str(ROOT))

import coldstart  # noqa: E402

from synthembed.data.movielens import movielens  # noqa: E402
from synthembed.io import atomic_write  # noqa: E402
from synthembed.recsys.evaluate import evaluate_split  # noqa: E402
from synthembed.recsys.features import item_side_features  # noqa: E402

CANDIDATES = ("combination", "autoencoder")
RESULT = ROOT / "results" / "default_technique.md"


def run(split_name: str, seed: int, data: Any, feats: Any) -> list[dict[str, Any]]:
    split = coldstart.make_split(split_name, data, seed)
    cfg = coldstart.bpr_config({"_bpr": {"lr": 5e-3, "epochs": 25}}, recipe=True)
    rows = []
    for technique in CANDIDATES:
        start = time.perf_counter()
        model = coldstart.train_layer(split, feats, cfg, seed, {"technique": technique})
        scores = model.score_matrix()
        row: dict[str, Any] = {"split": split_name, "seed": seed, "technique": technique}
        for part in ("val", "test"):
            r = evaluate_split(scores, split, part=part, k=coldstart.K)
            row[part] = {k: float(r[k]["recall"]) for k in ("cold", "warm", "overall")}
        row["seconds"] = time.perf_counter() - start
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def report(rows: list[dict[str, Any]], command: str) -> str:
    lines = [
        "## The default technique with side features: content tower or autoencoder",
        "",
        f"Command: `{command}`. The layer with its defaults (rate 0.5, 30% of ids served "
        "by the synthesizer alone in training, `cold_threshold=1`) but `technique`, on the "
        "cold-start benchmark's splits, recipe and epochs (`benchmarks/coldstart.py`); one "
        "torch thread. Recall@20, mean ± std over seeds; `val` chooses, `test` is shown.",
        "",
        "| split | technique | val cold | val warm | val cold + warm | test cold | test warm "
        "| test overall |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]

    def cell(values: list[float]) -> str:
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.4f} ± {sd:.4f}"

    wins: dict[str, list[int]] = {}
    for split in coldstart.SPLITS:
        for technique in CANDIDATES:
            mine = [r for r in rows if r["split"] == split and r["technique"] == technique]
            if not mine:
                continue
            val = [r["val"]["cold"] + r["val"]["warm"] for r in mine]
            lines.append(
                f"| {split} | {technique} | {cell([r['val']['cold'] for r in mine])} "
                f"| {cell([r['val']['warm'] for r in mine])} | {cell(val)} "
                f"| {cell([r['test']['cold'] for r in mine])} "
                f"| {cell([r['test']['warm'] for r in mine])} "
                f"| {cell([r['test']['overall'] for r in mine])} |"
            )
        by_seed: dict[int, dict[str, float]] = {}
        for r in rows:
            if r["split"] == split:
                by_seed.setdefault(r["seed"], {})[r["technique"]] = (
                    r["val"]["cold"] + r["val"]["warm"]
                )
        ae = sum(s["autoencoder"] > s["combination"] for s in by_seed.values() if len(s) == 2)
        wins[split] = [ae, sum(len(s) == 2 for s in by_seed.values())]
    lines += [
        "",
        "Validation cold + warm Recall@20, autoencoder above the tower: "
        + "; ".join(f"{s} {a} of {n} seeds" for s, (a, n) in wins.items())
        + ".",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--split", choices=(*coldstart.SPLITS, "all"), default="all")
    parser.add_argument("--write", action="store_true", help=f"write {RESULT.name}")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    data = movielens()
    feats = item_side_features(data.items, text="tfidf", seed=0).matrix
    splits = coldstart.SPLITS if args.split == "all" else (args.split,)
    store = RESULT.with_suffix(".json")
    rows: list[dict[str, Any]] = json.loads(store.read_text()) if store.exists() else []
    for split in splits:
        rows = [r for r in rows if r["split"] != split]
        for seed in range(args.seeds):
            rows += run(split, seed, data, feats)
        if args.write:
            with atomic_write(store, "w") as f:
                f.write(json.dumps(rows, indent=1))
    text = report(
        rows, " ".join([".venv/bin/python benchmarks/default_technique.py", *sys.argv[1:]])
    )
    print(text)
    if args.write:
        with atomic_write(RESULT, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
