"""Allocation of tables, outputs and gradients: 2 MiB pages and a reuse pool.

Both tricks pay on this machine (``benchmarks/lookup.py``, rows "forward" and
"fwd+bwd dense"; BENCHMARKS.md has the fast/reference pairs):

- numpy asks the kernel for 2 MiB pages (``madvise(MADV_HUGEPAGE)``) on
  allocations of 4 MiB and more, torch's allocator does not. Random row
  gathers then miss the TLB far less often and a fresh ``(N, D)`` output or
  ``(V, D)`` gradient takes 512x fewer page faults (1M x 128: forward 2-3x,
  dense backward 5x faster). dtypes numpy lacks (bfloat16) borrow an integer
  dtype of the same width and are viewed back.
- :class:`BufferPool` hands a large buffer out again once every tensor made
  from it has died (``weakref.finalize`` on the numpy view that the tensor's
  storage holds: no reference counting by hand).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np
import torch

__all__ = ["POOL_MIN_ELEMENTS", "BufferPool", "empty"]

#: Outputs smaller than this (in elements) skip the pool: its bookkeeping costs more.
POOL_MIN_ELEMENTS = 1 << 18

_NUMPY = {
    torch.float32: np.float32,
    torch.float64: np.float64,
    torch.float16: np.float16,
    torch.int64: np.int64,
    torch.int32: np.int32,
    torch.int16: np.int16,
    torch.int8: np.int8,
    torch.uint8: np.uint8,
    torch.bool: np.bool_,
}
# Same-width stand-ins for dtypes numpy lacks; the tensor is viewed back.
_STAND_IN = {torch.bfloat16: np.int16}


def _numpy_dtype(dtype: torch.dtype) -> Any:
    return _NUMPY.get(dtype, _STAND_IN.get(dtype))


def _wrap(array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    tensor = torch.from_numpy(array)
    return tensor if tensor.dtype == dtype else tensor.view(dtype)


def empty(
    rows: int,
    cols: int,
    *,
    device: Any = None,
    dtype: torch.dtype | None = None,
    zero: bool = False,
) -> torch.Tensor:
    """An uninitialised (or, with ``zero=True``, zeroed) ``(rows, cols)`` tensor.

    On the CPU the storage comes from numpy (2 MiB pages for large sizes, see
    the module docstring); elsewhere from ``torch.empty`` / ``torch.zeros``.

    Example:
        >>> empty(2, 3, zero=True)
        tensor([[0., 0., 0.],
                [0., 0., 0.]])
    """
    dtype = dtype or torch.get_default_dtype()
    dev = torch.device(device) if device is not None else torch.device("cpu")
    np_dtype = _numpy_dtype(dtype)
    if dev.type == "cpu" and np_dtype is not None:
        make = np.zeros if zero else np.empty
        return _wrap(make((rows, cols), dtype=np_dtype), dtype)
    make_t = torch.zeros if zero else torch.empty
    return make_t((rows, cols), device=dev, dtype=dtype)


class BufferPool:
    """A few large CPU buffers handed out again once nothing uses them.

    A dense backward needs a fresh ``V x D`` zero table every step and a lookup
    a fresh ``N x D`` output. Allocating anew costs a page fault per page
    touched, and on a busy machine the kernel may stall to compact memory for
    2 MiB pages. A buffer returns to the pool when the last tensor sharing its
    memory dies (the optimizer's ``zero_grad`` dropped the gradient, the caller
    dropped the output); then it is zeroed with one ``memset``-speed pass when
    asked for zeros. At most ``size`` idle buffers are kept. Thread-safe.
    """

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._idle: list[np.ndarray] = []
        # Re-entrant: a garbage collection inside _take may run _give_back on this thread.
        self._lock = threading.RLock()

    def zeros(self, rows: int, cols: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """A zeroed ``(rows, cols)`` tensor, reusing an idle buffer when one fits."""
        return self._take(rows, cols, device, dtype, zero=True)

    def empty(self, rows: int, cols: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """An uninitialised ``(rows, cols)`` tensor, reusing an idle buffer when one fits."""
        return self._take(rows, cols, device, dtype, zero=False)

    def _take(
        self, rows: int, cols: int, device: torch.device, dtype: torch.dtype, *, zero: bool
    ) -> torch.Tensor:
        np_dtype = _numpy_dtype(dtype)
        if device.type != "cpu" or np_dtype is None or self.size <= 0:
            return empty(rows, cols, device=device, dtype=dtype, zero=zero)
        base = None
        with self._lock:
            for i, array in enumerate(self._idle):
                if array.shape == (rows, cols) and array.dtype == np_dtype:
                    base = self._idle.pop(i)
                    break
        fresh = base is None
        if base is None:
            base = (np.zeros if zero else np.empty)((rows, cols), dtype=np_dtype)
        view = base.view()  # the object the tensor's storage holds; dies with the last tensor
        weakref.finalize(view, _give_back, weakref.ref(self), base)
        out = _wrap(view, dtype)
        if zero and not fresh:
            out.zero_()  # torch's multi-threaded memset: 15 ms for 512 MiB here, numpy's fill 19
        return out

    def _give_back(self, base: np.ndarray) -> None:
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append(base)

    def clear(self) -> None:
        """Release every idle buffer."""
        with self._lock:
            self._idle = []

    def __deepcopy__(self, memo: dict[int, Any]) -> BufferPool:
        return BufferPool(self.size)  # buffers are scratch space, never copied

    def __getstate__(self) -> dict[str, Any]:
        return {"size": self.size}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["size"])  # type: ignore[misc]


def _give_back(pool_ref: weakref.ref[BufferPool], base: np.ndarray) -> None:
    pool = pool_ref()
    if pool is not None:
        pool._give_back(base)
