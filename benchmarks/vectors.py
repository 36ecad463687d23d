"""Word-vector loading and nearest-neighbour search: synthembed against gensim, same run.

Loading: a 100,000 x 300 GloVe text file (written here, values with 5 decimals
as in the GloVe downloads) read by ``gensim.models.KeyedVectors.
load_word2vec_format(no_header=True)`` and by ``synthembed.vectors.
load_vectors`` (no cache), then by ``load_vectors`` again from its cache. Each
read runs in a fresh process, gensim and ours alternating rep by rep (the
machine is shared and noisy); the table gives median seconds and the peak
resident memory the read added (VmHWM after minus VmRSS before; libraries are
imported before the clock starts, in both).

Search: 1,000 top-10 cosine queries (words of the vocabulary, each left out of
its own result as gensim does) over 100,000 x 300 vectors: gensim's
``most_similar`` per query, faiss's flat inner-product index (``IndexFlatIP.search``
on the 1,000 unit query vectors, k=11, the index built beforehand: the bare kernel,
no word lookups), our exact ``most_similar`` with ``backend="faiss"`` and with
``backend="torch"`` (``"auto"``, the default, takes whichever measured faster), and our approximate faiss IVF index (recall@10 against exact). Exact
results are checked against a float64 numpy answer (ties within 1e-6 aside). Two data sets: vectors drawn around
2,000 cluster centres (neighbourhoods like real embeddings have) and plain
isotropic Gaussian vectors (no structure: the hardest case for any approximate
index). Both libraries have their norms cached by a warm-up query first.

Run (OpenBLAS variables unset so numpy, hence gensim, runs its best kernel):
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/vectors.py \\
        --out benchmarks/results/pretrained_vectors.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def worker(kind: str, path: str, cache_dir: str) -> None:
    """One timed read in this process; prints JSON with seconds and added peak memory."""
    if kind == "gensim":
        from gensim.models import KeyedVectors

        def run() -> int:
            kv = KeyedVectors.load_word2vec_format(path, no_header=True)
            return len(kv)
    else:
        from synthembed.formats import arrow_available
        from synthembed.formats import text as text_format
        from synthembed.vectors import load_vectors

        if kind == "numpy":
            text_format._ARROW = False  # the fallback parser (pyarrow not installed)
        else:
            # Imported before the clock, as gensim's dependencies are (first use is timed).
            arrow_available()

        cache = kind == "cached"

        def run() -> int:
            v = load_vectors(path, cache=cache, cache_dir=cache_dir)
            # Touch the data (a memory map's last page must really be read); numpy, not a
            # torch op, which would start torch's thread pool inside the measurement.
            float(v.vectors.numpy()[-1].sum())
            return len(v)

    before = _status_kb("VmRSS")
    start = time.perf_counter()
    cpu = time.process_time()
    n = run()
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    peak = _status_kb("VmHWM")
    print(
        json.dumps(
            {"seconds": seconds, "cpu": cpu, "peak_mb": max(0, peak - before) / 1024, "rows": n}
        )
    )


def _spawn(kind: str, path: Path, cache_dir: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", kind, str(path), str(cache_dir)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_glove(path: Path, rows: int, dim: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    row_fmt = " ".join(["%.5f"] * dim)
    with open(path, "w", encoding="utf-8") as handle:
        for start in range(0, rows, 2000):
            block = rng.normal(0.0, 0.4, size=(min(2000, rows - start), dim))
            handle.write(
                "\n".join(
                    f"w{start + i} " + row_fmt % tuple(r) for i, r in enumerate(block.tolist())
                )
                + "\n"
            )


def bench_loading(rows: int, dim: int, reps: int, workdir: Path) -> list[str]:
    path = workdir / "glove.txt"
    write_glove(path, rows, dim)
    cache_dir = workdir / "cache"
    size_mb = path.stat().st_size / 2**20
    kinds = ["gensim", "ours", "numpy", "cached"]
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    _spawn("cached", path, cache_dir)  # writes the cache (timed separately below)
    load_before = os.getloadavg()
    for rep in range(reps):
        for kind in kinds:
            results[kind].append(_spawn(kind, path, cache_dir))
            print(f"rep {rep} {kind}: {results[kind][-1]}", file=sys.stderr)
    load_after = os.getloadavg()
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in results.items()}
    cpu = {k: statistics.median(r["cpu"] for r in v) for k, v in results.items()}
    mem = {k: statistics.median(r["peak_mb"] for r in v) for k, v in results.items()}
    try:
        import pyarrow

        arrow = f"pyarrow {pyarrow.__version__}"
    except ImportError:
        arrow = "pyarrow missing: both rows use numpy"
    names = {
        "gensim": "gensim `load_word2vec_format(no_header=True)`",
        "ours": f"synthembed `load_vectors` (parse; {arrow})",
        "numpy": "synthembed `load_vectors` (parse; numpy fallback)",
        "cached": "synthembed `load_vectors` (cached reload)",
    }
    lines = [
        f"Loading a {rows:,} x {dim} GloVe text file ({size_mb:.0f} MiB), median of {reps} "
        "fresh processes each, readers interleaved run by run; load average (1 min) "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after:",
        "",
        "| reader | wall s | vs gensim (wall) | CPU s | vs gensim (CPU) | added peak memory (MiB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for k in kinds:
        digits = 3 if k == "cached" else 2
        lines.append(
            f"| {names[k]} | {med[k]:.{digits}f} | {med['gensim'] / med[k]:.1f}x | "
            f"{cpu[k]:.{digits}f} | {cpu['gensim'] / cpu[k]:.1f}x | {mem[k]:.1f} |"
        )
    lines += [
        "",
        "All runs (wall s / CPU s / MiB): "
        + "; ".join(
            f"{k} "
            + ", ".join(f"{r['seconds']:.2f}/{r['cpu']:.2f}/{r['peak_mb']:.1f}" for r in results[k])
            for k in kinds
        ),
    ]
    return lines


def _clustered(rows: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2000, dim)).astype(np.float32)
    labels = rng.integers(0, len(centres), size=rows)
    return (centres[labels] + 0.6 * rng.normal(size=(rows, dim))).astype(np.float32)


def _search_case(name: str, data: np.ndarray, n_queries: int, reps: int) -> list[str]:
    import torch
    from gensim.models import KeyedVectors

    from synthembed.ann import ApproximateIndex
    from synthembed.search import most_similar, search
    from synthembed.vectors import Vectors

    rows = len(data)
    words = [f"w{i}" for i in range(rows)]
    kv = KeyedVectors(vector_size=data.shape[1])
    kv.add_vectors(words, data)
    vectors = Vectors(words, torch.from_numpy(data))
    rng = np.random.default_rng(2)
    queries = [words[i] for i in rng.choice(rows, size=n_queries, replace=False)]
    import faiss

    kv.most_similar(queries[0], topn=10)  # fills gensim's norm cache
    most_similar(vectors, queries[:32], k=10, backend="faiss")  # fills ours (unit rows)
    most_similar(vectors, queries[:32], k=10, backend="torch")  # and their bf16 copy
    unit_np = vectors.unit_vectors().numpy()
    flat = faiss.IndexFlatIP(unit_np.shape[1])
    flat.add(unit_np)
    q_np = unit_np[[vectors.index(q) for q in queries]]
    t_g, t_e, t_f, t_t = [], [], [], []
    ref: list[list[str]] = []
    exact: list[list[str]] = []
    exact_torch: list[list[str]] = []
    for _ in range(reps):
        s = time.perf_counter()
        ref = [[w for w, _ in kv.most_similar(q, topn=10)] for q in queries]
        t_g.append(time.perf_counter() - s)
        s = time.perf_counter()
        flat.search(q_np, 11)
        t_f.append(time.perf_counter() - s)
        s = time.perf_counter()
        batch = most_similar(vectors, queries, k=10, backend="faiss")
        exact = [[w for w, _ in r] for r in batch]  # type: ignore[misc]
        t_e.append(time.perf_counter() - s)
        s = time.perf_counter()
        batch = most_similar(vectors, queries, k=10, backend="torch")
        exact_torch = [[w for w, _ in r] for r in batch]  # type: ignore[misc]
        t_t.append(time.perf_counter() - s)
    agree = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ref, exact)])
    # Exactness against float64 numpy: the same top-10 set, or a 10th score tied within 1e-6.
    scores64 = q_np.astype(np.float64) @ unit_np.astype(np.float64).T  # (Q, V)
    q_rows = [vectors.index(q) for q in queries]
    scores64[np.arange(len(queries)), q_rows] = -np.inf
    top64 = np.argsort(-scores64, axis=1)[:, :10]
    tenth = scores64[np.arange(len(queries)), top64[:, -1]]

    def exact_share(found: list[list[str]]) -> float:
        ok = 0
        for i, words_i in enumerate(found):
            got = {vectors.index(w) for w in words_i}
            ok += got == set(top64[i].tolist()) or all(
                scores64[i, j] >= tenth[i] - 1e-6 for j in got
            )
        return ok / len(found)

    exact_ok, torch_ok = exact_share(exact), exact_share(exact_torch)
    rows_q = torch.tensor([vectors.index(q) for q in queries])
    unit_q = vectors.unit_vectors()[rows_q]
    _, exact_ids = search(vectors.unit_vectors(), unit_q, 10, exclude=rows_q.unsqueeze(1))
    s = time.perf_counter()
    index = ApproximateIndex(vectors, target_recall=0.95)  # IVF-Flat, nprobe calibrated
    build = time.perf_counter() - s
    calibrated = index.nprobe
    results = {}
    for nprobe in sorted({max(1, calibrated // 2), calibrated, min(index.nlist, calibrated * 2)}):
        index.nprobe = nprobe
        t_a = []
        approx: Any = []
        for _ in range(reps):
            s = time.perf_counter()
            approx = most_similar(vectors, queries, k=10, index=index)
            t_a.append(time.perf_counter() - s)
        ids = [[vectors.index(w) for w, _ in r] for r in approx]
        recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(ids, exact_ids.tolist())])
        results[nprobe] = (statistics.median(t_a), recall, t_a)
    g = statistics.median(t_g)
    e = statistics.median(t_e)
    f = statistics.median(t_f)
    tt = statistics.median(t_t)
    ratio_f = statistics.median(a / b for a, b in zip(t_e, t_f))
    lines = [
        f"| {name} | gensim `most_similar`, one query at a time | {g:.3f} | 1.0x | 1.000 | |",
        f"| {name} | faiss `IndexFlatIP.search` (bare kernel, k=11) | {f:.3f} | {g / f:.1f}x "
        "| exact | |",
        f"| {name} | synthembed `most_similar` exact (faiss backend) | {e:.3f} | {g / e:.1f}x | "
        f"{agree:.3f} (vs gensim); exact on {exact_ok:.1%} | |",
        f"| {name} | synthembed `most_similar` exact (torch backend) | {tt:.3f} | {g / tt:.1f}x "
        f"| exact on {torch_ok:.1%} | |",
        f"| {name} | (ours / faiss flat, median of same-run ratios) | {ratio_f:.2f}x | | | |",
    ]
    for nprobe, (t, recall, _) in results.items():
        tag = " (calibrated)" if nprobe == calibrated else ""
        lines.append(
            f"| {name} | synthembed faiss IVF-Flat (nlist={index.nlist}, nprobe={nprobe}{tag}) | "
            f"{t:.3f} | {g / t:.0f}x | {recall:.3f} | {build:.1f} |"
        )
    lines.append(
        f"| {name} | (all runs, s) | gensim {', '.join(f'{x:.2f}' for x in t_g)}; faiss flat "
        f"{', '.join(f'{x:.3f}' for x in t_f)}; exact {', '.join(f'{x:.3f}' for x in t_e)}; "
        f"torch {', '.join(f'{x:.3f}' for x in t_t)}; IVF calibrated "
        f"{', '.join(f'{x:.3f}' for x in results[calibrated][2])} | | | |"
    )
    print("\n".join(lines), file=sys.stderr)
    return lines


def bench_search(rows: int, dim: int, n_queries: int, reps: int) -> list[str]:
    import torch

    load = os.getloadavg()[0]
    lines = [
        f"{n_queries:,} top-10 queries over {rows:,} x {dim} vectors (median of {reps} runs; "
        f"gensim and exact interleaved; torch threads: {torch.get_num_threads()}; load average "
        f"(1 min) {load:.1f} at the start):",
        "",
        "| data | method | seconds | speed-up vs gensim | recall@10 vs exact | build (s) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    lines += _search_case("2,000 clusters", _clustered(rows, dim, 0), n_queries, reps)
    gaussian = np.random.default_rng(1).normal(size=(rows, dim)).astype(np.float32)
    lines += _search_case("isotropic Gaussian", gaussian, n_queries, reps)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", default=None, help="write the markdown tables here")
    parser.add_argument("--skip-loading", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument(
        "--worker", nargs=3, metavar=("KIND", "PATH", "CACHE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(
            f"{i.get('internal_api')} {i.get('architecture', '')} x{i.get('num_threads')}"
            for i in threadpool_info()
        )
    except ImportError:
        blas = "unknown"
    header = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared); "
        f"Python {platform.python_version()}; numpy BLAS: {blas}; "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}.",
        "",
    ]
    body: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_loading:
            body += [*bench_loading(args.rows, args.dim, args.reps, Path(tmp)), ""]
    if not args.skip_search:
        body += bench_search(args.rows, args.dim, args.queries, args.reps)
    text = "\n".join(header + body) + "\n"
    print(text)
    if args.out:
        from synthembed.io import atomic_write

        with atomic_write(args.out, "w") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()
