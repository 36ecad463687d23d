"""``synthembed demo``: the main job, a cold-start recommender on real MovieLens data."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from synthembed.cli._common import (
    DebugOpt,
    JsonOpt,
    QuietOpt,
    UsageError,
    VersionOpt,
    emit,
    fail_cleanly,
    show_progress,
)
from synthembed.errors import ConfigError

__all__ = ["register"]

EXAMPLE = (
    "Example: synthembed demo --quick --out report/   (under a minute; writes results.json, "
    "results.md, recall_at_20.png and item_map.png into report/)"
)


class TextMode(str, Enum):
    tfidf = "tfidf"
    minilm = "minilm"
    both = "both"


def demo(
    quick: Annotated[
        bool, typer.Option("--quick", help="Short run (fewer epochs), under a minute.")
    ] = False,
    out: Annotated[
        Path, typer.Option("--out", help="Report folder (created; files in it replaced).")
    ] = Path("synthembed-report"),
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of split and training.")] = 0,
    text: Annotated[
        TextMode,
        typer.Option(
            "--text",
            help="Title vectors: tfidf, minilm or both (minilm and both need the 'text' extra).",
        ),
    ] = TextMode.tfidf,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="A MovieLens folder (ratings.csv, movies.csv) instead of the bundled copy.",
        ),
    ] = None,
    progress: Annotated[
        bool,
        typer.Option(
            "--progress/--no-progress", help="Progress bars per stage (only on a terminal)."
        ),
    ] = True,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    version: VersionOpt = False,
) -> None:
    """Cold-start recommender on real MovieLens data: synthetic embeddings vs plain BPR,
    a hand-written content MLP and LightFM (when installed)."""
    from synthembed.recsys.demo import DemoConfig, check_demo_inputs, format_table, run_demo

    with fail_cleanly(debug):
        config = DemoConfig(seed=seed, quick=quick, text=text.value)
        try:  # every argument checked before any work starts
            check_demo_inputs(out, data, config)
        except (ConfigError, FileNotFoundError) as exc:
            raise UsageError(str(exc).replace("The report folder", "--out")) from None
        bars = progress and show_progress(quiet or as_json)
        result = run_demo(out, config, progress=bars, data_path=data)

    def lines() -> list[str]:
        d = result["data"]
        return [
            "",
            f"MovieLens: {d['interactions']:,} ratings, {d['users']} users, {d['items']} items; "
            f"{d['cold_test_items']} cold test items. Test split, full ranking:",
            "",
            format_table(result["models"], config.k),
            *result["standing"],
            "",
            f"Report written to {out}/ (results.json, results.md, recall_at_20.png, item_map.png)",
            f"Total time: {result['timings_seconds']['total']:.1f} s",
        ]

    emit(result, as_json, lines, quiet)


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the ``synthembed`` command."""
    app.command("demo", epilog=EXAMPLE)(demo)
