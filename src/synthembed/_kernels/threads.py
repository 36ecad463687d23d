"""One intra-op thread for passes that scale badly on two, safely.

On a busy 2-core machine every 2-thread op waits at a barrier for the second
thread to be scheduled, which costs more than a cheap pass itself; and torch's
CPU ``index_add_`` (a scatter over an index expanded to ``(N, D)``) measured
10x slower on two threads than on one here (``benchmarks/lookup.py``, "fwd+bwd
dense"; ``benchmarks/synthesis.py``).

Whose thread count ``torch.set_num_threads`` changes depends on OpenMP's state:
with torch 2.13's CPU wheel, before the first parallel region a count set in one
Python thread is read by all; after it, each thread has its own
(``tests/_kernels/test_threads.py`` shows both). :func:`one_thread` is right
under either: each thread lowers and restores its own count, and a thread that
enters while others are inside and reads the 1 they set restores the count the
first one found, so no interleaving leaves any thread, or the process, at one.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

__all__ = ["one_thread"]

_lock = threading.Lock()
_inside = 0  # callers inside one_thread, all threads together
_first_saved = 0  # the count the first of them found
_mine = threading.local()  # this thread's depth and saved count


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the torch CPU ops inside on one intra-op thread, restoring the count after."""
    global _inside, _first_saved
    depth = getattr(_mine, "depth", 0)
    if depth == 0:
        with _lock:
            found = torch.get_num_threads()
            if _inside == 0:
                _first_saved = found
            # Another thread's lowering seen through a process-wide count: not ours to keep.
            _mine.saved = _first_saved if _inside and found == 1 else found
            _inside += 1
            if found != 1:
                torch.set_num_threads(1)
    _mine.depth = depth + 1
    try:
        yield
    finally:
        _mine.depth = depth
        if depth == 0:
            with _lock:
                _inside -= 1
                if torch.get_num_threads() != _mine.saved:
                    torch.set_num_threads(_mine.saved)
