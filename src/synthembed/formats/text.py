"""GloVe / word2vec / fastText text: a fast block parser and an exact line-by-line reader.

Reading never does per-number Python work on a well-formed file: the text is
read in small blocks, a few numpy passes check every line's layout and split
off the words, and one C++ call (pyarrow's string-to-float cast, when pyarrow
is installed; numpy's ``loadtxt`` otherwise) parses each block's numbers into
one preallocated ``float32`` array. Only a block that fails the fast parse is
re-read line by line, to name the offending line (``errors="raise"``) or to
skip it and count it (``errors="skip"``).
"""

from __future__ import annotations

import io
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from synthembed import _kernels
from synthembed.errors import FileFormatError
from synthembed.formats.streams import PEEK, PeekReader, parse_header

__all__ = ["arrow_available", "read_text"]

# Bytes of text parsed per fast-path call: small, so the parser's working memory stays a
# few MiB next to the result (peak memory at parity with gensim's line-by-line reader).
# The pyarrow path takes 128 KiB (its working memory is ~10x the block; 128-256 KiB parse
# equally fast, larger blocks only cost memory); numpy's loadtxt path keeps 64 KiB blocks.
_BLOCK = 128 * 1024
_NUMPY_BLOCK = 64 * 1024


class _Rows:
    """Rows written into one preallocated array when a bound is known, else into blocks."""

    def __init__(self, dim: int, capacity: int | None) -> None:
        self.dim = dim
        self.n = 0
        # 2 MiB pages for a large result (the kernels' allocator): the first touch of a
        # 114 MiB array costs ~0.2 s of page faults with 4 KiB pages, ~0.01 s with 2 MiB.
        self.array = (
            _kernels.empty(capacity, dim, dtype=torch.float32).numpy()
            if capacity is not None
            else None
        )
        self.blocks: list[np.ndarray] = []

    def add(self, rows: np.ndarray, where: str) -> None:
        if self.array is not None:
            if self.n + len(rows) > len(self.array):
                raise FileFormatError(
                    f"{where} holds more vectors than its header promises ({len(self.array)})."
                )
            self.array[self.n : self.n + len(rows)] = rows
        else:
            self.blocks.append(np.ascontiguousarray(rows, dtype=np.float32))
        self.n += len(rows)

    def finish(self) -> np.ndarray:
        if self.array is not None:
            return self.array[: self.n]
        if not self.blocks:
            return np.empty((0, self.dim), dtype=np.float32)
        if len(self.blocks) == 1:
            return self.blocks[0]
        return np.concatenate(self.blocks)


class _LineError(Exception):
    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


def _parse_line_slow(line: bytes, dim: int) -> tuple[str, np.ndarray] | None:
    """Parse one line exactly, explaining any problem. None for a blank line."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _LineError(
            f"is not valid UTF-8 (byte 0x{line[exc.start]:02x} at position {exc.start})",
            "non-UTF-8 bytes",
        ) from None
    text = text.replace("\t", " ").rstrip(" \r\n")
    if not text:
        return None
    parts = text.split(" ")
    if len(parts) != dim + 1:
        raise _LineError(
            f"has {len(parts) - 1} values after the word {parts[0]!r}; expected {dim} "
            "(mixed dimensions or a broken line)",
            "wrong field count",
        )
    word = parts[0]
    if not word:
        raise _LineError("starts with a space: the word is empty", "empty word")
    values = np.empty(dim, dtype=np.float32)
    for j, tok in enumerate(parts[1:]):
        try:
            values[j] = float(tok)
        except ValueError:
            raise _LineError(
                f"has the non-numeric value {tok!r} in column {j + 2}", "non-numeric value"
            ) from None
    if not np.isfinite(values).all():
        bad = parts[1 + int(np.flatnonzero(~np.isfinite(values))[0])]
        raise _LineError(f"has the non-finite value {bad!r}", "non-finite value")
    return word, values


_ARROW: Any = None  # (pyarrow, pyarrow.compute) once imported; False when not installed


def _arrow_modules() -> Any:
    """pyarrow and pyarrow.compute when installed (the fast number parser), else None."""
    global _ARROW
    if _ARROW is None:
        try:
            import pyarrow
            import pyarrow.compute

            _ARROW = (pyarrow, pyarrow.compute)
        except ImportError:
            _ARROW = False
    return _ARROW or None


_COUNTING = np.arange(0, dtype=np.int64)


def _counting(n: int) -> np.ndarray:
    """``np.arange(n)``, from a cached array (one allocation per file, not per block)."""
    global _COUNTING
    if len(_COUNTING) < n:
        _COUNTING = np.arange(max(n, 2 * len(_COUNTING)), dtype=np.int64)
    return _COUNTING[:n]


def arrow_available() -> bool:
    """Whether pyarrow's fast number parser is installed (else numpy's ``loadtxt`` is used)."""
    return _arrow_modules() is not None


def _fast_parse_arrow(
    block: bytes, dim: int, nrows: int | None, arrow: Any
) -> tuple[list[str], np.ndarray] | None:
    """Parse a block of complete lines with a few numpy passes and one C++ number parse.

    Strictly ``word v1 ... vD\\n`` per line with single spaces; anything else returns
    None (the caller then takes the exact line-by-line path, which names the problem).

    1. The separators (bytes <= 0x20) are located in one numpy pass; there must be
       ``dim + 1`` per line, ``dim`` spaces then a newline (the field count of every line
       is checked exactly, not only in total).
    2. The words (up to each line's first space) are decoded one per line.
    3. In a copy of the block each word's bytes are overwritten with ``'0'``, then every
       space and newline is deleted (``bytes.translate``): the tokens lie back to back, and
       token ``k`` ends at ``S[k] - k`` where ``S[k]`` is its separator's position.
    4. Those offsets and bytes form an Arrow binary array that ``pyarrow.compute.cast``
       parses to float32 in C++ (correctly rounded); column 0 (the zeroed words) is dropped.
    """
    pa, pc = arrow
    data = np.frombuffer(block, dtype=np.uint8)
    seps = np.flatnonzero(data <= 32)  # (n_lines * (dim + 1),)
    width = dim + 1
    n_lines = len(seps) // width
    if n_lines == 0 or n_lines * width != len(seps) or len(block) >= 2**31:
        return None
    grid = seps.reshape(n_lines, width)  # (L, D + 1): D spaces, then the newline
    kinds = data[grid]
    if not (kinds[:, :dim] == 32).all() or not (kinds[:, dim] == 10).all():
        return None
    if nrows is not None and n_lines > nrows:
        n_lines = nrows
        grid = grid[:n_lines]
        seps = seps[: n_lines * width]
        block = block[: int(grid[-1, dim]) + 1]
    starts = np.empty(n_lines, dtype=np.int64)  # first byte of each line
    starts[0] = 0
    starts[1:] = grid[:-1, dim] + 1
    lengths = grid[:, 0] - starts  # (L,) bytes of each word
    if not lengths.all():  # a line starting with a space: empty word
        return None
    total = int(lengths.sum())
    before = np.cumsum(lengths) - lengths  # (L,) word bytes before line i
    # Each word with the space after it, gathered and decoded at once: "w1 w2 ... wL ".
    spans = np.repeat(starts - before - _counting(n_lines), lengths + 1)
    try:
        words = data[spans + _counting(total + n_lines)].tobytes().decode("utf-8").split(" ")
    except UnicodeDecodeError:
        return None
    words.pop()
    work = bytearray(block)
    view = np.frombuffer(work, dtype=np.uint8)
    # Every byte of every word (line start + 0 .. length - 1) becomes a "0".
    view[np.repeat(starts - before, lengths) + _counting(total)] = 48
    packed = work.translate(None, b" \n")
    offsets = np.empty(len(seps) + 1, dtype=np.int32)
    offsets[0] = 0
    np.subtract(seps, _counting(len(seps)), out=offsets[1:], casting="unsafe")
    tokens = pa.Array.from_buffers(
        pa.binary(), len(seps), [None, pa.py_buffer(offsets), pa.py_buffer(packed)]
    )
    try:
        # The system allocator: Arrow's default (mimalloc) keeps freed blocks mapped, ~5 MiB
        # of peak memory here.
        parsed = pc.cast(tokens, pa.float32(), memory_pool=pa.system_memory_pool())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    # The result has no nulls: its data buffer is the values (to_numpy would import pandas).
    flat = np.frombuffer(
        parsed.buffers()[1], dtype=np.float32, count=len(seps), offset=4 * parsed.offset
    )
    values = flat.reshape(n_lines, width)[:, 1:]
    if not np.isfinite(values).all():
        return None
    return words, values


def _fast_parse(
    block: bytes, dim: int, nrows: int | None
) -> tuple[list[str], np.ndarray, bool] | None:
    """Parse a block of complete lines, numbers in C; None when anything looks off (then go slow).

    With pyarrow installed, see :func:`_fast_parse_arrow`. Otherwise the words are
    split off per line and the numbers are parsed by numpy's C reader (``np.loadtxt``)
    straight into float32. A short line makes the reader fail; a long one is caught by
    the count of separators, which must be ``dim`` per line.

    Returns:
        ``(words, values, one_row_per_line)``; the flag says that the block held exactly
        ``len(words)`` lines (no blank line dropped), so the caller need not count them.
    """
    arrow = _arrow_modules()
    if arrow is not None:
        whole = block if block.endswith(b"\n") else block + b"\n"  # a last line without one
        got = _fast_parse_arrow(whole, dim, nrows, arrow)
        if got is not None:
            return got[0], got[1], True
        if b"\n\n" not in whole and not whole.startswith(b"\n"):
            return None
        lines = [ln for ln in whole.split(b"\n") if ln]  # blank lines are allowed and skipped
        if not lines:
            return [], np.empty((0, dim), dtype=np.float32), False
        got = _fast_parse_arrow(b"\n".join(lines) + b"\n", dim, nrows, arrow)
        return None if got is None else (got[0], got[1], False)
    lines = block.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    if b"" in lines:  # blank lines are allowed and skipped
        lines = [ln for ln in lines if ln]
        block = b"\n".join(lines) + b"\n"
    if nrows is not None and len(lines) > nrows:
        lines = lines[:nrows]
        block = b"\n".join(lines) + b"\n"
    if not lines:
        return [], np.empty((0, dim), dtype=np.float32), False
    if block.count(b" ") != len(lines) * dim:
        return None
    try:
        words = [ln.split(b" ", 1)[0].decode("utf-8") for ln in lines]
    except UnicodeDecodeError:
        return None
    if "" in words:
        return None
    try:
        values = np.loadtxt(
            io.BytesIO(block),
            dtype=np.float32,
            delimiter=" ",
            usecols=range(1, dim + 1),
            comments=None,
            quotechar=None,
            encoding="latin-1",  # the skipped word column may hold any bytes
            ndmin=2,
        )
    except ValueError:
        return None
    if values.shape != (len(words), dim) or not np.isfinite(values).all():
        return None
    return words, values, False


def read_text(
    reader: PeekReader,
    *,
    header: bool,
    limit: int | None,
    errors: str,
    source: str,
    line_bound: int | None,
) -> tuple[list[str], np.ndarray, Counter[str]]:
    """Read a GloVe / word2vec text stream. Returns words, rows and skip counts."""
    line_no = 0
    promised: int | None = None
    if header:
        first = reader.readline()
        line_no = 1
        parsed = parse_header(first)
        if parsed is None:
            raise FileFormatError(
                f"{source}, line 1: expected a header '<count> <dim>', got {first[:80]!r}."
            )
        promised, dim = parsed
        if dim < 1:
            raise FileFormatError(
                f"{source}, line 1: the header gives dimension {dim}; expected >= 1."
            )
    else:
        head = reader.peek(4 * PEEK)
        dim = -1
        lines = head.split(b"\n")[:-1] if b"\n" in head else [head]
        for i, raw in enumerate(lines):
            stripped = raw.replace(b"\t", b" ").rstrip(b" \r")  # tabs are whitespace
            if stripped:
                dim = len(stripped.split(b" ")) - 1
                _refuse_header_as_row(stripped, lines[i + 1 :], source)
                break
        if dim < 1:
            if not head.strip():
                raise FileFormatError(f"{source} holds no vectors (the file is empty).")
            raise FileFormatError(
                f"{source}, line 1: expected 'word v1 ... vD'; got {head[:80]!r} with no values."
            )
    capacity: int | None = None
    if line_bound is not None:
        # At most one row per line: the array is allocated once, at (about) its final size.
        capacity = line_bound
    if promised is not None:
        capacity = promised if capacity is None else min(capacity, promised)
    if limit is not None:
        capacity = limit if capacity is None else min(capacity, limit)
    rows = _Rows(dim, capacity)
    words: list[str] = []
    skipped: Counter[str] = Counter()
    normalise = False
    block_size = _BLOCK if _arrow_modules() is not None else min(_BLOCK, _NUMPY_BLOCK)
    blocks = _text_blocks(reader, block_size) if limit != 0 else iter(())
    for piece, last in blocks:
        remaining = None if limit is None else limit - rows.n
        first_line = line_no + 1
        fast = _fast_parse(_normalise_ends(piece) if normalise else piece, dim, remaining)
        if fast is None and not normalise and (b"\r" in piece or b" \n" in piece or b"\t" in piece):
            # CRLF line ends, a space before the newline (word2vec's C tool, fastText) or
            # tab separators: normalised from this block on (checked once a block fails, not on every block).
            normalise = True
            fast = _fast_parse(_normalise_ends(piece), dim, remaining)
        exact_lines = False
        if fast is not None:
            got_words, values, exact_lines = fast
            if got_words:
                rows.add(values, source)
                words.extend(got_words)
        else:
            slow_words, slow_values = _slow_block(
                piece, dim, first_line, remaining, errors, source, skipped, last, last
            )
            if slow_words:
                rows.add(np.stack(slow_values), source)
                words.extend(slow_words)
        if exact_lines:
            line_no += len(got_words)
        else:
            line_no += piece.count(b"\n") + (0 if piece.endswith(b"\n") else 1)
        if limit is not None and rows.n >= limit:
            break
    if promised is not None and limit is None and rows.n != promised:
        message = (
            f"{source}: the header promises {promised} vectors but the file holds {rows.n}"
            + (f" (and {sum(skipped.values())} skipped lines)" if skipped else "")
            + "; the file may be truncated."
        )
        if errors == "raise" or rows.n > promised:
            raise FileFormatError(message)
        warnings.warn(message, stacklevel=4)
    return words, rows.finish(), skipped


def _refuse_header_as_row(first: bytes, following: list[bytes], source: str) -> None:
    """A word2vec header read as a GloVe row ('3 4': the word '3' and one value) is named."""
    header = parse_header(first)
    if header is None:
        return
    for raw in following:
        fields = raw.replace(b"\t", b" ").split()
        if fields:
            if len(fields) - 1 != 1:
                raise FileFormatError(
                    f"{source}, line 1 is a word2vec header '{first.decode('ascii')}' "
                    f"({header[0]} vectors of dimension {header[1]}), not a GloVe row; read the "
                    "file with format='word2vec' (or 'auto')."
                )
            return


def _text_blocks(reader: PeekReader, block_size: int) -> Iterator[tuple[bytes, bool]]:
    """The stream as blocks of whole lines: ``(piece, last)``; ``last`` marks a final line
    without a newline (a whitespace-only tail is dropped)."""
    carry = b""
    while True:
        data = reader.read(block_size)
        if not data:
            if carry.strip():
                yield carry, True
            return
        cut = data.rfind(b"\n")  # the carry is part of one line: it holds no newline
        if cut < 0:
            carry += data
            continue
        # One copy of the block's bytes (memoryview: no intermediate slice).
        piece = carry + memoryview(data)[: cut + 1] if carry else data[: cut + 1]
        carry = data[cut + 1 :]
        yield piece, False


def _normalise_ends(piece: bytes) -> bytes:
    """``\\r\\n`` and ``" \\n"`` line ends as plain ``\\n``; tabs as spaces."""
    if b"\t" in piece:
        piece = piece.replace(b"\t", b" ")
    if b"\r" in piece:
        piece = piece.replace(b"\r\n", b"\n")
    if b" \n" in piece:
        piece = piece.replace(b" \n", b"\n")
    return piece


def _slow_block(
    piece: bytes,
    dim: int,
    first_line: int,
    remaining: int | None,
    errors: str,
    source: str,
    skipped: Counter[str],
    ends_without_newline: bool,
    eof: bool,
) -> tuple[list[str], list[np.ndarray]]:
    lines = piece.split(b"\n")
    if piece.endswith(b"\n"):
        lines.pop()
    out_words: list[str] = []
    out_values: list[np.ndarray] = []
    for offset, line in enumerate(lines):
        if remaining is not None and len(out_words) >= remaining:
            break
        number = first_line + offset
        try:
            parsed = _parse_line_slow(line, dim)
        except _LineError as exc:
            last = ends_without_newline and offset == len(lines) - 1
            hint = (
                " It is the last line and has no newline: the file looks truncated." if last else ""
            )
            if errors == "raise":
                raise FileFormatError(f"{source}, line {number} {exc.reason}.{hint}") from None
            skipped[exc.kind] += 1
            continue
        if parsed is not None:
            out_words.append(parsed[0])
            out_values.append(parsed[1])
    return out_words, out_values
