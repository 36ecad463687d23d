"""``synthembed plot``: a 2-D map of a word-vector file, coloured by label."""

from __future__ import annotations

import warnings
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
    check_writable_file,
    emit,
    fail_cleanly,
)

__all__ = ["register"]

EXAMPLE = (
    "Example: synthembed plot glove.txt --labels labels.tsv --method tsne --limit 2000 -o map.png. "
    "--labels: a file with one label per line (one per vector, in order) or word<TAB>label lines "
    "(words without a label are drawn as '(none)'). --method choices: pca, tsne, umap "
    "(umap needs the 'umap' extra)."
)


class Method(str, Enum):
    pca = "pca"
    tsne = "tsne"
    umap = "umap"


def read_labels(path: Path, words: list[str]) -> list[str]:
    """One label per word: a plain list in row order, or ``word<TAB>label`` lines."""
    lines = [line.rstrip("\r\n") for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line.strip()]
    if lines and all("\t" in line for line in lines):
        mapping = dict(line.split("\t", 1) for line in lines)
        return [mapping.get(w, "(none)") for w in words]
    if len(lines) < len(words):
        raise UsageError(
            f"--labels '{path}' has {len(lines)} labels for {len(words)} vectors; give one per "
            "vector, or word<TAB>label lines."
        )
    return lines[: len(words)]


def plot(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="A GloVe, word2vec or fastText file."),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The picture: .png, .svg or .pdf.")
    ],
    labels: Annotated[
        Path | None,
        typer.Option("--labels", "-l", exists=True, dir_okay=False, help="Labels file."),
    ] = None,
    method: Annotated[Method, typer.Option("--method", "-m", help="2-D projection.")] = Method.pca,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Plot only the first N vectors.")
    ] = None,
    annotate: Annotated[
        bool, typer.Option("--annotate/--no-annotate", help="Write the words beside points.")
    ] = True,
    title: Annotated[str | None, typer.Option("--title", help="Figure title.")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of t-SNE and UMAP.")] = 0,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    version: VersionOpt = False,
) -> None:
    """Draw a 2-D map (PCA, t-SNE or UMAP) of the vectors of a file."""
    from synthembed.vectors import load_vectors
    from synthembed.viz import plot_embeddings

    with fail_cleanly(debug):
        check_writable_file(output, "-o/--output", (".png", ".svg", ".pdf"))
        vectors = load_vectors(file, limit=limit)
        words = list(vectors.index_to_key)
        label_list = read_labels(labels, words) if labels is not None else None
        with warnings.catch_warnings():
            # Dense maps keep a readable subset of the words; the summary line says so.
            warnings.filterwarnings("ignore", message=".*labels that do not overlap")
            plot_embeddings(
                vectors.vectors,
                label_list,
                method=method.value,  # type: ignore[arg-type]
                annotate=words if annotate else None,
                path=output,
                title=title,
                seed=seed,
            )
    result = {
        "file": str(file),
        "output": str(output),
        "method": method.value,
        "points": len(words),
    }
    emit(result, as_json, lambda: [f"wrote {output} ({method.value}, {len(words)} points)"], quiet)


def register(app: typer.Typer) -> None:
    """Add ``plot`` to the ``synthembed`` command."""
    app.command("plot", epilog=EXAMPLE)(plot)
