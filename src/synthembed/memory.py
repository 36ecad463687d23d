"""Exact memory accounting of a module's tensors.

``sys.getsizeof(layer)`` (the founding tutorial's estimate) measures the
Python object, not tensor storage, and answers a few hundred bytes for a
gigabyte table. :func:`memory_report` counts what the tensors hold: for every
parameter and buffer ``numel * element_size`` bytes, with storage shared by
several tensors (tied weights, views) counted once.

Modules built on the ``meta`` device hold no storage, yet report the bytes
they would take: a way to size a 100-million-row table without allocating it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from synthembed._validation import check_int

__all__ = ["MemoryReport", "TensorMemory", "format_bytes", "memory_report"]


def format_bytes(n: float) -> str:
    """Bytes in binary units: ``format_bytes(1536) == '1.50 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GiB"  # pragma: no cover


@dataclass(frozen=True)
class TensorMemory:
    """One tensor's share of a module's memory.

    Attributes:
        name: dotted name in the module (``pool.weight``) or ``optimizer:<param>.<key>``.
        kind: ``"parameter"``, ``"buffer"`` or ``"optimizer"``.
        shape: the tensor's shape.
        dtype: its dtype, e.g. ``"float32"``.
        numel: number of elements.
        element_size: bytes per element.
        nbytes: ``numel * element_size``.
        counted_bytes: bytes this tensor adds to the total (0 for an alias of a
            tensor listed before it).
        shared_with: the earlier tensor whose storage this one shares, if any.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    dtype: str
    numel: int
    element_size: int
    nbytes: int
    counted_bytes: int
    shared_with: str | None = None


@dataclass(frozen=True)
class MemoryReport:
    """What :func:`memory_report` returns; ``str(report)`` is a printable table.

    Attributes:
        tensors: one entry per parameter, buffer (and optimizer state tensor).
        parameter_bytes / buffer_bytes / optimizer_bytes: totals, shared storage counted once.
        total_bytes: parameters + buffers (the model itself, optimizer state apart).
        num_embeddings / embedding_dim: the table shape the module stands for, if known.
        full_float32_bytes: ``num_embeddings * embedding_dim * 4``, the dense float32 table.
        compression_ratio: ``full_float32_bytes / total_bytes``.
    """

    tensors: tuple[TensorMemory, ...]
    parameter_bytes: int
    buffer_bytes: int
    optimizer_bytes: int
    num_embeddings: int | None
    embedding_dim: int | None

    @property
    def total_bytes(self) -> int:
        """Parameters and buffers, shared storage counted once."""
        return self.parameter_bytes + self.buffer_bytes

    @property
    def full_float32_bytes(self) -> int | None:
        """Bytes of the equivalent dense float32 table, or None if its shape is unknown."""
        if self.num_embeddings is None or self.embedding_dim is None:
            return None
        return self.num_embeddings * self.embedding_dim * 4

    @property
    def compression_ratio(self) -> float | None:
        """How many times smaller than the dense float32 table (None if unknown)."""
        full = self.full_float32_bytes
        if full is None:
            return None
        return full / self.total_bytes if self.total_bytes else float("inf")

    def __str__(self) -> str:
        any_shared = any(t.shared_with for t in self.tensors)
        rows = [("tensor", "kind", "shape", "dtype", "bytes", "note" if any_shared else "")]
        for t in self.tensors:
            note = f"shares storage with {t.shared_with}" if t.shared_with else ""
            rows.append(
                (
                    t.name,
                    t.kind,
                    "x".join(map(str, t.shape)) or "scalar",
                    t.dtype,
                    f"{t.nbytes:,}",
                    note,
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = [
            "  ".join(
                c.ljust(w) if i != 4 else c.rjust(w) for i, (c, w) in enumerate(zip(r[:5], widths))
            )
            + (f"  {r[5]}" if r[5] else "")
            for r in rows
        ]
        lines.insert(1, "-" * len(lines[0]))
        summary = [
            ("parameters", self.parameter_bytes),
            ("buffers", self.buffer_bytes),
            ("total (parameters + buffers)", self.total_bytes),
        ]
        if self.optimizer_bytes:
            summary.append(("optimizer state", self.optimizer_bytes))
        full = self.full_float32_bytes
        if full is not None:
            summary.append(
                (f"dense float32 table {self.num_embeddings:,} x {self.embedding_dim}", full)
            )
        label_w = max(len(s[0]) for s in summary)
        lines.append("")
        lines += [f"{k.ljust(label_w)}  {v:>16,} B  ({format_bytes(v)})" for k, v in summary]
        ratio = self.compression_ratio
        if ratio is not None:
            lines.append(f"{'compression vs dense float32'.ljust(label_w)}  {ratio:>16.2f}x")
        return "\n".join(lines)


def _span(t: torch.Tensor) -> tuple[int, int]:
    """The byte interval of storage that ``t`` reaches."""
    es = t.element_size()
    if t.numel() == 0:
        return (0, 0)
    last = sum((s - 1) * st for s, st in zip(t.shape, t.stride()))
    start = t.storage_offset() * es
    return (int(start), int(start + (last + 1) * es))


def _added(intervals: list[tuple[int, int]], new: tuple[int, int]) -> int:
    """Bytes of ``new`` not already covered by ``intervals`` (then adds it)."""
    a, b = new
    covered = 0
    for x, y in intervals:
        lo, hi = max(a, x), min(b, y)
        if hi > lo:
            covered += hi - lo
    intervals.append(new)
    return max(0, (b - a) - covered)


def memory_report(
    module: nn.Module,
    *,
    num_embeddings: int | None = None,
    embedding_dim: int | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> MemoryReport:
    """Exact bytes of every parameter and buffer of ``module``, against a dense float32 table.

    Args:
        module: any module; its ``num_embeddings`` and ``embedding_dim``
            attributes, when present, give the equivalent dense table.
        num_embeddings / embedding_dim: override (or supply) that table's shape.
        optimizer: also count this optimizer's state tensors for the
            module's parameters (Adam keeps two per parameter).

    Returns:
        A :class:`MemoryReport`; ``print(report)`` shows the table.

    Example:
        >>> from synthembed.layers.embedding import Embedding
        >>> memory_report(Embedding(1000, 16)).total_bytes
        64000
    """
    v = num_embeddings if num_embeddings is not None else getattr(module, "num_embeddings", None)
    d = embedding_dim if embedding_dim is not None else getattr(module, "embedding_dim", None)
    check_int("memory_report", "num_embeddings", v, 0, optional=True)
    check_int("memory_report", "embedding_dim", d, 0, optional=True)
    owners: dict[tuple[str, int], str] = {}
    spans: dict[tuple[str, int], list[tuple[int, int]]] = {}
    totals = {"parameter": 0, "buffer": 0, "optimizer": 0}
    entries: list[TensorMemory] = []

    def add(name: str, kind: str, t: torch.Tensor) -> None:
        shared_with = None
        nbytes = t.numel() * t.element_size()
        if t.device.type == "meta" or t.numel() == 0:
            counted = nbytes
        else:
            key = (str(t.device), t.untyped_storage().data_ptr())
            if key in owners:
                shared_with = owners[key]
            else:
                owners[key] = name
            counted = _added(spans.setdefault(key, []), _span(t))
        totals[kind] += counted
        entries.append(
            TensorMemory(
                name=name,
                kind=kind,
                shape=tuple(t.shape),
                dtype=str(t.dtype).removeprefix("torch."),
                numel=t.numel(),
                element_size=t.element_size(),
                nbytes=nbytes,
                counted_bytes=counted,
                shared_with=shared_with,
            )
        )

    for name, p in module.named_parameters(remove_duplicate=False):
        add(name, "parameter", p)
    for bname, buf in module.named_buffers(remove_duplicate=False):
        add(bname, "buffer", buf)
    if optimizer is not None:
        names = {id(p): n for n, p in module.named_parameters()}
        for param, state in optimizer.state.items():
            if id(param) not in names:
                continue
            for key, value in state.items():
                if isinstance(value, torch.Tensor):
                    add(f"optimizer:{names[id(param)]}.{key}", "optimizer", value)
    return MemoryReport(
        tensors=tuple(entries),
        parameter_bytes=totals["parameter"],
        buffer_bytes=totals["buffer"],
        optimizer_bytes=totals["optimizer"],
        num_embeddings=v,
        embedding_dim=d,
    )
