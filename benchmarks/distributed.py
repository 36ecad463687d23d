"""Distributed training on CPU: throughput, memory per rank, and the same loss (issue 15).

Three measurements, each on processes of one torch thread joined by ``gloo``:

1. samples/s of one training step loop (a 200,000 x 64 table and a linear head,
   MSE loss, 2,048 ids per process and step) with 1 and 2 processes: replicated
   (``synthembed.distributed.data_parallel``, sparse gradients; and dense ones, which
   all-reduce the whole table's gradient every step) and sharded table-wise
   (``TorchRecBase`` + ``shard``, TorchRec's fused SGD), replicated with the table's
   SGD fused into backward (``fused_optimizer=SparseSGD``), and one plain process
   without any wrapper;
2. the loss of the same training, one process on the global batch against two
   processes with the table sharded, step by step;
3. peak memory per process with four ``rows x 64`` float32 tables: one process
   holding all four (synthembed ``Embedding``, sparse SGD) against two processes
   with the tables sharded table-wise (built on the meta device, so each rank
   allocates only its own tables). ``rows`` is 10,000,000 (2.56 GB per table)
   unless the memory available now is short: then fewer rows, said in the output.

Run (about 5 minutes; the memory part last, about 12 GiB for one process):
    .venv/bin/python benchmarks/distributed.py --out benchmarks/results/distributed.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

V, D, BATCH, WARMUP, STEPS, LR = 200_000, 64, 2048, 3, 20, 0.05


class Tower(nn.Module):
    def __init__(self, tables: list[nn.Module]) -> None:
        super().__init__()
        self.tables = nn.ModuleList(tables)
        self.head = nn.Linear(D, 1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # (B, T) -> (B,)
        vectors = sum(t(ids[:, j]) for j, t in enumerate(self.tables))
        return self.head(vectors).squeeze(-1)  # type: ignore[no-any-return]


def _batch(step: int, rank: int, world: int, rows: int, tables: int) -> tuple[torch.Tensor, ...]:
    """Step ``step``'s global batch, this rank's slice (``world * BATCH`` ids in all)."""
    g = torch.Generator().manual_seed(step)
    ids = torch.randint(0, rows, (world * BATCH, tables), generator=g)
    target = torch.randn(world * BATCH, generator=g)
    part = slice(rank * BATCH, (rank + 1) * BATCH) if world > 1 else slice(None)
    return ids[part], target[part]


def _model(mode: str, rows: int, tables: int) -> tuple[nn.Module, Any]:
    import synthembed as se
    import synthembed.distributed as sd

    torch.manual_seed(0)  # the same initial model in every set-up
    sparse = mode in ("plain", "ddp")  # "ddp_dense": DDP all-reduces the whole table's gradient
    # On the meta device (the memory runs) the tables take no memory until DMP
    # allocates each rank's own shards.
    device = "meta" if mode == "sharded" and rows > V else "cpu"
    # "ddp_fused": the table's SGD runs inside backward, averaged over the ranks at its end.
    fused = {"fused_optimizer": se.optim.SparseSGD(lr=LR)} if mode == "ddp_fused" else {}
    layers: list[nn.Module] = [
        se.Embedding(rows, D, sparse=sparse, device=device, **fused) for _ in range(tables)
    ]
    model = Tower(layers)
    if mode == "sharded":
        # Built after the head: building a TorchRec table draws random numbers.
        for j, table in enumerate(layers):
            model.tables[j] = sd.TorchRecBase(table, name=f"t{j}", device=device)
        wrapped = sd.shard(model, learning_rate=LR, sharding="table_wise")
        return wrapped, torch.optim.SGD(sd.replicated_parameters(wrapped), lr=LR)
    if mode.startswith("ddp"):
        return sd.data_parallel(model), torch.optim.SGD(se.optim.dense_parameters(model), lr=LR)
    return model, torch.optim.SGD(model.parameters(), lr=LR)


def _train(rank: int, world: int, mode: str, rows: int, tables: int, steps: int) -> dict[str, Any]:
    model, opt = _model(mode, rows, tables)
    losses, times = [], []
    for step in range(steps):
        ids, target = _batch(step, rank, world, rows, tables)
        start = time.perf_counter()
        loss = F.mse_loss(model(ids), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
        mean = loss.detach().clone()
        if world > 1:
            dist.all_reduce(mean)
        losses.append(float(mean) / world)
    return {"losses": losses, "times": times}


def _worker(rank: int, world: int, folder: str, kwargs: dict[str, Any]) -> None:
    torch.set_num_threads(1)
    store = os.path.join(folder, "store")  # a group even of one: DDP and DMP need one
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = _train(rank, world, **kwargs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    result.update(peak_gib=peak / 2**20, before_gib=before / 2**20, rank=rank)
    Path(folder, f"rank{rank}.json").write_text(json.dumps(result))
    dist.barrier()
    dist.destroy_process_group()


def run(world: int, **kwargs: Any) -> list[dict[str, Any]]:
    folder = tempfile.mkdtemp()
    mp.spawn(_worker, args=(world, folder, kwargs), nprocs=world, join=True)
    return [json.loads(Path(folder, f"rank{r}.json").read_text()) for r in range(world)]


def available_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--runs", type=int, default=3, help="runs of each throughput set-up")
    args = parser.parse_args()
    lines = [
        "# Distributed training on CPU (benchmarks/distributed.py)",
        "",
        f"torch {torch.__version__}, gloo, one torch thread per process, "
        f"{os.cpu_count()} cores shared with other jobs. Medians over {STEPS - WARMUP} timed steps.",
        "",
    ]

    def emit(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)
        if args.out is not None:
            args.out.write_text("\n".join(lines) + "\n")

    emit(f"## 1. Throughput: a {V:,} x {D} table + linear head, {BATCH} ids per process and step")
    emit()
    emit(
        f"Each set-up runs {args.runs} times, the runs interleaved (set-up by set-up, then "
        "again); a run's step time is the median of its timed steps (the slowest rank's), "
        "and the table gives the median over runs, each run's samples/s beside it."
    )
    emit()
    emit(
        "| set-up | processes | samples/s (all processes) | median step ms | each run, samples/s |"
    )
    emit("|---|---|---|---|---|")
    setups = [
        ("plain", 1),
        ("ddp_dense", 2),
        ("ddp", 1),
        ("ddp", 2),
        ("ddp_fused", 1),
        ("ddp_fused", 2),
        ("sharded", 1),
        ("sharded", 2),
    ]
    steps: dict[tuple[str, int], list[float]] = {setup: [] for setup in setups}
    for _ in range(args.runs):
        for mode, world in setups:
            ranks = run(world, mode=mode, rows=V, tables=1, steps=STEPS)
            steps[mode, world].append(max(statistics.median(r["times"][WARMUP:]) for r in ranks))
    for (mode, world), times in steps.items():
        step = statistics.median(times)
        each = ", ".join(f"{world * BATCH / t:,.0f}" for t in times)
        emit(f"| {mode} | {world} | {world * BATCH / step:,.0f} | {step * 1e3:.1f} | {each} |")
    emit()
    emit("## 2. The same training: one process on the global batch vs two, table sharded")
    emit()
    one = run(1, mode="plain", rows=V, tables=1, steps=STEPS)[0]["losses"]
    # One process sees the global batch of two: the same ids as the two ranks together.
    global_one = _one_process_global(STEPS)
    two = run(2, mode="sharded", rows=V, tables=1, steps=STEPS)[0]["losses"]
    emit("| step | one process (global batch) | two processes, sharded | difference |")
    emit("|---|---|---|---|")
    for s in (0, 1, STEPS // 2, STEPS - 1):
        emit(f"| {s} | {global_one[s]:.6f} | {two[s]:.6f} | {abs(global_one[s] - two[s]):.1e} |")
    emit()
    emit(f"(One process on its own {BATCH}-id batches, for scale: final loss {one[-1]:.6f}.)")
    emit()
    if args.skip_memory:
        return
    need = 4 * args.rows * D * 4  # four float32 tables
    rows = args.rows
    budget = int(0.75 * available_bytes())  # shared machine: at most 75% of what is free now
    if need * 1.3 > budget:
        rows = int(budget / 1.3 / (4 * D * 4)) // 100_000 * 100_000
    emit(f"## 3. Peak memory per process: four {rows:,} x {D} float32 tables")
    emit()
    if rows != args.rows:
        emit(
            f"Asked for {args.rows:,} rows ({need / 2**30:.2f} GiB of tables), but only "
            f"{available_bytes() / 2**30:.1f} GiB were available on this shared machine; "
            f"measured with {rows:,} rows (memory scales with the rows)."
        )
        emit()
    tables_gib = 4 * rows * D * 4 / 2**30
    emit(f"Tables: {tables_gib:.2f} GiB in all. Peak RSS (ru_maxrss) after 3 training steps:")
    emit()
    emit("| set-up | rank | peak RSS GiB | before the model GiB |")
    emit("|---|---|---|---|")
    for mode, world in (("plain", 1), ("sharded", 2)):
        for r in run(world, mode=mode, rows=rows, tables=4, steps=3):
            emit(f"| {mode} ({world} process{'es' if world > 1 else ''}) | {r['rank']} | "
                 f"{r['peak_gib']:.2f} | {r['before_gib']:.2f} |")  # fmt: skip


def _one_process_global(steps: int) -> list[float]:
    """Plain training in this process on the global batches of two ranks."""
    torch.set_num_threads(1)
    model, opt = _model("plain", V, 1)
    losses = []
    for step in range(steps):
        ids, target = _batch_all(step)
        loss = F.mse_loss(model(ids), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def _batch_all(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(step)
    ids = torch.randint(0, V, (2 * BATCH, 1), generator=g)
    return ids, torch.randn(2 * BATCH, generator=g)


if __name__ == "__main__":
    main()
