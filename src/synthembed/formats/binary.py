"""word2vec binary vectors: a ``"<count> <dim>"`` header line, then ``word<space>`` and
``dim`` little-endian float32 per entry (what word2vec's ``-binary 1`` and gensim write)."""

from __future__ import annotations

import warnings
from collections import Counter
from typing import IO

import numpy as np
import torch

from synthembed import _kernels
from synthembed.errors import FileFormatError
from synthembed.formats.streams import PEEK, PeekReader, parse_header

__all__ = ["read_binary", "write_binary"]

_BLOCK = 128 * 1024  # bytes read at a time


def read_binary(
    reader: PeekReader, *, limit: int | None, errors: str, source: str, size_bound: int | None
) -> tuple[list[str], np.ndarray, Counter[str]]:
    """Read a word2vec binary stream. Returns words, rows and skip counts."""
    first = reader.readline()
    parsed = parse_header(first)
    if parsed is None:
        raise FileFormatError(
            f"{source}: a word2vec binary file starts with '<count> <dim>'; got {first[:80]!r}."
        )
    promised, dim = parsed
    if dim < 1:
        raise FileFormatError(f"{source}: the header gives dimension {dim}; expected >= 1.")
    n = promised if limit is None else min(promised, limit)
    capacity = n if size_bound is None else min(n, size_bound // (4 * dim + 2) + 1)
    array = _kernels.empty(capacity, dim, dtype=torch.float32).numpy()  # 2 MiB pages when large
    words: list[str] = []
    skipped: Counter[str] = Counter()
    width = 4 * dim
    buf = b""
    pos = 0
    offset = len(first)  # byte offset of buf[0] in the (decompressed) file
    row = 0
    for entry in range(n):
        # Need the word (up to a space) and then `width` bytes.
        while True:
            while pos < len(buf) and buf[pos] in (10, 13):  # newline after the previous vector
                pos += 1
            space = buf.find(b" ", pos)
            if space >= 0 and len(buf) - space - 1 >= width:
                break
            more = reader.read(max(_BLOCK, width + 1024))
            if not more:
                raise FileFormatError(
                    f"{source}: vector {entry + 1} of {promised} is cut short at byte "
                    f"{offset + len(buf)}: the file is truncated."
                )
            buf = buf[pos:] + more
            offset += pos
            pos = 0
        raw_word = buf[pos:space]
        try:
            word = raw_word.decode("utf-8")
        except UnicodeDecodeError as exc:
            if errors == "raise":
                raise FileFormatError(
                    f"{source}: the word of vector {entry + 1} (byte {offset + pos}) is not "
                    f"valid UTF-8 (byte 0x{raw_word[exc.start]:02x} at position {exc.start})."
                ) from None
            skipped["non-UTF-8 bytes"] += 1
            pos = space + 1 + width
            continue
        values = np.frombuffer(buf, dtype="<f4", count=dim, offset=space + 1)
        if not word or not np.isfinite(values).all():
            reason = "an empty word" if not word else "a non-finite value"
            if errors == "raise":
                raise FileFormatError(
                    f"{source}: vector {entry + 1} ({word!r}, byte {offset + pos}) has {reason}."
                )
            skipped["empty word" if not word else "non-finite value"] += 1
            pos = space + 1 + width
            continue
        if row >= capacity:  # pragma: no cover - capacity bounds what the file can hold
            raise FileFormatError(f"{source}: more vectors than the file can hold.")
        array[row] = values
        words.append(word)
        row += 1
        pos = space + 1 + width
    if limit is None:
        rest = buf[pos:] + reader.read(PEEK)
        if rest.strip(b"\r\n"):
            message = f"{source}: data after the {promised} vectors the header promises."
            if errors == "raise":
                raise FileFormatError(message)
            warnings.warn(message, stacklevel=4)
    return words, array[:row], skipped


def write_binary(out: IO[bytes], words: list[str], values: np.ndarray) -> None:
    """Write the header and one ``word<space><dim float32>\\n`` entry per row."""
    n, dim = values.shape
    out.write(f"{n} {dim}\n".encode())
    little = values.astype("<f4", copy=False)
    for i, w in enumerate(words):
        out.write(w.encode("utf-8") + b" " + little[i].tobytes() + b"\n")
