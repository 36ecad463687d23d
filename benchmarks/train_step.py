"""Train-step speed and peak memory of large embedding tables (issue 14).

One training step = zero the gradients, forward, backward (a fixed upstream
gradient), optimizer step. Variants, each on the same ids:

- ``torch_adam``: ``torch.nn.Embedding`` (or ``nn.EmbeddingBag``) + dense ``torch.optim.Adam``
- ``torch_sparse_adam``: the same with ``sparse=True`` + ``torch.optim.SparseAdam``
- ``fbgemm_rowwise``: FBGEMM's CPU table-batched embedding (``SplitTableBatchedEmbeddingBags
  Codegen``, ``EmbeddingLocation.HOST``, ``ComputeDevice.CPU``) with its fused
  ``EXACT_ROWWISE_ADAGRAD`` (``PoolingMode.NONE`` unpooled, ``SUM`` for bags)
- ``ours_rowwise`` / ``ours_adamw``: ``synthembed.Embedding(sparse=True)`` +
  ``synthembed.optim.RowWiseAdagrad`` / ``SparseAdamW``
- ``ours_fused``: ``synthembed.Embedding(V, D, fused_optimizer=RowWiseAdagrad(lr=0.01))``
  (reported "not available" when this build lacks it)

Each variant runs in a fresh subprocess (so its peak RSS is its own, and the
10M-row tables of all variants never share one process). The variants are
interleaved round by round: round r runs every variant once, in an order rotated
by r; each run does 2 warm-up steps and ``--reps`` timed steps. A variant's time
is the median of all its timed steps; each ratio is the median over rounds of the
ratio of the two variants' medians in that round (same-run ratios).

The physical bound: the bytes a step must touch (distinct rows read and written,
their optimizer state read and written, the ids, the output written and its
gradient read) over the copy bandwidth of this machine, measured in every round
by a fresh subprocess (a 512 MiB ``Tensor.copy_`` on 2 threads, read + write
counted).

Run:
    .venv/bin/python benchmarks/train_step.py --quick              # smoke run, small V
    .venv/bin/python benchmarks/train_step.py --write              # writes results/train_step.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "train_step.md"
THREADS = 2
BAG = 20
LR = 0.01
VARIANTS = (
    "torch_adam",
    "torch_sparse_adam",
    "fbgemm_rowwise",
    "ours_rowwise",
    "ours_adamw",
    "ours_fused",
)
LABELS = {
    "torch_adam": "nn.Embedding + Adam (dense)",
    "torch_sparse_adam": "nn.Embedding(sparse=True) + SparseAdam",
    "fbgemm_rowwise": "FBGEMM CPU TBE, fused row-wise Adagrad",
    "ours_rowwise": "ours: Embedding(sparse=True) + optim.RowWiseAdagrad",
    "ours_adamw": "ours: Embedding(sparse=True) + optim.SparseAdamW",
    "ours_fused": "ours fused: Embedding(fused_optimizer=RowWiseAdagrad)",
}
#: optimizer state per row, in floats (D = one Adam moment); for the bound
ADAM_LIKE = {"torch_adam", "torch_sparse_adam", "ours_adamw"}


# --------------------------------------------------------------------------- child side
def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _make_ids(spec: dict[str, Any]) -> Any:
    import numpy as np
    import torch

    rows, n, dist = spec["rows"], spec["n"], spec["ids"]
    rng = np.random.default_rng(spec["seed"])
    if dist == "uniform":
        ids = rng.integers(0, rows, n)
    else:  # Zipf(1.1) ranks, resampled until < rows, scattered over the table
        ranks = rng.zipf(1.1, n)
        while (bad := ranks > rows).any():
            ranks[bad] = rng.zipf(1.1, int(bad.sum()))
        ids = ((ranks - 1) * 2_654_435_761) % rows  # rank 1 -> row 0; a fixed odd stride
    if spec["pooled"]:
        ids = ids[: n // BAG * BAG]  # whole bags: 65,536 ids -> 3,276 bags of 20
    return torch.from_numpy(ids.astype(np.int64))


def _build(variant: str, spec: dict[str, Any], ids: Any) -> Any:
    """(step function, module, optimizer or None) for one variant."""
    import torch
    from torch import nn

    rows, dim, pooled = spec["rows"], spec["dim"], spec["pooled"]
    bags = ids.reshape(-1, BAG) if pooled else ids
    out_rows = bags.shape[0]
    grad = torch.randn(out_rows, dim, generator=torch.Generator().manual_seed(1))

    if variant.startswith("torch_"):
        sparse = variant == "torch_sparse_adam"
        layer: Any = (
            nn.EmbeddingBag(rows, dim, mode="sum", sparse=sparse)
            if pooled
            else nn.Embedding(rows, dim, sparse=sparse)
        )
        opt: Any = (
            torch.optim.SparseAdam(layer.parameters(), lr=LR)
            if sparse
            else torch.optim.Adam(layer.parameters(), lr=LR)
        )

        def step() -> None:
            opt.zero_grad()
            layer(bags).backward(grad)
            opt.step()

        return step, layer, opt

    if variant == "fbgemm_rowwise":
        from fbgemm_gpu.split_embedding_configs import EmbOptimType
        from fbgemm_gpu.split_table_batched_embeddings_ops_common import (
            EmbeddingLocation,
            PoolingMode,
        )
        from fbgemm_gpu.split_table_batched_embeddings_ops_training import (
            ComputeDevice,
            SplitTableBatchedEmbeddingBagsCodegen,
        )

        tbe = SplitTableBatchedEmbeddingBagsCodegen(
            [(rows, dim, EmbeddingLocation.HOST, ComputeDevice.CPU)],
            optimizer=EmbOptimType.EXACT_ROWWISE_ADAGRAD,
            learning_rate=LR,
            eps=1e-8,
            pooling_mode=PoolingMode.SUM if pooled else PoolingMode.NONE,
            device=torch.device("cpu"),
        )
        offsets = torch.arange(0, ids.numel() + 1, BAG if pooled else 1, dtype=torch.long)

        def step() -> None:
            tbe(ids, offsets).backward(grad)  # the optimizer runs inside backward

        return step, tbe, None

    import synthembed
    from synthembed import optim

    mode: Any = "sum" if pooled else None
    if variant == "ours_fused":
        try:
            fused: Any = optim.RowWiseAdagrad(lr=LR)  # type: ignore[call-arg,unused-ignore]
            make: Any = synthembed.Embedding
            layer = make(rows, dim, mode=mode, fused_optimizer=fused)
        except TypeError as exc:
            raise NotImplementedError(f"fused_optimizer not available: {exc}") from exc

        def fused_step() -> None:
            layer(bags).backward(grad)  # the rows are updated inside backward

        return fused_step, layer, None

    layer = synthembed.Embedding(rows, dim, mode=mode, sparse=True)
    cls = optim.RowWiseAdagrad if variant == "ours_rowwise" else optim.SparseAdamW
    opt = cls(layer.parameters(), lr=LR)

    def ours_step() -> None:
        opt.zero_grad()
        layer(bags).backward(grad)
        opt.step()

    return ours_step, layer, opt


def _child_copy(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(THREADS)
    n = 512 * 2**20 // 4
    src = torch.full((n,), 1.5)  # every page written before the copies
    dst = torch.empty(n)
    times = []
    for i in range(spec["reps"] + 2):
        start = time.perf_counter()
        dst.copy_(src)
        if i >= 2:
            times.append(time.perf_counter() - start)
    sec = statistics.median(times)
    return {"copy_gbps": 2 * src.nbytes / sec / 1e9, "copy_ms": sec * 1e3}


def _worker(spec: dict[str, Any]) -> None:
    """Build one variant, warm it up, then answer the parent's commands on stdin:
    ``run K`` times K steps, ``done`` reports the peak memory and exits."""
    import torch

    torch.set_num_threads(THREADS)
    if spec["variant"] == "fbgemm_rowwise":
        import fbgemm_gpu  # noqa: F401  (its import is part of the baseline)
    else:
        import synthembed  # noqa: F401
    ids = _make_ids(spec)
    baseline = _status_kib("VmRSS")
    try:
        step, layer, _ = _build(spec["variant"], spec, ids)
        weight: Any = None
        if spec["variant"] != "fbgemm_rowwise":
            weight = next(iter(layer.parameters()))
        before = None if weight is None else weight.detach()[ids[:8]].clone()
        for _ in range(2):
            step()
    except (NotImplementedError, TypeError, RuntimeError, ValueError) as exc:
        _say({"error": f"{type(exc).__name__}: {str(exc)[:150]}"})
        return
    if before is not None and torch.equal(weight.detach()[ids[:8]], before):
        _say({"error": "the step did not change the rows it looked up"})
        return
    if spec["variant"] == "ours_fused" and weight is not None and weight.grad is not None:
        _say({"error": "fused mode left a gradient on the table"})
        return
    _say({"ready": True, "distinct": int(ids.unique().numel())})
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "run":
            times = []
            for _ in range(int(cmd[1])):
                start = time.perf_counter()
                step()
                times.append((time.perf_counter() - start) * 1e3)
            _say({"times_ms": times})
        else:
            _say({"peak_mib": (_status_kib("VmHWM") - baseline) / 1024})
            return


def _say(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


# --------------------------------------------------------------------------- parent side
def _need_gib(variant: str, rows: int, dim: int) -> float:
    """A generous estimate of a variant's peak, to skip what this machine cannot hold now."""
    table = rows * dim * 4 / 2**30
    factor = {"torch_adam": 5.0, "torch_sparse_adam": 3.3, "ours_adamw": 3.3}.get(variant, 1.3)
    return table * factor + 0.5


def _available_gib() -> float:
    with open("/proc/meminfo", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    return 0.0


def _guard(limit_gib: float) -> Any:
    def guard() -> None:  # a blow-up fails in the child instead of swapping the machine
        lim = int(limit_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))

    return guard


def _copy_gbps() -> float:
    """The machine's copy bandwidth now, measured in a fresh process."""
    proc = subprocess.run(
        [sys.executable, __file__, "--copy"],
        capture_output=True,
        text=True,
        preexec_fn=_guard(8.0),
        cwd=ROOT,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    return float(json.loads(lines[-1])["copy_gbps"]) if lines else float("nan")


class Worker:
    """One variant in its own process (see :func:`_worker`)."""

    def __init__(self, spec: dict[str, Any], limit_gib: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_guard(limit_gib),
            cwd=ROOT,
        )
        self.info: dict[str, Any] = {}

    def wait_ready(self) -> Worker:
        """Read the worker's first reply (ready, or the error that stopped it)."""
        self.info = self._read()
        return self

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                return dict(json.loads(line))
        self.proc.wait()
        assert self.proc.stderr is not None
        tail = (self.proc.stderr.read().strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {self.proc.returncode}: {tail[:160]}"}

    @property
    def ok(self) -> bool:
        return "ready" in self.info

    def run(self, steps: int) -> list[float]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"run {steps}\n")
        self.proc.stdin.flush()
        reply = self._read()
        if "times_ms" not in reply:
            self.info = reply
            return []
        return list(reply["times_ms"])

    def finish(self) -> float | None:
        if not self.ok:
            self.proc.wait()
            return None
        assert self.proc.stdin is not None
        self.proc.stdin.write("done\n")
        self.proc.stdin.flush()
        reply = self._read()
        self.proc.wait()
        return float(reply["peak_mib"]) if "peak_mib" in reply else None


def _need_gib_case(case: dict[str, Any], variants: list[str]) -> float:
    return sum(_need_gib(v, case["rows"], case["dim"]) for v in variants)


def run_case(
    case: dict[str, Any],
    variants: list[str],
    rounds: int,
    reps: int,
    copy: list[float],
    mode: str = "auto",
) -> dict[str, dict[str, Any]]:
    """Time every variant on ``case``: ``{variant: {times_ms, peak_mib, distinct} or {error}}``.

    When all variants fit in memory together, each lives in one worker for the whole case
    and the steps are interleaved one by one (``reps`` rounds of one step each, the order
    rotated every round). Otherwise (the 10M-row tables) each round starts every variant in
    a fresh worker, one at a time, for ``reps // rounds`` steps (at least 2).
    """
    copy.append(_copy_gbps())
    out: dict[str, dict[str, Any]] = {v: {"times_ms": [], "peaks": []} for v in variants}
    spec = {**case, "seed": 0}
    fits = _need_gib_case(case, variants) < _available_gib() - 1.0
    together = fits if mode == "auto" else mode == "together"
    schedule = [(reps, 1)] if together else [(rounds, max(2, -(-reps // rounds)))]
    turns, per_turn = schedule[0]

    def launch(v: str) -> Worker | None:
        need = _need_gib(v, case["rows"], case["dim"])
        if need > _available_gib() - 1.0:
            out[v]["error"] = f"skipped: needs ~{need:.1f} GiB, {_available_gib():.1f} free"
            return None
        return Worker({**spec, "variant": v}, need + 6.0)

    def ready(v: str, w: Worker | None) -> Worker | None:
        if w is None:
            return None
        w.wait_ready()
        if not w.ok:
            out[v]["error"] = w.info.get("error", "failed")
            w.finish()
            return None
        out[v]["distinct"] = w.info["distinct"]
        return w

    def start(v: str) -> Worker | None:
        return ready(v, launch(v))

    workers: dict[str, Worker | None] = {}
    if together:  # start every worker at once (imports overlap), then wait for each
        launched = {v: launch(v) for v in variants}
        workers = {v: ready(v, w) for v, w in launched.items()}
    for turn in range(turns):
        order = variants[turn % len(variants) :] + variants[: turn % len(variants)]
        for v in order:
            w = workers.get(v) if together else start(v)
            if w is None:
                continue
            times = w.run(per_turn)
            if not times:
                out[v]["error"] = w.info.get("error", "failed")
                workers[v] = None
            out[v]["times_ms"] += times
            if not together:
                out[v]["peaks"].append(w.finish())
        if not together:
            copy.append(_copy_gbps())
    for v, w in workers.items():
        if w is not None:
            out[v]["peaks"].append(w.finish())
    print(
        "  (all variants in parallel workers, steps interleaved one by one)"
        if together
        else f"  (one variant at a time, {turns} rounds of {per_turn} steps in fresh workers)",
        flush=True,
    )
    how = (
        f"interleaved step by step, {reps} steps each"
        if together
        else f"{turns} rounds x {per_turn} steps, each variant in a fresh process per round"
    )
    for v, res in out.items():
        res["mode"] = how
        peaks = [x for x in res.pop("peaks") if x is not None]
        if peaks:
            res["peak_mib"] = max(peaks)
        if res["times_ms"]:
            res.pop("error", None)
            ms = statistics.median(res["times_ms"])
            print(f"  {v}: {ms:.1f} ms, peak {res.get('peak_mib', 0):.0f} MiB", flush=True)
        else:
            print(f"  {v}: {res.get('error')}", flush=True)
    copy.append(_copy_gbps())
    return out


def _bound_bytes(
    variant: str, n: int, distinct: int, dim: int, pooled: bool, adam_state: bool
) -> int:
    out_rows = n // BAG if pooled else n
    rows_rw = 2 * distinct * dim * 4  # each distinct row read once and written once
    state = 2 * distinct * (2 * dim if adam_state else 1) * 4  # state read + written
    io = n * 8 + 2 * out_rows * dim * 4  # ids; output written, its gradient read
    return rows_rw + state + io


def _ratio(results: dict[str, dict[str, Any]], variant: str, peer: str) -> float | None:
    """Median step time of ``variant`` over that of ``peer``, both from this run."""
    a = results.get(variant, {}).get("times_ms")
    b = results.get(peer, {}).get("times_ms")
    return statistics.median(a) / statistics.median(b) if a and b else None


def _fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def case_table(case: dict[str, Any], results: dict[str, dict[str, Any]], gbps: float) -> list[str]:
    lines = [
        "| variant | ms / step | / dense Adam | / SparseAdam | / FBGEMM | bound ms | / bound "
        "| peak MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    distinct = next((r["distinct"] for r in results.values() if "distinct" in r), None)
    for v, res in results.items():
        if not res.get("times_ms"):
            lines.append(f"| {LABELS[v]} | {res.get('error', 'no result')} | | | | | | |")
            continue
        ms = statistics.median(res["times_ms"])
        nbytes = _bound_bytes(
            v, case["n"], res["distinct"], case["dim"], case["pooled"], v in ADAM_LIKE
        )
        bound_ms = nbytes / (gbps * 1e9) * 1e3
        peak = res.get("peak_mib")
        lines.append(
            f"| {LABELS[v]} | {ms:.1f} | {_fmt_ratio(_ratio(results, v, 'torch_adam'))} "
            f"| {_fmt_ratio(_ratio(results, v, 'torch_sparse_adam'))} "
            f"| {_fmt_ratio(_ratio(results, v, 'fbgemm_rowwise'))} | {bound_ms:.2f} "
            f"| {ms / bound_ms:.1f}x | {'-' if peak is None else f'{peak:.0f}'} |"
        )
    if distinct is not None:
        lines += [
            "",
            f"Timing: {next(iter(results.values()))['mode']}. "
            f"{distinct:,} distinct rows of {case['rows']:,}. Bound bytes: row-wise state "
            f"{_bound_bytes('', case['n'], distinct, case['dim'], case['pooled'], False) / 1e6:.1f}"
            f" MB, Adam state "
            f"{_bound_bytes('', case['n'], distinct, case['dim'], case['pooled'], True) / 1e6:.1f}"
            " MB (Adam rows: dense Adam, SparseAdam, SparseAdamW).",
        ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--copy", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="smoke run: V=20,000 and 50,000")
    parser.add_argument(
        "--reps", type=int, default=7, help="timed steps per variant (after 2 warm-up steps)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="fresh-process rounds when variants cannot coexist"
    )
    parser.add_argument(
        "--mode",
        choices=("auto", "together", "fresh"),
        default="auto",
        help="together: one worker per variant for the whole case, steps interleaved; fresh: "
        "a fresh worker per variant per round; auto: together when all variants fit in memory",
    )
    parser.add_argument("--ids", default="uniform,zipf", help="uniform, zipf or both")
    parser.add_argument("--pooling", default="none,sum", help="none (unpooled), sum (bags) or both")
    parser.add_argument("--tag", default="main", help="--write replaces this tag's block only")
    parser.add_argument(
        "--zipf-cases", default="1m", help="cases that also run Zipf ids (the rest: uniform only)"
    )
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--cases", default="1m,10m", help="1m (V=1M D=128), 10m (V=10M D=64)")
    parser.add_argument("--write", action="store_true", help=f"write {RESULT.name}")
    args = parser.parse_args()
    if args.worker:
        _worker(json.loads(args.worker))
        return
    if args.copy:
        _say(_child_copy({"reps": 5}))
        return

    sizes = {"1m": (1_000_000, 128), "10m": (10_000_000, 64)}
    if args.quick:
        sizes = {"1m": (20_000, 128), "10m": (50_000, 64)}
    rounds, reps = args.rounds, args.reps
    variants = args.variants.split(",")
    n = 65_536 if not args.quick else 4_000
    cases = []
    for key in args.cases.split(","):
        rows, dim = sizes[key]
        for dist in args.ids.split(","):
            if dist == "zipf" and key not in args.zipf_cases.split(","):
                continue
            for pooled in (False, True):
                if pooled and "sum" not in args.pooling.split(","):
                    continue
                if not pooled and "none" not in args.pooling.split(","):
                    continue
                size = n // BAG * BAG if pooled else n
                cases.append({"rows": rows, "dim": dim, "n": size, "ids": dist, "pooled": pooled})

    load_start = os.getloadavg()[0]
    started = time.time()
    copy: list[float] = []
    sections = []
    for case in cases:
        shape = f"bags {case['n'] // BAG:,} x {BAG} (sum)" if case["pooled"] else "unpooled"
        title = f"V={case['rows']:,} D={case['dim']}, {case['n']:,} {case['ids']} ids, {shape}"
        print(title, flush=True)
        results = run_case(case, variants, rounds, reps, copy, args.mode)
        sections.append((title, case, results))
    gbps = statistics.median(c for c in copy if c == c)
    elapsed = time.time() - started
    head = (
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, torch "
        f"{_torch_version()}, {THREADS} threads; 2 warm-up steps, then the timed steps "
        f"(medians; how they were interleaved is under each table). Copy bandwidth "
        f"(512 MiB `Tensor.copy_`, {THREADS} threads, read + write): median {gbps:.1f} GB/s "
        f"(each measurement: {', '.join(f'{c:.1f}' for c in copy)}). Load average "
        f"{load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; "
        f"{elapsed / 60:.1f} min."
    )
    out = [head, ""]
    for title, case, results in sections:
        out += [f"**{title}**", "", *case_table(case, results, gbps), ""]
    text = "\n".join(out)
    print(text)
    if args.write:
        _write(text, args)


def _torch_version() -> str:
    import torch

    return str(torch.__version__)


def _write(text: str, args: argparse.Namespace) -> None:
    """Replace the measured part of results/train_step.md between its two markers."""
    begin, end = f"<!-- train_step:{args.tag}:begin -->", f"<!-- train_step:{args.tag}:end -->"
    old = RESULT.read_text(encoding="utf-8") if RESULT.exists() else f"{begin}\n{end}\n"
    if begin not in old or end not in old:
        old = old.rstrip() + f"\n\n{begin}\n{end}\n"
    pre, rest = old.split(begin, 1)
    post = rest.split(end, 1)[1]
    cmd = " ".join(["benchmarks/train_step.py", *sys.argv[1:]])
    body = f"{begin}\nCommand: `.venv/bin/python {cmd}`\n\n{text}\n{end}"
    RESULT.write_text(pre + body + post, encoding="utf-8")
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
