"""Pretrained word vectors: fast GloVe / word2vec / fastText I/O, a cache, vocabulary alignment.

Reading never does per-number Python work on a well-formed file: the text is
read in small blocks, a few numpy passes check every line's layout and split
off the words, and one C++ call (pyarrow's string-to-float cast, when pyarrow
is installed; numpy's ``loadtxt`` otherwise) parses each block's numbers into
one preallocated ``float32`` array. Only a block that fails the fast parse is
re-read line by line, to name the offending line (``errors="raise"``) or to
skip it and count it (``errors="skip"``). Nothing half-built is ever returned.

Formats (``format=``):

- ``"glove"``: text, one ``word v1 ... vD`` per line, no header.
- ``"word2vec"``: the same with a first line ``"<count> <dim>"``.
- ``"fasttext"``: fastText's ``.vec`` files, which are word2vec text.
- ``"word2vec-binary"``: the header line, then ``word<space>`` and ``D``
  little-endian float32 per entry (what word2vec's ``-binary 1`` and gensim write).
- ``"auto"``: detected from the content (header or not, text or binary).

gzip, bz2 and xz files are read and written transparently (detected by their
magic bytes when reading, by the ``.gz`` / ``.bz2`` / ``.xz`` suffix when writing).

A parsed file is cached as a ``.npy`` array (memory-mapped on reload) and a
JSON word list; the cache records the source's size, modification time and a
fingerprint of its first and last bytes, so a changed source is parsed again.
"""

from __future__ import annotations

import bz2
import contextlib
import difflib
import gzip
import hashlib
import io
import json
import logging
import lzma
import mmap
import os
import warnings
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, Union

import numpy as np
import torch

from synthembed._validation import check_choice, check_int
from synthembed.errors import ConfigError, FileFormatError, ShapeError, UnknownTokenError
from synthembed.io import atomic_write
from synthembed.vocab import Vocabulary

__all__ = [
    "CoverageReport",
    "Vectors",
    "align",
    "default_cache_dir",
    "load_vectors",
    "save_vectors",
]

logger = logging.getLogger(__name__)

VectorFormat = Literal["auto", "glove", "word2vec", "fasttext", "word2vec-binary"]
SaveFormat = Literal["glove", "word2vec", "fasttext", "word2vec-binary"]
ErrorPolicy = Literal["raise", "skip"]
InitMode = Literal["normal", "zeros", "mean"]
PathLike = Union[str, "os.PathLike[str]"]

_FORMATS = ("auto", "glove", "word2vec", "fasttext", "word2vec-binary")
_SAVE_FORMATS = ("glove", "word2vec", "fasttext", "word2vec-binary")
_ERRORS = ("raise", "skip")
_INITS = ("normal", "zeros", "mean")
# Bytes of text parsed per fast-path call: small, so the parser's working memory stays a
# few MiB next to the result (peak memory at parity with gensim's line-by-line reader).
# The pyarrow path takes 128 KiB (its working memory is ~10x the block; 128-256 KiB parse
# equally fast, larger blocks only cost memory); numpy's loadtxt path keeps 64 KiB blocks.
_BLOCK = 128 * 1024
_NUMPY_BLOCK = 64 * 1024
_PEEK = 64 * 1024
_CACHE_FORMAT = "synthembed.vectors-cache"
_CACHE_VERSION = 1
_AUTO_CACHE_MIN_BYTES = 8 * 1024 * 1024


# ---------------------------------------------------------------------------- Vectors
class Vectors:
    """Words and their vectors: a :class:`~synthembed.vocab.Vocabulary` and a ``(V, D)`` tensor.

    Row ``i`` of :attr:`vectors` is the vector of ``vocab.index_to_key[i]``.

    Args:
        words: the words in row order (distinct), or a Vocabulary with one id per row.
        vectors: a ``(V, D)`` float tensor or array.

    Shape:
        ``vectors``: ``(V, D)``; ``vectors_obj["word"]``: ``(D,)``;
        ``vectors_obj[["a", "b"]]``: ``(2, D)``.

    Example:
        >>> v = Vectors(["cat", "dog"], torch.tensor([[1.0, 0.0], [0.8, 0.6]]))
        >>> v.dim, len(v), v["dog"].tolist()
        (2, 2, [0.800000011920929, 0.6000000238418579])
        >>> v.most_similar("cat", k=1)
        [('dog', 0.800000011920929)]
    """

    def __init__(
        self,
        words: Sequence[str] | Vocabulary,
        vectors: Any,
        *,
        _trusted: bool = False,
    ) -> None:
        tensor = torch.as_tensor(vectors)
        if tensor.dim() != 2:
            raise ShapeError(
                f"vectors must be a 2-d (V, D) tensor; got shape {tuple(tensor.shape)}."
            )
        if not tensor.is_floating_point():
            raise ShapeError(f"vectors must be floating point; got dtype {tensor.dtype}.")
        if isinstance(words, Vocabulary):
            vocab: Vocabulary | None = words
            word_list = [str(w) for w in words.index_to_key]
        else:
            vocab = None
            word_list = words if isinstance(words, list) and _trusted else list(words)
        if len(word_list) != tensor.shape[0]:
            raise ShapeError(
                f"Got {len(word_list)} words but {tensor.shape[0]} vectors; each row needs one word."
            )
        # The readers have checked for repeats already (_trusted).
        if vocab is None and not _trusted and len(set(word_list)) != len(word_list):
            dupes = [w for w, c in Counter(word_list).items() if c > 1][:5]
            raise ConfigError(f"Vectors words must be distinct; repeated: {dupes!r}.")
        self._words = word_list
        # Built on first lookup: loading a file then building a layer need not hold it at
        # the same time as the parse buffers (peak memory).
        self._index_cache: dict[str, int] | None = None
        self._vocab = vocab
        self.vectors: torch.Tensor = tensor
        self.source: str | None = None
        self.format: str | None = None
        self.skipped: dict[str, int] = {}
        self._unit: tuple[tuple[int, int, int], torch.Tensor] | None = None
        self._unit_low: dict[torch.dtype, torch.Tensor] = {}

    # -------------------------------------------------------------- basic access
    @property
    def _index(self) -> dict[str, int]:
        if self._index_cache is None:
            self._index_cache = dict(zip(self._words, range(len(self._words))))
        return self._index_cache

    @property
    def vocab(self) -> Vocabulary:
        """The words as a Vocabulary without specials (``oov="error"``): id ``i`` is row ``i``."""
        if self._vocab is None:
            self._vocab = Vocabulary(
                self._words, specials=(), pad_token=None, unk_token=None, oov="error"
            )
        return self._vocab

    @property
    def words(self) -> list[str]:
        """The words in row order (a copy)."""
        return list(self._words)

    @property
    def key_to_index(self) -> dict[str, int]:
        """Word to row (a copy)."""
        return dict(self._index)

    @property
    def dim(self) -> int:
        """The vector size ``D``."""
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self._words)

    def __contains__(self, word: object) -> bool:
        return word in self._index

    def index(self, word: str) -> int:
        """Row of ``word``; an unknown word raises :class:`~synthembed.errors.UnknownTokenError`."""
        row = self._index.get(word)
        if row is None:
            hint = ""
            if isinstance(word, str) and len(self._words) <= 200_000:
                close = difflib.get_close_matches(word, self._words, n=3)
                if close:
                    hint = f" Close words: {close!r}."
            raise UnknownTokenError(
                f"The word {word!r} has no vector ({len(self._words)} words loaded).{hint}"
            )
        return row

    def __getitem__(self, word: str | Sequence[str]) -> torch.Tensor:
        if isinstance(word, str):
            return self.vectors[self.index(word)]
        rows = [self.index(w) for w in word]
        return self.vectors[torch.tensor(rows, dtype=torch.long)]

    def __repr__(self) -> str:
        src = f", source={self.source!r}" if self.source else ""
        return f"Vectors(num_words={len(self)}, dim={self.dim}{src})"

    def unit_vectors(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Rows scaled to unit L2 norm (zero rows stay zero), cached until ``vectors`` changes.

        Args:
            dtype: ``torch.float32``, or ``torch.bfloat16`` for the search prefilter.
        """
        t = self.vectors
        key = (t.data_ptr(), t._version, t.shape[0])
        if self._unit is None or self._unit[0] != key:
            vecs = t.detach().float()
            norms = vecs.norm(dim=1, keepdim=True).clamp_min(1e-12)
            # Huge pages: every search streams through these rows (fewer TLB misses).
            unit = _huge_empty((vecs.shape[0], vecs.shape[1]), torch.float32)
            torch.div(vecs, norms, out=unit)
            self._unit = (key, unit)
            self._unit_low = {}
        if dtype == torch.float32:
            return self._unit[1]
        if dtype not in self._unit_low:
            low = _huge_empty((t.shape[0], t.shape[1]), dtype)
            self._unit_low[dtype] = low.copy_(self._unit[1])
        return self._unit_low[dtype]

    def most_similar(self, query: Any, k: int = 10, **options: Any) -> Any:
        """Nearest words by cosine similarity; see :func:`synthembed.analysis.most_similar`."""
        from synthembed.analysis import most_similar

        return most_similar(self, query, k, **options)

    def save(self, path: PathLike, format: SaveFormat = "word2vec", **options: Any) -> None:
        """Write these vectors to a file; see :func:`save_vectors`."""
        save_vectors(self, path, format=format, **options)


# ---------------------------------------------------------------------------- streams
def _magic_open(path: Path) -> IO[bytes]:
    """Open ``path`` for binary reading, decompressing gzip / bz2 / xz by their magic bytes."""
    with open(path, "rb") as probe:
        head = probe.read(6)
    if head[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if head[:3] == b"BZh":
        return bz2.open(path, "rb")  # type: ignore[return-value]
    if head[:6] == b"\xfd7zXZ\x00":
        return lzma.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb", buffering=0)


def _count_lines(path: Path) -> int:
    """Lines in an uncompressed file (newlines, plus one for a last line without one)."""
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    lines = 0
    last = b"\n"
    with open(path, "rb", buffering=0) as handle:
        while True:
            n = handle.readinto(buffer)
            if not n:
                break
            # numpy's compare + count is ~5x faster than bytearray.count here.
            lines += int(np.count_nonzero(np.frombuffer(buffer, dtype=np.uint8, count=n) == 10))
            last = bytes(view[n - 1 : n])
    return lines + (last != b"\n")


@contextlib.contextmanager
def _corrupt_stream_errors(source: str, compressed: bool) -> Iterator[None]:
    """Turn a decompressor's failure (truncated or corrupt gzip / bz2 / xz) into FileFormatError.

    ``EOFError`` (a stream cut short), ``lzma.LZMAError`` and ``zlib.error`` only come from
    decompression; an ``OSError`` is converted only for a compressed file, where gzip and bz2
    use it for bad data (``gzip.BadGzipFile``, "Invalid data stream"), so a real I/O error
    on a plain file keeps its own type.
    """
    try:
        yield
    except (EOFError, lzma.LZMAError, zlib.error) as exc:
        raise FileFormatError(
            f"{source} is a truncated or corrupt compressed file ({type(exc).__name__}: {exc})."
        ) from exc
    except OSError as exc:
        if not compressed:
            raise
        raise FileFormatError(
            f"{source} is a truncated or corrupt compressed file ({type(exc).__name__}: {exc})."
        ) from exc


def _is_compressed(path: Path) -> bool:
    with open(path, "rb") as probe:
        head = probe.read(6)
    return head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00"


class _Reader:
    """A stream with a peek buffer so format detection does not consume input."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.pending = b""

    def peek(self, n: int) -> bytes:
        while len(self.pending) < n:
            more = self.raw.read(max(n - len(self.pending), _PEEK))
            if not more:
                break
            self.pending += more
        return self.pending[:n]

    def read(self, n: int) -> bytes:
        if self.pending:
            out, self.pending = self.pending[:n], self.pending[n:]
            if len(out) < n:
                out += self.raw.read(n - len(out)) or b""
            return out
        return self.raw.read(n) or b""

    def readline(self, limit: int = 1 << 20) -> bytes:
        buf = self.peek(limit)
        cut = buf.find(b"\n")
        n = len(buf) if cut < 0 else cut + 1
        return self.read(n)


# ---------------------------------------------------------------------------- detection
def _parse_header(line: bytes) -> tuple[int, int] | None:
    parts = line.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def _looks_like_text_row(line: bytes, dim: int) -> bool:
    try:
        parts = line.decode("utf-8").rstrip().split(" ")
        if len(parts) != dim + 1:
            return False
        [float(x) for x in parts[1:]]
    except (UnicodeDecodeError, ValueError):
        return False
    return True


def _detect(reader: _Reader) -> str:
    """Guess the format from the first bytes: header or not, then text or binary."""
    head = reader.peek(4 * _PEEK)
    first_end = head.find(b"\n")
    first = head if first_end < 0 else head[:first_end]
    header = _parse_header(first)
    if header is None:
        return "glove"
    rest = head[first_end + 1 :] if first_end >= 0 else b""
    if not rest:
        return "word2vec"
    second_end = rest.find(b"\n")
    if second_end >= 0 and _looks_like_text_row(rest[:second_end], header[1]):
        return "word2vec"
    if second_end < 0 and len(rest) < 4 * _PEEK - 64 and _looks_like_text_row(rest, header[1]):
        return "word2vec"
    return "word2vec-binary"


# ---------------------------------------------------------------------------- row storage
_HUGE_PAGE_MIN_BYTES = 8 * 1024 * 1024


def _huge_page_region(size: int) -> mmap.mmap | None:
    """An anonymous private mapping of ``size`` bytes advised ``MADV_HUGEPAGE``, or None.

    A large buffer is written page by page; with 4 KiB pages the first touch of 114 MiB
    costs ~0.2 s of page faults here, with 2 MiB pages ~0.01 s. numpy's and torch's own
    allocations are not 2 MiB-aligned, so they rarely get huge pages. None for small
    sizes and where the platform lacks the flags (then allocate as usual).
    """
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    flags = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)
    if size < _HUGE_PAGE_MIN_BYTES or advice is None or not flags:
        return None
    try:
        region = mmap.mmap(-1, size, flags=flags)
        region.madvise(advice)
    except (OSError, ValueError):
        return None
    return region


def _allocate_rows(n: int, dim: int) -> np.ndarray:
    """An uninitialised ``(n, dim)`` float32 array, in transparent huge pages when large."""
    region = _huge_page_region(n * dim * 4)
    if region is None:
        return np.empty((n, dim), dtype=np.float32)
    return np.frombuffer(region, dtype=np.float32, count=n * dim).reshape(n, dim)


def _huge_empty(shape: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised 2-d CPU tensor, in transparent huge pages when large (see above)."""
    n = shape[0] * shape[1]
    region = _huge_page_region(n * torch.empty((), dtype=dtype).element_size())
    if region is None:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(region, dtype=dtype, count=n).view(shape)


class _Rows:
    """Rows written into one preallocated array when a bound is known, else into blocks."""

    def __init__(self, dim: int, capacity: int | None) -> None:
        self.dim = dim
        self.n = 0
        self.array = _allocate_rows(capacity, dim) if capacity is not None else None
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
    text = text.rstrip(" \t\r\n")
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


def _read_text(
    reader: _Reader,
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
        parsed = _parse_header(first)
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
        head = reader.peek(4 * _PEEK)
        dim = -1
        for raw in head.split(b"\n")[:-1] if b"\n" in head else [head]:
            stripped = raw.rstrip(b" \t\r")
            if stripped:
                dim = len(stripped.split(b" ")) - 1
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
        if fast is None and not normalise and (b"\r" in piece or b" \n" in piece):
            # CRLF line ends, or a space before the newline (word2vec's C tool, fastText):
            # normalised from this block on (checked once a block fails, not on every block).
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
        warnings.warn(message, stacklevel=3)
    return words, rows.finish(), skipped


def _text_blocks(reader: _Reader, block_size: int) -> Iterator[tuple[bytes, bool]]:
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
    """``\\r\\n`` and ``" \\n"`` line ends as plain ``\\n``."""
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


def _read_binary(
    reader: _Reader, *, limit: int | None, errors: str, source: str, size_bound: int | None
) -> tuple[list[str], np.ndarray, Counter[str]]:
    first = reader.readline()
    parsed = _parse_header(first)
    if parsed is None:
        raise FileFormatError(
            f"{source}: a word2vec binary file starts with '<count> <dim>'; got {first[:80]!r}."
        )
    promised, dim = parsed
    if dim < 1:
        raise FileFormatError(f"{source}: the header gives dimension {dim}; expected >= 1.")
    n = promised if limit is None else min(promised, limit)
    capacity = n if size_bound is None else min(n, size_bound // (4 * dim + 2) + 1)
    array = _allocate_rows(capacity, dim)
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
        rest = buf[pos:] + reader.read(_PEEK)
        if rest.strip(b"\r\n"):
            message = f"{source}: data after the {promised} vectors the header promises."
            if errors == "raise":
                raise FileFormatError(message)
            warnings.warn(message, stacklevel=3)
    return words, array[:row], skipped


def _check_duplicates(
    words: list[str],
    values: np.ndarray,
    errors: str,
    source: str,
    skipped: Counter[str],
    locate: Any,
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
    with _corrupt_stream_errors(f"'{path}'", _is_compressed(path)), _magic_open(path) as raw:
        for number, line in enumerate(raw, start=1):
            if header and number == 1:
                continue
            if line.split(b" ", 1)[0].rstrip(b"\r\n") == target:
                hits.append(number)
                if len(hits) == 2:
                    break
    hits += [0] * (2 - len(hits))
    return hits[0], hits[1]


# ---------------------------------------------------------------------------- cache
def default_cache_dir() -> Path:
    """Where parsed vector files are cached: ``$SYNTHEMBED_CACHE_DIR``, else ``~/.cache/synthembed/vectors``."""
    env = os.environ.get("SYNTHEMBED_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "synthembed" / "vectors"


def _fingerprint(path: Path) -> dict[str, Any]:
    st = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(_PEEK))
        if st.st_size > 2 * _PEEK:
            handle.seek(st.st_size - _PEEK)
            digest.update(handle.read(_PEEK))
    return {
        "path": str(path.resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "sha256_ends": digest.hexdigest(),
    }


def _cache_paths(path: Path, cache_dir: Path, options: dict[str, Any]) -> tuple[Path, Path]:
    ident = json.dumps({"path": str(path.resolve()), **options}, sort_keys=True)
    key = hashlib.sha256(ident.encode("utf-8")).hexdigest()[:32]
    stem = f"{path.name[:40]}.{key}"
    return cache_dir / f"{stem}.npy", cache_dir / f"{stem}.json"


def _read_cache(npy: Path, meta_path: Path, fingerprint: dict[str, Any]) -> Vectors | None:
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(meta, dict)
        or meta.get("format") != _CACHE_FORMAT
        or meta.get("version") != _CACHE_VERSION
        or meta.get("fingerprint") != fingerprint
    ):
        return None
    try:
        # Copy-on-write map: pages load on demand, writes stay private to this process.
        array = np.load(npy, mmap_mode="c", allow_pickle=False)
    except (OSError, ValueError):
        return None
    words = meta.get("words")
    if not isinstance(words, list) or array.ndim != 2 or array.shape[0] != len(words):
        return None
    vectors = Vectors(words, torch.from_numpy(array))
    vectors.format = meta.get("source_format")
    vectors.skipped = dict(meta.get("skipped") or {})
    return vectors


def _write_cache(
    npy: Path, meta_path: Path, fingerprint: dict[str, Any], vectors: Vectors, values: np.ndarray
) -> None:
    try:
        npy.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(npy, "wb") as handle:
            np.save(handle, np.ascontiguousarray(values), allow_pickle=False)
        meta = {
            "format": _CACHE_FORMAT,
            "version": _CACHE_VERSION,
            "fingerprint": fingerprint,
            "source_format": vectors.format,
            "skipped": vectors.skipped,
            "words": vectors._words,
        }
        with atomic_write(meta_path, "w") as handle:
            handle.write(json.dumps(meta, ensure_ascii=False))
    except OSError as exc:
        warnings.warn(f"Could not write the vector cache in '{npy.parent}': {exc}.", stacklevel=3)


# ---------------------------------------------------------------------------- load / save
def load_vectors(
    path: PathLike,
    format: VectorFormat = "auto",
    *,
    limit: int | None = None,
    errors: ErrorPolicy = "raise",
    cache: bool | Literal["auto"] = "auto",
    cache_dir: PathLike | None = None,
) -> Vectors:
    """Read GloVe, word2vec (text or binary) or fastText ``.vec`` vectors, fast.

    Args:
        path: the file; gzip, bz2 and xz compression is detected from its first bytes.
        format: ``"auto"`` (detect), ``"glove"``, ``"word2vec"``, ``"fasttext"`` or
            ``"word2vec-binary"``.
        limit: read only the first ``limit`` vectors.
        errors: ``"raise"`` stops at the first bad line with a
            :class:`~synthembed.errors.FileFormatError` naming it; ``"skip"`` drops bad
            lines (wrong field count, non-numeric or non-finite values, non-UTF-8
            bytes, repeated words after their first occurrence), counts them by
            reason in ``vectors.skipped`` and warns once.
        cache: keep the parsed array as a memory-mapped ``.npy`` plus a JSON word list
            so the next load is near-instant. ``"auto"`` caches files of 8 MiB or more.
            A cache whose source has changed (size, modification time, first and last
            bytes) is ignored and rewritten.
        cache_dir: where caches live; defaults to :func:`default_cache_dir`.

    Shape:
        ``result.vectors``: ``(V, D)`` float32.

    Returns:
        A :class:`Vectors`.

    Raises:
        FileNotFoundError: no file at ``path``.
        FileFormatError: a malformed file under ``errors="raise"``, or one with no vectors.
        ConfigError: an unknown ``format`` or ``errors`` value.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "tiny.txt")
        >>> _ = open(p, "w").write("cat 1 0\\ndog 0.8 0.6\\n")
        >>> v = load_vectors(p)
        >>> v.format, v.dim, v["dog"].tolist()
        ('glove', 2, [0.800000011920929, 0.6000000238418579])
    """
    owner = "load_vectors"
    check_choice(owner, "format", format, _FORMATS)
    check_choice(owner, "errors", errors, _ERRORS)
    check_int(owner, "limit", limit, 0, optional=True)
    check_choice(owner, "cache", cache, (True, False, "auto"))
    p = Path(os.fspath(path))
    if not p.is_file():
        raise FileNotFoundError(f"No vector file at '{p}'.")
    source = f"'{p}'"
    use_cache = cache is True or (cache == "auto" and p.stat().st_size >= _AUTO_CACHE_MIN_BYTES)
    cache_files: tuple[Path, Path] | None = None
    fingerprint: dict[str, Any] = {}
    if use_cache:
        fingerprint = _fingerprint(p)
        root = Path(os.fspath(cache_dir)) if cache_dir is not None else default_cache_dir()
        cache_files = _cache_paths(p, root, {"format": format, "limit": limit, "errors": errors})
        cached = _read_cache(*cache_files, fingerprint)
        if cached is not None:
            cached.source = str(p)
            if cached.skipped:
                _warn_skipped(source, cached.skipped)
            logger.info("Loaded %d cached vectors of %s", len(cached), source)
            return cached
    compressed = _is_compressed(p)
    with _corrupt_stream_errors(source, compressed), _magic_open(p) as raw:
        reader = _Reader(raw)
        fmt = _detect(reader) if format == "auto" else format
        if fmt == "word2vec-binary":
            words, values, skipped = _read_binary(
                reader,
                limit=limit,
                errors=errors,
                source=source,
                size_bound=None if compressed else p.stat().st_size,
            )
        else:
            words, values, skipped = _read_text(
                reader,
                header=fmt != "glove",
                limit=limit,
                errors=errors,
                source=source,
                line_bound=None if compressed or fmt != "glove" else _count_lines(p),
            )

    def locate(word: str) -> tuple[int, int]:
        return _word_lines(p, word, header=fmt != "glove")

    words, values = _check_duplicates(
        words, values, errors, source, skipped, None if fmt == "word2vec-binary" else locate
    )
    if not words and limit != 0:
        raise FileFormatError(
            f"{source} holds no readable vectors"
            + (f" ({sum(skipped.values())} lines skipped)." if skipped else ".")
        )
    vectors = Vectors(words, torch.from_numpy(values), _trusted=True)
    vectors.source = str(p)
    vectors.format = fmt
    vectors.skipped = dict(skipped)
    if skipped:
        _warn_skipped(source, vectors.skipped)
    logger.info("Parsed %d vectors of dimension %d from %s", len(words), values.shape[1], source)
    if cache_files is not None:
        _write_cache(*cache_files, fingerprint, vectors, values)
    return vectors


def _warn_skipped(source: str, skipped: dict[str, int]) -> None:
    detail = ", ".join(f"{n} {kind}" for kind, n in sorted(skipped.items()))
    warnings.warn(f"{source}: skipped {sum(skipped.values())} bad line(s): {detail}.", stacklevel=3)


@contextlib.contextmanager
def _compressed_writer(path: Path) -> Iterator[IO[bytes]]:
    suffix = path.suffix.lower()
    with atomic_write(path, "wb") as handle:
        if suffix == ".gz":
            with gzip.GzipFile(fileobj=handle, mode="wb", mtime=0) as z:
                yield z  # type: ignore[misc]
        elif suffix == ".bz2":
            with bz2.BZ2File(handle, "wb") as b:
                yield b  # type: ignore[misc]
        elif suffix == ".xz":
            with lzma.LZMAFile(handle, "wb") as x:
                yield x  # type: ignore[misc]
        else:
            yield handle


def save_vectors(
    vectors: Vectors,
    path: PathLike,
    format: SaveFormat = "word2vec",
    *,
    precision: int = 9,
) -> None:
    """Write vectors as GloVe text, word2vec text or binary, or fastText ``.vec``, atomically.

    Args:
        vectors: the :class:`Vectors` to write.
        path: target file; a ``.gz``, ``.bz2`` or ``.xz`` suffix compresses it.
        format: ``"word2vec"`` (text with a ``"<count> <dim>"`` header, readable by
            gensim, fastText and every word2vec tool), ``"fasttext"`` (the same),
            ``"glove"`` (no header) or ``"word2vec-binary"``.
        precision: significant digits of text values; 9 round-trips float32 exactly.

    Raises:
        ConfigError: an unknown format, or a word that cannot be written (empty, or
            holding a space or newline).

    Example:
        >>> import tempfile, os
        >>> v = Vectors(["a", "b"], torch.eye(2))
        >>> p = os.path.join(tempfile.mkdtemp(), "v.txt")
        >>> save_vectors(v, p, format="glove")
        >>> open(p).read().splitlines()[0]
        'a 1 0'
    """
    owner = "save_vectors"
    check_choice(owner, "format", format, _SAVE_FORMATS)
    check_int(owner, "precision", precision, 1, 17)
    if not isinstance(vectors, Vectors):
        raise ConfigError(f"save_vectors expects a Vectors object; got {type(vectors).__name__}.")
    for w in vectors._words:
        if not w or " " in w or "\n" in w:
            raise ConfigError(
                f"The word {w!r} cannot be written to a vector file: words must be non-empty and "
                "hold no spaces or newlines."
            )
    values = vectors.vectors.detach().to(torch.float32).cpu().numpy()
    n, dim = values.shape
    p = Path(os.fspath(path))
    with _compressed_writer(p) as out:
        if format != "glove":
            out.write(f"{n} {dim}\n".encode())
        if format == "word2vec-binary":
            little = values.astype("<f4", copy=False)
            for i, w in enumerate(vectors._words):
                out.write(w.encode("utf-8") + b" " + little[i].tobytes() + b"\n")
            return
        row_fmt = " ".join([f"%.{precision}g"] * dim)
        step = max(1, 65536 // dim)
        for start in range(0, n, step):
            chunk = values[start : start + step].tolist()
            names = vectors._words[start : start + step]
            text = "\n".join(w + " " + row_fmt % tuple(r) for w, r in zip(names, chunk))
            out.write(text.encode("utf-8") + b"\n")


# ---------------------------------------------------------------------------- alignment
@dataclass(frozen=True)
class CoverageReport:
    """How much of a vocabulary the pretrained vectors cover.

    Attributes:
        total: regular tokens in the vocabulary (specials and hash buckets excluded).
        found: tokens whose vector was found as is.
        found_by_fallback: tokens found only through their lowercase form.
        missing: tokens with no vector (initialised by ``init``).
        missing_examples: up to 20 missing tokens, in vocabulary order (most frequent first
            for a built vocabulary).
        token_coverage: the share of training occurrences covered (uses the vocabulary's
            counts), or None when it has none.
    """

    total: int
    found: int
    found_by_fallback: int
    missing: int
    missing_examples: tuple[str, ...]
    token_coverage: float | None = None

    @property
    def coverage(self) -> float:
        """Share of the vocabulary's regular tokens that got a pretrained vector."""
        return (self.found + self.found_by_fallback) / self.total if self.total else 1.0

    def __str__(self) -> str:
        text = (
            f"{self.found + self.found_by_fallback}/{self.total} tokens covered "
            f"({100 * self.coverage:.1f}%: {self.found} exact, {self.found_by_fallback} by "
            f"lowercase), {self.missing} missing"
        )
        if self.token_coverage is not None:
            text += f"; {100 * self.token_coverage:.1f}% of training occurrences covered"
        if self.missing_examples:
            text += f"; e.g. {list(self.missing_examples[:5])!r}"
        return text


def align(
    vectors: Vectors,
    vocab: Vocabulary,
    *,
    lowercase_fallback: bool = True,
    init: InitMode = "normal",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, CoverageReport]:
    """Lay pretrained vectors out in ``vocab`` order, with a coverage report.

    Each regular token takes its own vector, else (with ``lowercase_fallback``) the
    vector of its lowercase form. Tokens with neither, hash buckets and the unknown
    token are initialised by ``init``: ``"normal"`` draws from a normal distribution
    with the pretrained vectors' mean and standard deviation per dimension (so new rows
    are on the same scale), ``"zeros"`` uses zeros, ``"mean"`` the mean pretrained
    vector. The padding row is always zero.

    Args:
        vectors: the pretrained :class:`Vectors`.
        vocab: the vocabulary to align to.
        lowercase_fallback: look up ``token.lower()`` when ``token`` is missing.
        init: how to fill rows without a pretrained vector.
        generator: random generator for ``init="normal"``.

    Shape:
        Returns a ``(len(vocab), vectors.dim)`` float32 tensor.

    Returns:
        ``(weight, report)``.

    Example:
        >>> from synthembed.vocab import Vocabulary
        >>> v = Vectors(["cat", "dog"], torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        >>> weight, report = align(v, Vocabulary(["Dog", "cow"]), init="zeros")
        >>> weight.tolist()
        [[0.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
        >>> report.found_by_fallback, report.missing_examples
        (1, ('cow',))
    """
    owner = "align"
    if not isinstance(vectors, Vectors):
        raise ConfigError(f"align expects a Vectors object; got {type(vectors).__name__}.")
    if not isinstance(vocab, Vocabulary):
        raise ConfigError(f"align expects a synthembed Vocabulary; got {type(vocab).__name__}.")
    check_choice(owner, "init", init, _INITS)
    source = vectors.vectors.detach().to(torch.float32)
    dim = source.shape[1]
    size = len(vocab)
    if init == "zeros" or len(vectors) == 0:
        weight = torch.zeros(size, dim)
    elif init == "mean":
        weight = source.mean(dim=0).expand(size, dim).clone()
    else:
        mean = source.mean(dim=0)
        std = source.std(dim=0) if len(vectors) > 1 else torch.ones(dim)
        weight = torch.randn(size, dim, generator=generator) * std + mean
    index = vectors._index
    dst: list[int] = []
    src: list[int] = []
    exact = fallback = 0
    missing: list[str] = []
    counts = vocab.counts
    covered_count = 0
    first = vocab.first_token_id
    tokens = vocab.tokens
    for offset, token in enumerate(tokens):
        key = token if isinstance(token, str) else str(token)
        row = index.get(key)
        if row is not None:
            exact += 1
        elif lowercase_fallback and key.lower() != key:
            row = index.get(key.lower())
            if row is not None:
                fallback += 1
        if row is None:
            missing.append(key)
            continue
        dst.append(first + offset)
        src.append(row)
        covered_count += counts.get(token, 0)
    if dst:
        weight[torch.tensor(dst, dtype=torch.long)] = source[torch.tensor(src, dtype=torch.long)]
    if vocab.pad_id is not None:
        weight[vocab.pad_id] = 0.0
    total_count = sum(counts.values())
    report = CoverageReport(
        total=len(tokens),
        found=exact,
        found_by_fallback=fallback,
        missing=len(missing),
        missing_examples=tuple(missing[:20]),
        token_coverage=covered_count / total_count if total_count else None,
    )
    logger.info("Aligned pretrained vectors: %s", report)
    return weight, report
