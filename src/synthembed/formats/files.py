"""Read and write word-vector files: GloVe, word2vec (text or binary), fastText ``.vec``.

Formats (``format=``):

- ``"glove"``: text, one ``word v1 ... vD`` per line, no header.
- ``"word2vec"``: the same with a first line ``"<count> <dim>"``.
- ``"fasttext"``: fastText's ``.vec`` files, which are word2vec text.
- ``"word2vec-binary"``: the header line, then ``word<space>`` and ``D``
  little-endian float32 per entry (what word2vec's ``-binary 1`` and gensim write).
- ``"auto"``: detected from the content (header or not, text or binary).

gzip, bz2 and xz files are read and written transparently (:mod:`.streams`); a
parsed file can be cached (:mod:`.cache`). Nothing half-built is ever returned.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthembed.errors import ConfigError, FileFormatError
from synthembed.formats.binary import read_binary, write_binary
from synthembed.formats.cache import (
    cache_paths,
    default_cache_dir,
    file_fingerprint,
    read_cache,
    write_cache,
)
from synthembed.formats.streams import (
    PEEK,
    PeekReader,
    check_vector_file,
    compressed_writer,
    corrupt_stream_errors,
    count_lines,
    detect_format,
    is_compressed,
    open_compressed,
)
from synthembed.formats.text import read_text

__all__ = [
    "AUTO_CACHE_MIN_BYTES",
    "ERROR_POLICIES",
    "READ_FORMATS",
    "WRITE_FORMATS",
    "VectorFile",
    "read_vectors",
    "write_vectors",
]

logger = logging.getLogger(__name__)

READ_FORMATS = ("auto", "glove", "word2vec", "fasttext", "word2vec-binary")
WRITE_FORMATS = ("glove", "word2vec", "fasttext", "word2vec-binary")
ERROR_POLICIES = ("raise", "skip")
#: ``cache="auto"`` caches files of this size and more.
AUTO_CACHE_MIN_BYTES = 8 * 1024 * 1024


@dataclass
class VectorFile:
    """What a vector file holds: words in row order and their ``(V, D)`` float32 rows.

    Attributes:
        words: the words, distinct, in row order.
        values: ``(V, D)`` float32 rows (a copy-on-write memory map when from the cache).
        format: the format read (``"glove"``, ``"word2vec"`` or ``"word2vec-binary"``).
        skipped: bad lines skipped under ``errors="skip"``, counted by reason.
        cached: whether the rows came from the cache (then words are not yet checked
            for repeats).
    """

    words: list[str]
    values: np.ndarray
    format: str | None
    skipped: dict[str, int] = field(default_factory=dict)
    cached: bool = False


def read_vectors(
    path: Path,
    format: str = "auto",
    *,
    limit: int | None = None,
    errors: str = "raise",
    cache: bool | str = "auto",
    cache_dir: Path | None = None,
) -> VectorFile:
    """Read a vector file (arguments checked by the caller: see ``load_vectors``).

    Raises:
        FileFormatError: a malformed file under ``errors="raise"``, or one with no vectors.
    """
    source = f"'{path}'"
    use_cache = cache is True or (cache == "auto" and path.stat().st_size >= AUTO_CACHE_MIN_BYTES)
    files: tuple[Path, Path] | None = None
    ident: dict[str, Any] = {}
    if use_cache:
        ident = file_fingerprint(path)
        root = cache_dir if cache_dir is not None else default_cache_dir()
        files = cache_paths(path, root, {"format": format, "limit": limit, "errors": errors})
        cached = read_cache(*files, ident)
        if cached is not None:
            words, values, fmt, skipped = cached
            if skipped:
                _warn_skipped(source, skipped)
            logger.info("Loaded %d cached vectors of %s", len(words), source)
            return VectorFile(words, values, fmt, skipped, cached=True)
    compressed = is_compressed(path)
    with corrupt_stream_errors(source, compressed), open_compressed(path) as raw:
        reader = PeekReader(raw)
        if format == "auto":
            fmt = detect_format(reader, source)
        else:
            check_vector_file(reader.peek(PEEK), source)
            fmt = format
        if fmt == "word2vec-binary":
            words, values, counts = read_binary(
                reader,
                limit=limit,
                errors=errors,
                source=source,
                size_bound=None if compressed else path.stat().st_size,
            )
        else:
            words, values, counts = read_text(
                reader,
                header=fmt != "glove",
                limit=limit,
                errors=errors,
                source=source,
                line_bound=None if compressed or fmt != "glove" else count_lines(path),
            )

    def locate(word: str) -> tuple[int, int]:
        return _word_lines(path, word, header=fmt != "glove")

    words, values = _check_duplicates(
        words, values, errors, source, counts, None if fmt == "word2vec-binary" else locate
    )
    if not words and limit != 0:
        raise FileFormatError(
            f"{source} holds no readable vectors"
            + (f" ({sum(counts.values())} lines skipped)." if counts else ".")
        )
    skipped = dict(counts)
    if skipped:
        _warn_skipped(source, skipped)
    logger.info("Parsed %d vectors of dimension %d from %s", len(words), values.shape[1], source)
    if files is not None:
        write_cache(*files, ident, words, values, fmt, skipped)
        _say_cached(source, path, files[0].parent, cache)
    return VectorFile(words, values, fmt, skipped)


_TOLD_ABOUT_CACHE = False


def _say_cached(source: str, path: Path, where: Path, cache: bool | str) -> None:
    """Say where parsed vectors were cached: at WARNING the first time ``cache="auto"`` does it."""
    global _TOLD_ABOUT_CACHE
    size = path.stat().st_size / 2**20
    if cache == "auto" and not _TOLD_ABOUT_CACHE:
        _TOLD_ABOUT_CACHE = True
        logger.warning(
            "Cached the parsed vectors of %s (%.0f MiB) under '%s' so the next load is fast "
            "(cache='auto' caches files of %d MiB or more); pass cache=False to turn this off "
            "or cache_dir= (or $SYNTHEMBED_CACHE_DIR) to move it.",
            source,
            size,
            where,
            AUTO_CACHE_MIN_BYTES // 2**20,
        )
    else:
        logger.info("Cached the parsed vectors of %s under '%s'", source, where)


def _warn_skipped(source: str, skipped: dict[str, int]) -> None:
    detail = ", ".join(f"{n} {kind}" for kind, n in sorted(skipped.items()))
    warnings.warn(f"{source}: skipped {sum(skipped.values())} bad line(s): {detail}.", stacklevel=4)


def _check_duplicates(
    words: list[str],
    values: np.ndarray,
    errors: str,
    source: str,
    skipped: Counter[str],
    locate: Callable[[str], tuple[int, int]] | None,
) -> tuple[list[str], np.ndarray]:
    """Find repeated words; returns the words and rows to keep."""
    # Sorted 64-bit hashes (8 bytes a word) rule out repeats without a set of every word
    # (~40 bytes a word at the moment of peak memory); equal hashes get the exact check.
    hashes = np.fromiter(map(hash, words), dtype=np.int64, count=len(words))
    hashes.sort()
    if not (hashes[1:] == hashes[:-1]).any():
        return words, values
    del hashes
    if len(set(words)) == len(words):  # a hash collision, no repeat
        return words, values
    first_seen: dict[str, int] = {}
    dupes: list[int] = []
    for i, w in enumerate(words):
        if w in first_seen:
            dupes.append(i)
        else:
            first_seen[w] = i
    if errors == "raise":
        i = dupes[0]
        w = words[i]
        if locate is None:
            where = f"vector {i + 1} repeats the word {w!r} of vector {first_seen[w] + 1}"
        else:
            first_line, again = locate(w)
            where = f"line {again} repeats the word {w!r} of line {first_line}"
        raise FileFormatError(
            f"{source}, {where} ({len(dupes)} repeated word(s) in all). Pass errors='skip' to "
            "keep the first occurrence of each word."
        )
    keep = np.ones(len(words), dtype=bool)
    keep[dupes] = False
    skipped["duplicate word"] += len(dupes)
    return [w for w, k in zip(words, keep) if k], values[keep]


def _word_lines(path: Path, word: str, *, header: bool) -> tuple[int, int]:
    """The first two line numbers whose word is ``word`` (a slow scan, only to word an error)."""
    target = word.encode("utf-8")
    hits: list[int] = []
    with corrupt_stream_errors(f"'{path}'", is_compressed(path)), open_compressed(path) as raw:
        for number, line in enumerate(raw, start=1):
            if header and number == 1:
                continue
            fields = line.split(None, 1)  # tabs are whitespace too
            if fields and fields[0] == target:
                hits.append(number)
                if len(hits) == 2:
                    break
    hits += [0] * (2 - len(hits))
    return hits[0], hits[1]


def write_vectors(
    path: Path,
    words: Sequence[str],
    values: np.ndarray,
    format: str = "word2vec",
    *,
    precision: int = 9,
) -> None:
    """Write ``(V, D)`` float32 ``values`` under ``words`` atomically (arguments checked by
    the caller: see ``save_vectors``).

    Raises:
        ConfigError: a word that cannot be written (empty, or holding a space or newline).
    """
    for w in words:
        if not w or " " in w or "\n" in w:
            raise ConfigError(
                f"The word {w!r} cannot be written to a vector file: words must be non-empty and "
                "hold no spaces or newlines."
            )
    n, dim = values.shape
    with compressed_writer(path) as out:
        if format == "word2vec-binary":
            write_binary(out, list(words), values)
            return
        if format != "glove":
            out.write(f"{n} {dim}\n".encode())
        row_fmt = " ".join([f"%.{precision}g"] * dim)
        step = max(1, 65536 // dim)
        for start in range(0, n, step):
            chunk = values[start : start + step].tolist()
            names = words[start : start + step]
            text = "\n".join(w + " " + row_fmt % tuple(r) for w, r in zip(names, chunk))
            out.write(text.encode("utf-8") + b"\n")
