"""Lookup speed: synthembed.Embedding against torch.nn.Embedding / nn.EmbeddingBag.

Every row times our layer and torch's peer in the same run, on the same
weights and ids, interleaved rep by rep (the machine is shared and noisy), and
reports the median of several reps and the ratio ``ours / torch`` (below 1 is
faster). Our times include the input validation (``check_ids``) that gives the
clear errors. The machine's limits are measured in the same run: memory copy
bandwidth and the best random-row gather we could write (``index_select`` into
a preallocated output on 2 MiB pages).

Run:
    .venv/bin/python benchmarks/lookup.py --out benchmarks/results/lookup.md

Peak memory is about 2.5 GiB (two 1M x 128 tables plus a dense gradient).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from synthembed._kernels import use_kernels
from synthembed.io import atomic_write
from synthembed.layers.embedding import Embedding

THREADS = 2


def _median_ms(fn: Callable[[], Any], reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _with_kernels(fn: Callable[[], Any], kernels: str) -> Callable[[], Any]:
    def run() -> Any:
        with use_kernels(kernels):  # type: ignore[arg-type]
            return fn()

    return run


def _three(
    ours: Callable[[], Any], peer: Callable[[], Any], reps: int
) -> tuple[float, float, float, float]:
    """Median ms of ``ours`` on the fast kernels, of ``ours`` on the reference kernels, and
    of ``peer``. Each kernel set is timed in its own pass, interleaved rep by rep with the
    peer (not with the other set: the reference set's fresh 512 MiB gradients, freed after
    each step, slowed the fast step that followed by a third). The peer's figure is the
    median over both passes; each ratio uses its own pass.

    Returns ``(fast ms, reference ms, peer ms in the fast pass, peer ms in the reference
    pass)``."""
    t_fast, t_peer_a = _paired(_with_kernels(ours, "fast"), peer, reps)
    t_ref, t_peer_b = _paired(_with_kernels(ours, "reference"), peer, reps)
    return t_fast, t_ref, t_peer_a, t_peer_b


def _paired(ours: Callable[[], Any], peer: Callable[[], Any], reps: int) -> tuple[float, float]:
    """Median ms of ``ours`` and ``peer``, interleaved so drifts in load hit both."""
    ours()
    peer()
    t_ours: list[float] = []
    t_peer: list[float] = []
    for _ in range(reps):
        for fn, acc in ((peer, t_peer), (ours, t_ours)):
            start = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - start)
    return statistics.median(t_ours) * 1e3, statistics.median(t_peer) * 1e3


def machine_limits(reps: int) -> list[tuple[str, float, float]]:
    """(what, ms, GB/s) for a 512 MiB copy and a 65,536-row gather from 1M x 128."""
    rows, dim, n = 1_000_000, 128, 65_536
    src = np.random.default_rng(0).standard_normal((rows, dim), dtype=np.float32)
    dst = np.empty_like(src)
    ms = _median_ms(lambda: np.copyto(dst, src), reps)
    out: list[tuple[str, float, float]] = [
        ("memory copy, 512 MiB (numpy copyto; read + write counted)", ms, 2 * src.nbytes / ms / 1e6)
    ]
    dst = np.empty(0, np.float32)  # free the copy target before the gathers
    ids = np.random.default_rng(1).integers(0, rows, n)
    gathered = np.empty((n, dim), np.float32)
    nbytes = gathered.nbytes
    ms = _median_ms(lambda: np.take(src, ids, axis=0, out=gathered), reps)
    out.append(
        ("row gather, numpy take into preallocated output (1 thread)", ms, nbytes / ms / 1e6)
    )
    w, i, o = torch.from_numpy(src), torch.from_numpy(ids), torch.from_numpy(gathered)
    ms = _median_ms(lambda: torch.index_select(w, 0, i, out=o), reps)
    out.append(
        (
            f"row gather, torch index_select into preallocated output ({THREADS} threads)",
            ms,
            nbytes / ms / 1e6,
        )
    )
    return out


def _pair_layers(ours: Embedding, peer: nn.Embedding | nn.EmbeddingBag) -> None:
    with torch.no_grad():
        ours.weight.copy_(peer.weight)


def _step_fns(
    layer: nn.Module, ids: torch.Tensor, grad: torch.Tensor, sparse: bool
) -> dict[str, Callable[[], Any]]:
    opt = torch.optim.SGD(layer.parameters(), lr=1e-3)

    def forward() -> Any:
        with torch.no_grad():
            return layer(ids)

    def fwd_bwd() -> None:
        layer.weight.grad = None
        layer(ids).backward(grad)

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        layer(ids).backward(grad)
        opt.step()

    kind = "sparse" if sparse else "dense"
    return {"forward": forward, f"fwd+bwd {kind}": fwd_bwd, f"train step {kind} (SGD)": train_step}


def lookup_rows(
    label: str, rows: int, dim: int, n: int, reps: int, *, padding_idx: int | None = None
) -> list[tuple[str, str, float, float, float, float]]:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, rows, (n,), generator=gen)
    if padding_idx is not None:
        ids[torch.rand(n, generator=gen) < 0.1] = padding_idx  # 10% padding
    grad = torch.randn(n, dim, generator=gen)
    results = []
    for sparse in (False, True):
        peer = nn.Embedding(rows, dim, padding_idx=padding_idx, sparse=sparse)
        ours = Embedding(rows, dim, padding_idx=padding_idx, sparse=sparse)
        _pair_layers(ours, peer)
        fo, fp = _step_fns(ours, ids, grad, sparse), _step_fns(peer, ids, grad, sparse)
        for what in fo:
            if sparse and what == "forward":
                continue
            results.append((label, what, *_three(fo[what], fp[what], reps)))
        del peer, ours, fo, fp
        gc.collect()
    return results


def max_norm_rows(
    rows: int, dim: int, n: int, reps: int
) -> list[tuple[str, str, float, float, float, float]]:
    """Forward with max_norm=1: fresh random ids every call (most rows not yet renormalised)."""
    gen = torch.Generator().manual_seed(0)
    pool = [torch.randint(0, rows, (n,), generator=gen) for _ in range(2 * reps + 2)]
    peer = nn.Embedding(rows, dim, max_norm=1.0)
    ours = Embedding(rows, dim, max_norm=1.0)
    _pair_layers(ours, peer)
    it_o, it_p = iter(pool), iter(pool)  # two passes of reps + 1 calls each (warm-up)

    def f_ours() -> Any:
        with torch.no_grad():
            return ours(next(it_o))

    def f_peer() -> Any:
        with torch.no_grad():
            return peer(next(it_p))

    label = f"V={rows:,} D={dim} N={n:,} max_norm=1"
    out = [
        (label, "forward, fresh ids each call (every row rescaled)", *_three(f_ours, f_peer, reps))
    ]
    same = pool[0]

    def s_ours() -> Any:
        with torch.no_grad():
            return ours(same)

    def s_peer() -> Any:
        with torch.no_grad():
            return peer(same)

    out.append(
        (label, "forward, same ids again (rows within max_norm)", *_three(s_ours, s_peer, reps))
    )
    plain_ours, plain_peer = Embedding(rows, dim), nn.Embedding(rows, dim)
    _pair_layers(plain_ours, plain_peer)
    ids = pool[0]

    def p_ours() -> Any:
        with torch.no_grad():
            return plain_ours(ids)

    def p_peer() -> Any:
        with torch.no_grad():
            return plain_peer(ids)

    out.append((label, "plain forward without max_norm", *_three(p_ours, p_peer, reps)))
    return out


def goal_rows(rows: int, dim: int, n: int, reps: int) -> list[tuple[str, str, str, float, float]]:
    """Ratios inside one layer type: padding_idx and max_norm against plain lookup.

    Each pair is timed interleaved in the same run, on the same ids (the padding
    case puts ``padding_idx=0`` on 10% of them; the plain layer sees the same ids
    with no padding_idx), for our layer and, for context, for torch's.
    """
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, rows, (n,), generator=gen)
    ids[torch.rand(n, generator=gen) < 0.1] = 0
    grad = torch.randn(n, dim, generator=gen)
    out: list[tuple[str, str, str, float, float]] = []
    for who, cls in (("ours", Embedding), ("torch", nn.Embedding)):
        padded = cls(rows, dim, padding_idx=0, sparse=True)
        plain = cls(rows, dim, sparse=True)
        fa, fb = _step_fns(padded, ids, grad, True), _step_fns(plain, ids, grad, True)
        for what in ("fwd+bwd sparse", "train step sparse (SGD)"):
            t_a, t_b = _paired(fa[what], fb[what], reps)
            out.append((who, f"padding_idx (10% padding) / plain, {what}", "<= 1.1x", t_a, t_b))
        del padded, plain, fa, fb
        gc.collect()
        pool = [torch.randint(0, rows, (n,), generator=gen) for _ in range(reps + 1)]
        normed, plain = cls(rows, dim, max_norm=1.0), cls(rows, dim)
        fresh = iter(pool)
        same = pool[0]

        def f_fresh(layer: nn.Module = normed, it: Any = fresh) -> Any:
            with torch.no_grad():
                return layer(next(it))

        def f_same(layer: nn.Module = normed, x: torch.Tensor = same) -> Any:
            with torch.no_grad():
                return layer(x)

        def f_plain(layer: nn.Module = plain, x: torch.Tensor = same) -> Any:
            with torch.no_grad():
                return layer(x)

        with torch.no_grad():
            normed(same)  # the "same ids" rows are within max_norm from here on
        t_a, t_b = _paired(f_same, f_plain, reps)
        out.append((who, "max_norm / plain forward, rows within the norm", "<= 2x", t_a, t_b))
        t_a, t_b = _paired(f_fresh, f_plain, reps)
        out.append(
            (who, "max_norm / plain forward, fresh ids (every row rescaled)", "<= 2x", t_a, t_b)
        )
        del normed, plain, pool
        gc.collect()
    return out


def bag_rows(
    rows: int, dim: int, bags: int, bag: int, reps: int
) -> list[tuple[str, str, float, float, float, float]]:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1, rows, (bags, bag), generator=gen)
    ids[torch.rand(bags, bag, generator=gen) < 0.2] = 0  # ragged bags padded with id 0
    grad = torch.randn(bags, dim, generator=gen)
    results = []
    for mode in ("sum", "mean", "max"):
        peer = nn.EmbeddingBag(rows, dim, mode=mode, padding_idx=0)
        ours = Embedding(rows, dim, padding_idx=0, mode=mode)
        _pair_layers(ours, peer)
        fo, fp = _step_fns(ours, ids, grad, False), _step_fns(peer, ids, grad, False)
        label = f"bags V={rows:,} D={dim} {bags:,}x{bag} mode={mode} (vs nn.EmbeddingBag)"
        for what in ("forward", "fwd+bwd dense"):
            results.append((label, what, *_three(fo[what], fp[what], reps)))
        del peer, ours, fo, fp
        gc.collect()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=11, help="timed reps per row (median)")
    parser.add_argument("--out", help="write the markdown results here")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke test)")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    reps = args.reps
    big = (100_000, 128, 8_192) if args.quick else (1_000_000, 128, 65_536)
    mid = (10_000, 300, 1_000) if args.quick else (100_000, 300, 10_000)

    load_before = os.getloadavg()[0]
    print(f"load average at start: {load_before:.1f}", flush=True)
    limits = machine_limits(reps)
    rows: list[tuple[str, str, float, float, float, float]] = []
    rows += lookup_rows(f"V={big[0]:,} D={big[1]} N={big[2]:,}", *big, reps)
    rows += lookup_rows(f"V={mid[0]:,} D={mid[1]} N={mid[2]:,}", *mid, reps)
    rows += lookup_rows(
        f"V={big[0]:,} D={big[1]} N={big[2]:,} padding_idx=0 (10% padding)",
        *big,
        reps,
        padding_idx=0,
    )
    rows += max_norm_rows(*big, reps)
    rows += bag_rows(big[0], big[1], big[2] // 20, 20, reps)
    goals = goal_rows(*big, reps)

    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {THREADS} threads, median of {reps} interleaved reps. "
        f"Load average {load_before:.1f} at the start and {os.getloadavg()[0]:.1f} at the end: "
        "the machine is shared with other jobs, so absolute times drift; ratios come from "
        "the same run.",
        "",
        "| machine limit | ms | GB/s |",
        "|---|---:|---:|",
    ]
    lines += [f"| {what} | {ms:.2f} | {gbs:.2f} |" for what, ms, gbs in limits]
    lines += [
        "",
        "Our layer with the fast kernels (the default) and with the reference kernels "
        "(`SYNTHEMBED_KERNELS=reference`: public torch ops only), against torch's layer. "
        "Each kernel set is timed in its own pass, interleaved with torch's layer; each "
        "ratio comes from its own pass, the torch column is the mean of the two passes:",
        "",
        "| case | measurement | fast ms | reference ms | torch ms | fast / torch "
        "| reference / torch |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for label, what, t_f, t_r, t_pf, t_pr in rows:
        lines.append(
            f"| {label} | {what} | {t_f:.2f} | {t_r:.2f} | {(t_pf + t_pr) / 2:.2f} "
            f"| {t_f / t_pf:.2f}x | {t_r / t_pr:.2f}x |"
        )
    lines += [
        "",
        f"Goal ratios at V={big[0]:,} D={big[1]} N={big[2]:,}, each pair interleaved in the "
        "same run (our layer against our plain layer; torch's against torch's, for context):",
        "",
        "| layer | measurement | goal | ms | plain ms | ratio |",
        "|---|---|---|---:|---:|---:|",
    ]
    for who, what, goal, t_a, t_b in goals:
        lines.append(f"| {who} | {what} | {goal} | {t_a:.2f} | {t_b:.2f} | {t_a / t_b:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with atomic_write(args.out, "w") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()
