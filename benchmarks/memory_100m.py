"""Peak memory of one training step at 100,000,000 ids x 128 (issue 14: "100M ids in 2.5 GB").

For each configuration, a fresh process builds
``SyntheticEmbeddingLayer(100_000_000, 128, synthesis_rate=0.0, base=B, base_options=...)``,
makes one training step on 65,536 uniform ids (forward, backward of a fixed upstream
gradient, optimizer step) and reports its peak RSS (``VmHWM`` of ``/proc/self/status``)
and where the memory goes: every named parameter and buffer with its bytes, the
gradients after backward and the optimizer state after the step, and ``VmRSS`` /
``VmHWM`` after each stage (so a failed run still shows how far it got).

Optimizers: the parameters with sparse gradients (the tables of ``hash`` and ``qr``
built with ``sparse=True``) go to ``synthembed.optim.SparseAdamW`` or
``RowWiseAdagrad`` (``--optim``); the dense ones (DHE's MLP: ``synthembed.optim`` is
row-sparse only) to ``torch.optim.AdamW``, or to the fused-table optimizer when the
base takes ``fused_optimizer`` (``--fused``).

Each child runs under ``RLIMIT_AS`` (``--limit-gib``, default 8 GiB of address space),
so a blow-up fails in the child instead of swapping a shared machine; the failure is
reported with the stage it reached. Configurations run one at a time.

Run:
    .venv/bin/python benchmarks/memory_100m.py                  # prints the table
    .venv/bin/python benchmarks/memory_100m.py --write          # writes results/memory_100m.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "memory_100m.md"
ROWS, DIM, BATCH = 100_000_000, 128, 65_536
GOAL_GIB = 2.5

#: (label, base, base_options): today's defaults first, then the sizes we propose
CONFIGS: list[tuple[str, str, dict[str, Any]]] = [
    ("hash, defaults, dense gradients (the issue's run)", "hash", {}),
    ("hash, defaults", "hash", {"sparse": True}),
    (
        "hash, 1M pool rows, 4M hashed importance rows",
        "hash",
        {"sparse": True, "num_buckets": 1_048_576, "num_weights": 4_194_304},
    ),
    (
        "hash, 512K pool rows, 4M hashed importance rows",
        "hash",
        {"sparse": True, "num_buckets": 524_288, "num_weights": 4_194_304},
    ),
    ("qr, defaults", "qr", {"sparse": True}),
    ("dhe, defaults", "dhe", {}),
]


def _status_mib() -> dict[str, float]:
    out = {}
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            key = line.split(":")[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(line.split()[1]) / 1024
    return out


def _say(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def _nbytes(t: Any) -> int:
    import torch

    if t is None:
        return 0
    if isinstance(t, torch.Tensor) and t.is_sparse:
        return int(t._values().nbytes + t._indices().nbytes)
    return int(t.nbytes) if isinstance(t, torch.Tensor) else 0


def _child(spec: dict[str, Any]) -> None:
    import torch

    torch.set_num_threads(2)
    import synthembed
    from synthembed import optim

    def stage(name: str, **extra: Any) -> None:
        _say({"stage": name, **_status_mib(), **extra})

    ids = torch.randint(0, ROWS, (BATCH,), generator=torch.Generator().manual_seed(0))
    upstream = torch.randn(BATCH, DIM, generator=torch.Generator().manual_seed(1))
    stage("imports")
    options = dict(spec["options"])
    if spec["fused"]:
        options["fused_optimizer"] = optim.RowWiseAdagrad(lr=0.01)  # type: ignore[call-arg,unused-ignore]
    layer = synthembed.SyntheticEmbeddingLayer(
        ROWS, DIM, synthesis_rate=0.0, base=spec["base"], base_options=options
    )
    tensors = {
        **{f"param {n}": p for n, p in layer.named_parameters()},
        **{f"buffer {n}": b for n, b in layer.named_buffers()},
    }
    stage(
        "built", tensors={k: [list(t.shape), str(t.dtype), _nbytes(t)] for k, t in tensors.items()}
    )
    sparse_params, dense_params = [], []
    for module in layer.modules():
        if isinstance(module, torch.nn.Embedding) and module.sparse:
            sparse_params.append(module.weight)
    ids_sparse = {id(p) for p in sparse_params}
    dense_params = [p for p in layer.parameters() if id(p) not in ids_sparse and p.requires_grad]
    cls = optim.SparseAdamW if spec["optim"] == "adamw" else optim.RowWiseAdagrad
    opts: list[Any] = []
    if spec["optim"] == "torch_adam":
        opts.append(torch.optim.Adam(layer.parameters(), lr=1e-3))
    elif sparse_params:
        opts.append(cls(sparse_params, lr=0.01))
    if dense_params:
        opts.append(torch.optim.AdamW(dense_params, lr=1e-3))
    layer.train()
    out = layer(ids)
    stage("forward")
    out.backward(upstream)
    del out
    grads = {n: _nbytes(p.grad) for n, p in layer.named_parameters() if p.grad is not None}
    stage("backward", grads=grads)
    for opt in opts:
        opt.step()
    state = 0
    for opt in opts:
        for st in opt.state.values():
            state += sum(_nbytes(v) for v in st.values() if isinstance(v, torch.Tensor))
    stage("step", optimizer_state=state, optimizers=[type(o).__name__ for o in opts])


def _run(spec: dict[str, Any], limit_gib: float) -> dict[str, Any]:
    def guard() -> None:
        lim = int(limit_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))

    start = time.time()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        preexec_fn=guard,
        cwd=ROOT,
        check=False,
    )
    stages = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
    res: dict[str, Any] = {"stages": stages, "seconds": time.time() - start}
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        if "you tried to allocate" in tail:  # torch's allocator message, shortened
            size = tail.split("you tried to allocate ")[1].split(" ")[0]
            tail = f"out of address space allocating {size} bytes"
        res["error"] = (
            f"exit {proc.returncode} after stage {stages[-1]['stage'] if stages else '-'}: {tail[:200]}"
        )
    return res


def _gib(mib: float) -> str:
    return f"{mib / 1024:.2f}"


def report(rows: list[tuple[str, dict[str, Any], dict[str, Any]]], limit: float) -> str:
    out = [
        f"Each row: a fresh process under RLIMIT_AS {limit:g} GiB; one training step on "
        f"{BATCH:,} uniform ids of [0, {ROWS:,}); 2 threads. Every column is the process's "
        "VmHWM (GiB, imports included) at the end of that stage; the last one is the peak.",
        "",
        "| configuration | optimizer | imports GiB | after build | after forward | after backward "
        "| peak (VmHWM) GiB | <= 2.5 GiB? |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for label, spec, res in rows:
        by = {s["stage"]: s for s in res["stages"]}
        cols = [
            _gib(by[k]["VmHWM"]) if k in by else "-"
            for k in ("imports", "built", "forward", "backward")
        ]
        peak = max((s["VmHWM"] for s in res["stages"]), default=0.0)
        ok = "yes" if "step" in by and peak / 1024 <= GOAL_GIB else "no"
        opt = "fused RowWiseAdagrad" if spec["fused"] else spec["optim_label"]
        if "error" in res:
            ok = f"no: failed ({res['error']})"
        out.append(
            f"| {label} | {opt} | {' | '.join(cols)} | {_gib(peak) if 'step' in by else f'>{_gib(peak)}'} | {ok} |"
        )
    out += ["", "Where it goes (bytes of each tensor, measured in the same processes):", ""]
    for label, spec, res in rows:
        by = {s["stage"]: s for s in res["stages"]}
        if "built" not in by:
            continue
        parts = [
            f"{name} {tuple(shape)} {dtype.replace('torch.', '')} {nbytes / 2**20:,.1f} MiB"
            for name, (shape, dtype, nbytes) in sorted(
                by["built"]["tensors"].items(), key=lambda kv: -kv[1][2]
            )
            if nbytes >= 2**20
        ]
        small = sum(v[2] for v in by["built"]["tensors"].values() if v[2] < 2**20)
        grads = sum(by["backward"]["grads"].values()) if "backward" in by else None
        state = by["step"]["optimizer_state"] if "step" in by else None
        line = f"- **{label}** ({spec['optim_label']}): " + "; ".join(parts)
        line += f"; smaller tensors {small / 2**20:.1f} MiB"
        if grads is not None:
            line += f"; gradients after backward {grads / 2**20:,.1f} MiB"
        if state is not None:
            line += f"; optimizer state after the step {state / 2**20:,.1f} MiB"
        out.append(line + ".")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--optim", default="adamw,rowwise", help="adamw, rowwise or both")
    parser.add_argument("--fused", action="store_true", help="also run fused_optimizer= tables")
    parser.add_argument("--limit-gib", type=float, default=8.0)
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated: run configurations whose label has one of these",
    )
    parser.add_argument("--write", action="store_true", help=f"write {RESULT.name}")
    parser.add_argument("--tag", default="main", help="--write replaces this tag's block only")
    args = parser.parse_args()
    if args.child:
        _child(json.loads(args.child))
        return
    rows = []
    load = os.getloadavg()[0]
    for label, base, options in CONFIGS:
        if args.only and not any(part in label for part in args.only.split(",")):
            continue
        for name in args.optim.split(","):
            for fused in (False, True) if args.fused else (False,):
                if fused and ("sparse" not in options or name != "rowwise"):
                    continue  # fused: RowWiseAdagrad inside backward, once per table base
                opt_label = {"adamw": "SparseAdamW", "rowwise": "RowWiseAdagrad"}[name]
                dense = "sparse" not in options
                if dense:  # no sparse gradients: torch's dense optimizers
                    if name != args.optim.split(",")[0]:
                        continue
                    opt_label = "torch AdamW (MLP: dense)" if base == "dhe" else "torch Adam"
                    name = name if base == "dhe" else "torch_adam"
                spec = {
                    "base": base,
                    "options": {k: v for k, v in options.items() if not (fused and k == "sparse")},
                    "optim": name,
                    "fused": fused,
                    "optim_label": opt_label,
                }
                res = _run(spec, args.limit_gib)
                peak = max((s["VmHWM"] for s in res["stages"]), default=0.0)
                print(
                    f"{label} / {opt_label}{' fused' if fused else ''}: peak {peak / 1024:.2f} GiB "
                    f"{res.get('error', '')}",
                    flush=True,
                )
                rows.append((label, spec, res))
    text = report(rows, args.limit_gib)
    text += f"\n\nLoad average {load:.1f} at the start."
    print(text)
    if args.write:
        begin, end = (
            f"<!-- memory_100m:{args.tag}:begin -->",
            f"<!-- memory_100m:{args.tag}:end -->",
        )
        old = RESULT.read_text(encoding="utf-8") if RESULT.exists() else ""
        if begin not in old or end not in old:
            old = old.rstrip() + f"\n\n{begin}\n{end}\n"
        pre, rest = old.split(begin, 1)
        post = rest.split(end, 1)[1]
        cmd = " ".join(["benchmarks/memory_100m.py", *sys.argv[1:]])
        RESULT.write_text(
            f"{pre}{begin}\nCommand: `.venv/bin/python {cmd}`\n\n{text}\n{end}{post}",
            encoding="utf-8",
        )
        print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
