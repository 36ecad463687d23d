"""``synthembed vocab build|show``: vocabularies from CSV, Parquet or text files."""

from __future__ import annotations

from collections.abc import Iterator
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

BUILD_EXAMPLE = (
    "Example: synthembed vocab build ratings.csv --column genres --split '|' --min-freq 2 "
    "--oov hash:100 -o vocab.json. INPUT: .csv, .tsv, .parquet, or a text file "
    "(whitespace-separated tokens, one sentence per line; no --column). "
    "--oov choices: unk, error, hash:N (N >= 1 hash buckets for unseen tokens)."
)
SHOW_EXAMPLE = "Example: synthembed vocab show vocab.json --top 20"

_TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")


def parse_oov(value: str) -> tuple[str, int | None]:
    """``unk`` / ``error`` / ``hash:N`` -> ``(policy, buckets)``; else :class:`UsageError`."""
    if value in ("unk", "error"):
        return value, None
    policy, _, buckets = value.partition(":")
    if policy == "hash" and buckets.isdigit() and int(buckets) >= 1:
        return "hash", int(buckets)
    raise UsageError(
        f"--oov must be one of unk, error, hash:N with N >= 1 (e.g. hash:100); got {value!r}."
    )


def _read_column(path: Path, column: str | None) -> tuple[Any, int]:
    """The tokens of ``path`` (a column of a table, or a text file) and the row count."""
    suffix = path.suffix.lower()
    if suffix not in _TABLE_SUFFIXES:
        if column is not None:
            raise UsageError(
                f"--column applies to .csv, .tsv and .parquet files; '{path}' is read as text "
                "(whitespace-separated tokens, one sentence per line)."
            )
        with path.open(encoding="utf-8") as handle:
            lines = [line.split() for line in handle]
        return lines, len(lines)
    if column is None:
        raise UsageError(f"vocab build needs --column to read the table '{path}'.")
    from synthembed._validation import require

    pd = require("pandas", "data", "vocab build from a table")
    if suffix in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str)
    if column not in frame.columns:
        shown = ", ".join(map(str, list(frame.columns)[:20]))
        raise UsageError(f"--column {column!r} is not a column of '{path}'; its columns: {shown}.")
    return frame[column], len(frame)


def _split_cells(series: Any, sep: str) -> Iterator[list[str]]:
    for cell in series:
        if isinstance(cell, str):
            yield [t for t in cell.split(sep) if t]


def build(
    input: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="A .csv, .tsv, .parquet or text file."),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The vocabulary JSON file.")],
    column: Annotated[
        str | None, typer.Option("--column", "-c", help="Column of a CSV/Parquet table.")
    ] = None,
    split: Annotated[
        str | None,
        typer.Option("--split", help="Split each cell into several tokens on this separator."),
    ] = None,
    min_freq: Annotated[
        int, typer.Option("--min-freq", min=1, help="Keep tokens seen at least N times.")
    ] = 1,
    max_size: Annotated[
        int | None, typer.Option("--max-size", min=1, help="Keep at most N tokens.")
    ] = None,
    oov: Annotated[
        str, typer.Option("--oov", help="Unknown tokens: unk, error or hash:N.")
    ] = "unk",
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    version: VersionOpt = False,
) -> None:
    """Count the tokens of a file and write a vocabulary (most frequent first)."""
    from synthembed.vocab import Vocabulary

    with fail_cleanly(debug):
        policy, buckets = parse_oov(oov)
        check_writable_file(output, "-o/--output", (".json",))
        data, rows = _read_column(input, column)
        if split is not None:
            if column is None:
                raise UsageError("--split applies to a table column (--column).")
            data = list(_split_cells(data, split))
        vocab = Vocabulary.build(
            data,
            min_freq=min_freq,
            max_size=max_size,
            oov=policy,  # type: ignore[arg-type]
            num_oov_buckets=buckets,
        )
        vocab.save(output)
    result = {
        "input": str(input),
        "output": str(output),
        "rows_read": rows,
        "tokens": len(vocab) - vocab.first_token_id,
        "size": len(vocab),
        "specials": vocab.specials,
        "oov": vocab.oov,
        "num_oov_buckets": vocab.num_oov_buckets,
    }
    emit(
        result,
        as_json,
        lambda: [
            f"wrote {output}: {result['tokens']} tokens from {rows} rows of {input} "
            f"({len(vocab)} ids with {len(vocab.specials)} specials"
            + (f" and {vocab.num_oov_buckets} OOV buckets" if vocab.num_oov_buckets else "")
            + f"; unknown tokens: {vocab.oov})"
        ],
        quiet,
    )


def show(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A vocabulary JSON.")],
    top: Annotated[int, typer.Option("--top", min=0, help="Show the N most frequent tokens.")] = 20,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    version: VersionOpt = False,
) -> None:
    """Size, specials, OOV policy and the most frequent tokens of a vocabulary file."""
    from synthembed.vocab import Vocabulary

    with fail_cleanly(debug):
        vocab = Vocabulary.load(file)
    start = vocab.first_token_id
    counts = vocab.counts
    tokens = vocab.index_to_key[start : start + top]
    top_rows = [{"id": start + i, "token": t, "count": counts[t]} for i, t in enumerate(tokens)]
    result = {
        "file": str(file),
        "size": len(vocab),
        "tokens": len(vocab) - start,
        "specials": vocab.specials,
        "pad_token": vocab.pad_token,
        "unk_token": vocab.unk_token,
        "oov": vocab.oov,
        "num_oov_buckets": vocab.num_oov_buckets,
        "top": top_rows,
    }

    def lines() -> list[str]:
        out = [
            f"{file}: {len(vocab)} ids = {len(vocab.specials)} specials "
            f"{vocab.specials} + {vocab.num_oov_buckets} OOV buckets + {result['tokens']} tokens",
            f"unknown tokens: {vocab.oov}; pad: {vocab.pad_token}; unk: {vocab.unk_token}",
        ]
        out += [f"{r['id']:>8}  {r['count']:>8}  {r['token']}" for r in top_rows]
        return out

    emit(result, as_json, lines, quiet)


def build_app() -> typer.Typer:
    """The ``vocab`` command group."""
    app = typer.Typer(
        help="Build and show vocabularies (tokens <-> ids).",
        no_args_is_help=True,
        context_settings=CONTEXT,
        rich_markup_mode=None,
    )
    app.command("build", epilog=BUILD_EXAMPLE)(build)
    app.command("show", epilog=SHOW_EXAMPLE)(show)
    return app
