"""Stream row batches into one ``.npy`` or ``.safetensors`` file, crash-safe, without holding them.

:func:`stream_rows` opens the target through :func:`synthembed.io.atomic_write`
(a temporary file beside it, fsync, rename, fsync of the directory), reserves a
header block, appends each batch's bytes, and writes the header for the final
shape when the block ends. An interrupted write leaves no file and no temporary
behind; :func:`open_rows` then maps the finished file back as a tensor.

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.npy")
    >>> with stream_rows(path) as rows:
    ...     rows.write(torch.ones(2, 3))
    ...     rows.write(torch.zeros(1, 3))
    >>> open_rows(path, rows).shape
    torch.Size([3, 3])
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from synthembed.errors import ConfigError, ShapeError
from synthembed.io import atomic_write

__all__ = ["ROW_FILE_SUFFIXES", "RowWriter", "mismatch_message", "open_rows", "stream_rows"]

ROW_FILE_SUFFIXES = (".npy", ".safetensors")
_SAFETENSORS_DTYPES = {
    np.dtype("float64"): "F64",
    np.dtype("float32"): "F32",
    np.dtype("float16"): "F16",
    np.dtype("int64"): "I64",
    np.dtype("int32"): "I32",
    np.dtype("int16"): "I16",
    np.dtype("int8"): "I8",
    np.dtype("uint8"): "U8",
    np.dtype("bool"): "BOOL",
}
# Room reserved at the start of the file for the header, written once the row
# count is known; both formats allow space padding inside their header.
_HEADER_BYTES = 512


def mismatch_message(first: tuple[int, ...], now: tuple[int, ...]) -> str:
    """The error for a batch whose per-row shape differs from the first batch's."""
    return (
        f"The layer's output has per-row shape {now} in a later batch but {first} in the "
        "first; outputs of varying length cannot be stacked. Pass mode='mean' (or 'max', "
        "'first', a callable) to reduce them to one vector per row."
    )


class RowWriter:
    """Appends ``(B, *F)`` batches to an open file after a reserved header block.

    Made by :func:`stream_rows`; :attr:`rows`, :attr:`tail` and :attr:`dtype`
    describe what was written so far.
    """

    def __init__(self, handle: IO[bytes], suffix: str, metadata: Mapping[str, str]) -> None:
        self.handle = handle
        self.suffix = suffix
        self.metadata = dict(metadata)
        self.rows = 0
        self.tail: tuple[int, ...] | None = None
        self.dtype: np.dtype[Any] | None = None
        handle.seek(_HEADER_BYTES)

    def write(self, batch: torch.Tensor) -> None:
        """Append the rows of ``batch`` (every batch has the first one's per-row shape)."""
        if batch.dtype == torch.bfloat16:  # numpy has no bfloat16
            batch = batch.float()
        array = np.ascontiguousarray(batch.numpy()).astype(
            batch.numpy().dtype.newbyteorder("<"), copy=False
        )
        if self.tail is None:
            self.tail, self.dtype = tuple(array.shape[1:]), array.dtype
            if self.suffix == ".safetensors" and array.dtype not in _SAFETENSORS_DTYPES:
                raise ShapeError(f"safetensors cannot store dtype {array.dtype}.")
        elif tuple(array.shape[1:]) != self.tail or array.dtype != self.dtype:
            raise ShapeError(mismatch_message(self.tail, tuple(array.shape[1:])))
        self.handle.write(array.tobytes())
        self.rows += int(array.shape[0])

    def finish(self) -> None:
        """Write the header for the final shape at the start of the file."""
        if self.tail is None or self.dtype is None:
            raise ShapeError("extract got no rows from the data; nothing to write.")
        self.handle.seek(0)
        self.handle.write(self._header(self.dtype, self.tail))

    def _header(self, dtype: np.dtype[Any], tail: tuple[int, ...]) -> bytes:
        shape = (self.rows, *tail)
        if self.suffix == ".npy":
            text = repr(
                {
                    "descr": np.lib.format.dtype_to_descr(dtype),
                    "fortran_order": False,
                    "shape": shape,
                }
            )
            prefix = b"\x93NUMPY\x01\x00"
            body_len = _HEADER_BYTES - len(prefix) - 2
            body = text.encode("latin1").ljust(body_len - 1) + b"\n"
            if len(body) != body_len:
                raise ShapeError(f"Shape {shape} is too long for the .npy header.")
            return prefix + body_len.to_bytes(2, "little") + body
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        header = {
            "embeddings": {
                "dtype": _SAFETENSORS_DTYPES[dtype],
                "shape": list(shape),
                "data_offsets": [0, nbytes],
            },
            "__metadata__": self.metadata,
        }
        body_len = _HEADER_BYTES - 8
        body = json.dumps(header).encode().ljust(body_len)
        if len(body) != body_len:
            raise ShapeError("The safetensors header is too long; shorten the metadata.")
        return body_len.to_bytes(8, "little") + body


@contextlib.contextmanager
def stream_rows(
    path: str | os.PathLike[str], metadata: Mapping[str, str] | None = None
) -> Iterator[RowWriter]:
    """Write row batches to ``path`` (``.npy`` or ``.safetensors``); the file appears at the end.

    The safetensors tensor is named ``"embeddings"`` and carries ``metadata``.

    Raises:
        ConfigError: ``path`` has another suffix.
        ShapeError: no rows were written, or batches of different per-row shapes.
    """
    target = Path(path)
    if target.suffix not in ROW_FILE_SUFFIXES:
        raise ConfigError(f"Row files must end in .npy or .safetensors; got {str(target)!r}.")
    with atomic_write(target, "w+b") as handle:
        writer = RowWriter(handle, target.suffix, metadata or {})
        yield writer
        writer.finish()


def open_rows(path: str | os.PathLike[str], writer: RowWriter) -> torch.Tensor:
    """Map a file finished by :func:`stream_rows` back as a tensor, without reading it."""
    if writer.tail is None or writer.dtype is None:
        raise ShapeError("extract got no rows from the data; nothing was written.")
    # mode "c" (copy-on-write) gives a writable view, so torch does not warn,
    # while the file itself stays untouched.
    mapped = np.memmap(
        path,
        dtype=writer.dtype,
        mode="c",
        offset=_HEADER_BYTES,
        shape=(writer.rows, *writer.tail),
    )
    return torch.from_numpy(mapped)  # type: ignore[arg-type]
