"""The ``synthembed`` command.

One module per subcommand group: ``demo`` (the main job, a cold-start
recommender on MovieLens), ``vocab`` (build and show vocabularies),
``vectors`` (inspect, convert, search and evaluate word-vector files),
``plot`` (a 2-D map of vectors) and ``inspect`` (a saved model). Needs the
``cli`` extra (``pip install 'synthembed[cli]'``).

Exit codes: 0 on success, 2 on bad usage, 1 on failure with one ``error:``
line (``--debug`` shows the traceback).
"""

from __future__ import annotations

import sys

from synthembed._validation import require
from synthembed.errors import MissingDependencyError

__all__ = ["app", "main"]

try:  # typer is in the cli extra; main() explains how to get it when missing
    import typer

    from synthembed.cli._common import CONTEXT, VersionOpt
except ImportError:  # pragma: no cover - exercised only without the extra
    typer = None  # type: ignore[assignment]

HELP = "synthembed: dense vectors for discrete data, with synthesized embeddings for cold start."
EPILOG = (
    "Examples: synthembed demo --quick; synthembed vocab build data.csv --column genre -o "
    "vocab.json; synthembed vectors neighbors glove.txt king -k 5. "
    "Run 'synthembed COMMAND -h' for the options of each command."
)


def _build_app() -> typer.Typer:
    from synthembed.cli import demo, model, plot, vectors, vocab

    app = typer.Typer(
        add_completion=False,
        no_args_is_help=True,
        help=HELP,
        epilog=EPILOG,
        context_settings=CONTEXT,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )

    @app.callback()
    def _root(version: VersionOpt = False) -> None:
        """synthembed: dense vectors for discrete data, with synthesized embeddings for cold start."""

    demo.register(app)
    app.add_typer(vocab.build_app(), name="vocab")
    app.add_typer(vectors.build_app(), name="vectors")
    plot.register(app)
    model.register(app)
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
