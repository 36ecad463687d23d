"""``synthembed vectors inspect|convert|neighbors|evaluate``: word-vector files."""

from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from synthembed.cli._common import (
    CONTEXT,
    DebugOpt,
    JsonOpt,
    QuietOpt,
    UsageError,
    VersionOpt,
    check_writable_file,
    emit,
    fail_cleanly,
)

__all__ = ["build_app"]

FORMATS = "auto (detect), glove, word2vec, fasttext, word2vec-binary"
FileArg = Annotated[
    Path,
    typer.Argument(
        exists=True,
        dir_okay=False,
        help="A GloVe, word2vec (text or binary) or fastText file; .gz, .bz2, .xz too.",
    ),
]


class ReadFormat(str, Enum):
    auto = "auto"
    glove = "glove"
    word2vec = "word2vec"
    fasttext = "fasttext"
    word2vec_binary = "word2vec-binary"


class WriteFormat(str, Enum):
    glove = "glove"
    word2vec = "word2vec"
    fasttext = "fasttext"
    word2vec_binary = "word2vec-binary"


FormatOpt = Annotated[ReadFormat, typer.Option("--format", "-f", help="Format of FILE.")]
LimitOpt = Annotated[
    int | None, typer.Option("--limit", min=1, help="Read only the first N vectors.")
]


def _load(
    file: Path,
    fmt: ReadFormat,
    limit: int | None,
    cache: bool | str = "auto",
    cache_dir: Path | None = None,
) -> Any:
    from synthembed.vectors import load_vectors

    return load_vectors(
        file,
        fmt.value,  # type: ignore[arg-type]
        limit=limit,
        cache=cache,  # type: ignore[arg-type]
        cache_dir=cache_dir,
    )


def inspect(
    file: FileArg,
    fmt: FormatOpt = ReadFormat.auto,
    limit: LimitOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    version: VersionOpt = False,
) -> None:
    """Format, rows, dimension and vector norms of a word-vector file."""
    with fail_cleanly(debug):
        vectors = _load(file, fmt, limit)
        norms = vectors.vectors.float().norm(dim=1)
    result = {
        "file": str(file),
        "format": vectors.format,
        "rows": len(vectors),
        "dim": vectors.dim,
        "norm": {
            "min": float(norms.min()),
            "mean": float(norms.mean()),
            "max": float(norms.max()),
        },
        "first_words": list(vectors.index_to_key[:10]),
        "skipped": dict(vectors.skipped or {}),
    }
    n = result["norm"]
    emit(
        result,
        as_json,
        lambda: [
            f"{file}: {vectors.format}, {len(vectors)} rows x {vectors.dim} dims",
            f"norms: min {n['min']:.4g}, mean {n['mean']:.4g}, max {n['max']:.4g}",
            "first words: " + " ".join(result["first_words"]),
        ],
        quiet,
    )


def _format_of(path: Path) -> WriteFormat:
    name = path.name.lower()
    for ext in (".gz", ".bz2", ".xz"):
        name = name.removesuffix(ext)
    if name.endswith(".bin"):
        return WriteFormat.word2vec_binary
    if name.endswith(".vec"):
        return WriteFormat.fasttext
    return WriteFormat.word2vec


def convert(
    file: FileArg,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="The file to write (.gz/.bz2/.xz compresses it)."),
    ] = None,
    to: Annotated[
        WriteFormat | None,
        typer.Option(
            "--to", help="Output format (default from the suffix: .bin, .vec, else word2vec)."
        ),
    ] = None,
    fmt: FormatOpt = ReadFormat.auto,
    limit: LimitOpt = None,
    cache: Annotated[
        bool, typer.Option("--cache", help="Also write the fast-load cache of FILE.")
    ] = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            file_okay=False,
            help="Where caches live (default $SYNTHEMBED_CACHE_DIR or ~/.cache/synthembed).",
        ),
    ] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    version: VersionOpt = False,
) -> None:
    """Convert a vector file to another format, and/or write its fast-load cache."""
    from synthembed.vectors import save_vectors

    with fail_cleanly(debug):
        if output is None and not cache:
            raise UsageError("vectors convert needs -o OUT, --cache, or both.")
        target = to if to is not None else (_format_of(output) if output else None)
        if output is not None:
            check_writable_file(output, "-o/--output")
        vectors = _load(file, fmt, limit, cache=cache, cache_dir=cache_dir)
        if output is not None and target is not None:
            save_vectors(vectors, output, target.value)  # type: ignore[arg-type]
    result = {
        "input": str(file),
        "input_format": vectors.format,
        "output": None if output is None else str(output),
        "output_format": None if target is None else target.value,
        "rows": len(vectors),
        "dim": vectors.dim,
        "cached": cache,
    }
    emit(
        result,
        as_json,
        lambda: [
            (
                f"wrote {output} ({result['output_format']}, {len(vectors)} x {vectors.dim})"
                if output
                else f"cached {file} ({len(vectors)} x {vectors.dim})"
            )
        ],
        quiet,
    )


def neighbors(
    file: FileArg,
    word: Annotated[str, typer.Argument(help="The query word.")],
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Number of neighbours.")] = 10,
    fmt: FormatOpt = ReadFormat.auto,
    limit: LimitOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    version: VersionOpt = False,
) -> None:
    """The k words nearest to WORD by cosine similarity."""
    from synthembed.search import most_similar

    with fail_cleanly(debug):
        vectors = _load(file, fmt, limit)
        found = most_similar(vectors, word, k=k)
    result = {"word": word, "neighbors": [{"word": w, "cosine": s} for w, s in found]}
    emit(result, as_json, lambda: [f"{s:8.4f}  {w}" for w, s in found], quiet)


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else x


def evaluate(
    file: FileArg,
    similarity: Annotated[
        Path | None,
        typer.Option(
            "--similarity",
            exists=True,
            dir_okay=False,
            help="Word pairs with human scores (word1<TAB>word2<TAB>score; WordSim-353 layout).",
        ),
    ] = None,
    analogies: Annotated[
        Path | None,
        typer.Option(
            "--analogies",
            exists=True,
            dir_okay=False,
            help="Analogy questions in word2vec's questions-words.txt layout.",
        ),
    ] = None,
    restrict_vocab: Annotated[
        int, typer.Option("--restrict-vocab", min=1, help="Search only the first N rows.")
    ] = 300_000,
    fmt: FormatOpt = ReadFormat.auto,
    limit: LimitOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    version: VersionOpt = False,
) -> None:
    """Word-similarity correlation and analogy accuracy of a vector file."""
    from synthembed.evaluation import evaluate_analogies, evaluate_similarity

    result: dict[str, Any] = {"file": str(file)}
    lines: list[str] = []
    with fail_cleanly(debug):
        if similarity is None and analogies is None:
            raise UsageError(
                "vectors evaluate needs --similarity PAIRS, --analogies FILE, or both."
            )
        vectors = _load(file, fmt, limit)
        if similarity is not None:
            sim = evaluate_similarity(vectors, similarity, restrict_vocab=restrict_vocab)
            result["similarity"] = {
                "file": str(similarity),
                "spearman": _finite(sim.spearman),
                "pearson": _finite(sim.pearson),
                "pairs_used": sim.pairs_used,
                "pairs_skipped": sim.pairs_skipped,
            }
            lines.append(
                f"similarity ({similarity.name}): Spearman {sim.spearman:.4f}, Pearson "
                f"{sim.pearson:.4f} on {sim.pairs_used} pairs ({sim.pairs_skipped} skipped)"
            )
        if analogies is not None:
            ana = evaluate_analogies(vectors, analogies, restrict_vocab=restrict_vocab)
            result["analogies"] = {
                "file": str(analogies),
                "accuracy": ana.accuracy,
                "correct": ana.correct,
                "answered": ana.answered,
                "skipped": ana.skipped,
                "sections": {k: list(v) for k, v in ana.sections.items()},
            }
            lines.append(
                f"analogies ({analogies.name}): accuracy {ana.accuracy:.4f} "
                f"({ana.correct}/{ana.answered}; {ana.skipped} skipped)"
            )
    emit(result, as_json, lambda: lines, quiet)


def build_app() -> typer.Typer:
    """The ``vectors`` command group."""
    app = typer.Typer(
        help=f"Inspect, convert, search and evaluate word-vector files ({FORMATS}).",
        no_args_is_help=True,
        context_settings=CONTEXT,
        rich_markup_mode=None,
    )
    app.command("inspect", epilog="Example: synthembed vectors inspect glove.6B.50d.txt --json")(
        inspect
    )
    app.command(
        "convert",
        epilog="Example: synthembed vectors convert glove.txt -o glove.bin  (word2vec binary; "
        "--to glove|word2vec|fasttext|word2vec-binary)",
    )(convert)
    app.command("neighbors", epilog="Example: synthembed vectors neighbors glove.txt king -k 5")(
        neighbors
    )
    app.command(
        "evaluate",
        epilog="Example: synthembed vectors evaluate glove.txt --similarity wordsim353.tsv "
        "--analogies questions-words.txt",
    )(evaluate)
    return app
