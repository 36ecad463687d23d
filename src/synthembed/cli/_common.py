"""What every ``synthembed`` subcommand shares: options, output, errors, exit codes.

Exit codes: 0 success, 2 bad usage (click's own parse errors and :class:`UsageError`
raised by our argument checks), 1 failure. A failure prints one line,
``error: <message>``, naming the file, line or value; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from synthembed.errors import SynthembedError

__all__ = [
    "CONTEXT",
    "DebugOpt",
    "JsonOpt",
    "QuietOpt",
    "UsageError",
    "VersionOpt",
    "check_writable_file",
    "check_writable_folder",
    "emit",
    "fail_cleanly",
    "show_progress",
]

CONTEXT: dict[str, Any] = {"help_option_names": ["-h", "--help"]}

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as one JSON document.")]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bars and no summary lines.")
]


def _print_version(value: bool) -> None:
    if value:
        from synthembed import __version__

        typer.echo(f"synthembed {__version__}")
        raise typer.Exit()


VersionOpt = Annotated[
    bool,
    typer.Option(
        "--version", "-V", callback=_print_version, is_eager=True, help="Print the version."
    ),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the traceback of a failure.")]


class UsageError(SynthembedError, ValueError):
    """An argument that the command checked and refused: exit code 2."""


def show_progress(quiet: bool) -> bool:
    """Progress bars only on a terminal, and never with ``--quiet`` or ``--json``."""
    return not quiet and sys.stderr.isatty()


def emit(
    result: dict[str, Any], as_json: bool, lines: Callable[[], list[str]], quiet: bool
) -> None:
    """Print ``result`` as JSON (``--json``) or as the human lines ``lines()`` gives."""
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
    elif not quiet:
        for line in lines():
            typer.echo(line)


def _one_line(exc: BaseException) -> str:
    # KeyError subclasses (UnknownTokenError) quote their message in str(); take the text.
    text = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else str(exc)
    return " ".join(str(text).split()) or type(exc).__name__


@contextmanager
def fail_cleanly(debug: bool) -> Iterator[None]:
    """Turn our errors and file errors into one ``error:`` line and an exit code."""
    try:
        yield
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(code=130) from None
    except UsageError as exc:
        if debug:
            raise
        typer.echo(f"error: {_one_line(exc)}", err=True)
        raise typer.Exit(code=2) from None
    except (SynthembedError, OSError, ValueError, KeyError, ImportError) as exc:
        if debug:
            raise
        typer.echo(f"error: {_one_line(exc)}", err=True)
        raise typer.Exit(code=1) from None


def _probe(folder: Path) -> None:
    """Create and remove a file in ``folder``: the only sure test that it is writable."""
    try:
        handle, name = tempfile.mkstemp(prefix=".synthembed-probe-", dir=folder)
    except OSError as exc:
        raise UsageError(f"cannot write into '{folder}': {exc.strerror or exc}.") from None
    os.close(handle)
    os.unlink(name)


def _nearest_existing(path: Path) -> Path:
    current = path.absolute()
    while not current.exists():
        current = current.parent
    return current


def check_writable_folder(path: Path, option: str) -> None:
    """A folder that exists and is writable, or can be created: else :class:`UsageError`."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} '{path}' is an existing file; pass a folder.")
    base = _nearest_existing(path)
    if not base.is_dir():
        raise UsageError(f"{option} '{path}' cannot be created: '{base}' is a file.")
    _probe(base)


def check_writable_file(path: Path, option: str, suffixes: tuple[str, ...] = ()) -> None:
    """A file path whose folder exists and is writable: else :class:`UsageError`."""
    if suffixes and path.suffix.lower() not in suffixes:
        raise UsageError(
            f"{option} '{path}' must end in one of {', '.join(suffixes)}; got "
            f"{path.suffix or 'no suffix'!r}."
        )
    if path.is_dir():
        raise UsageError(f"{option} '{path}' is a folder; pass a file name.")
    if not path.absolute().parent.is_dir():
        raise UsageError(f"{option} '{path}': the folder '{path.parent}' does not exist.")
    _probe(path.absolute().parent)
