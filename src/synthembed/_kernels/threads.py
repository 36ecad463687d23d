"""One intra-op thread for passes that scale badly on two, safely.

On a busy 2-core machine every 2-thread op waits at a barrier for the second
thread to be scheduled, which costs more than a cheap pass itself; and torch's
CPU ``index_add_`` (a scatter over an index expanded to ``(N, D)``) measured
10x slower on two threads than on one here (``benchmarks/lookup.py``, "fwd+bwd
dense"; ``benchmarks/synthesis.py``).

torch's thread count is process-wide. :func:`one_thread` counts the callers
inside it: the first one in lowers the count, the last one out restores what
the first one found, on every path (exceptions included), so two threads
interleaving can never leave the process at one thread.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

__all__ = ["one_thread"]

_lock = threading.Lock()
_inside = 0
_saved = 0


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the torch CPU ops inside on one intra-op thread, restoring the count after."""
    global _inside, _saved
    with _lock:
        if _inside == 0:
            _saved = torch.get_num_threads()
            if _saved != 1:
                torch.set_num_threads(1)
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0 and _saved != 1:
                torch.set_num_threads(_saved)
