"""Crash-safe saving: a process SIGKILLed mid-save never damages the previous file.

The savers covered are :func:`synthembed.io.save` (an embedding layer),
:meth:`Vocabulary.save` and :func:`synthembed.pretrained.save_vectors` (a GloVe text
file, read back with :func:`~synthembed.pretrained.load_vectors`).

One helper process imports synthembed once and then acts as a fork server:
for every round it forks a worker that saves the same path over and over
(each save with new contents, numbered by a round counter), the test kills
that worker with SIGKILL, and then loads the file itself. The file must always
load and hold one complete save.

Where the kill lands is chosen per round, so that the interesting moments are
hit every run rather than by luck:

- ``random``: the worker saves in a loop and is killed after a random delay;
  the file must hold a whole save no older than the last one seen.
- ``half_written``: the worker stops after writing half of the payload;
- ``before_fsync``: after writing everything, before ``fsync``;
- ``before_rename``: after ``fsync``, before the rename;
  in these three the file must still be exactly the previous save.
- ``after_rename``: right after the rename; the file must be the new save.

The stops are made by wrapping ``os.fdopen``/``os.fsync``/``os.replace`` in the
worker only (the calls :func:`synthembed.io.atomic_write` makes); if a wrapped
call is never reached the test fails with a clear message rather than hanging.
Forking (rather than a fresh interpreter per kill) keeps many kills within seconds.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from synthembed import io as sio
from synthembed.layers.embedding import Embedding
from synthembed.pretrained import Vectors, load_vectors, save_vectors
from synthembed.vocab import Vocabulary

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"), reason="needs fork and SIGKILL"
)

ROUNDS_PER_KIND = 24
ROWS, DIM = 2048, 64  # 512 KiB of float32
VOCAB_TOKENS = 1000
PAD = "x" * 1000  # long tokens: a vocabulary save spends its time writing, not in Python
STOPS = ("half_written", "before_fsync", "before_rename", "after_rename")
READ_TIMEOUT = 60.0  # seconds; only reached if the worker never gets to its stop
VECTOR_WORDS, VECTOR_DIM = 2000, 32  # about 0.8 MB of GloVe text, written in one call

# Round ``k`` of the vector saver: words and values both depend on ``k``. Shared as
# source so the fork server and the test build exactly the same vectors.
MAKE_VECTORS = textwrap.dedent(
    f"""
    def make_vectors(k):
        generator = torch.Generator().manual_seed(k)
        words = [f"v{{k}}_{{i}}" for i in range({VECTOR_WORDS})]
        return Vectors(words, torch.randn({VECTOR_WORDS}, {VECTOR_DIM}, generator=generator))
    """
)
_namespace: dict[str, object] = {"torch": torch, "Vectors": Vectors}
exec(MAKE_VECTORS, _namespace)
make_vectors: Callable[[int], Vectors] = _namespace["make_vectors"]  # type: ignore[assignment]

SERVER = textwrap.dedent(
    f"""
    import os, stat, sys, time
    import torch
    torch.set_num_threads(1)  # no OpenMP pool exists before fork
    import safetensors.torch  # noqa: F401  (imported before fork: workers start fast)
    from synthembed import io as sio
    from synthembed.layers.embedding import Embedding
    from synthembed.pretrained import Vectors, save_vectors
    from synthembed.vocab import Vocabulary

    def save_embedding(path, k):
        layer = Embedding({ROWS}, {DIM})
        with torch.no_grad():
            layer.weight.fill_(float(k))
        sio.save(layer, path)

    def save_vocabulary(path, k):
        Vocabulary([f"t{{k}}_{{i}}_{PAD}" for i in range({VOCAB_TOKENS})]).save(path)

    exec({MAKE_VECTORS!r})  # defines make_vectors, as in the test

    def save_vector_file(path, k):
        save_vectors(make_vectors(k), path, format="glove")

    SAVERS = {{
        "embedding": save_embedding,
        "vocabulary": save_vocabulary,
        "vectors": save_vector_file,
    }}

    def stop():
        print("stopped", flush=True)
        time.sleep(3600)  # wait here for SIGKILL

    class HalfWriter:
        def __init__(self, handle):
            self.handle = handle
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return self.handle.__exit__(*exc)
        def write(self, data):
            self.handle.write(data[: len(data) // 2])
            self.handle.flush()
            stop()
        def __getattr__(self, name):
            return getattr(self.handle, name)

    def arm(mode):
        if mode == "half_written":
            real_fdopen = os.fdopen
            os.fdopen = lambda *a, **k: HalfWriter(real_fdopen(*a, **k))
        elif mode == "before_fsync":
            real_fsync = os.fsync
            def fsync(fd):
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    stop()
                real_fsync(fd)
            os.fsync = fsync
        elif mode == "before_rename":
            os.replace = lambda src, dst: stop()
        elif mode == "after_rename":
            real_replace = os.replace
            def replace(src, dst):
                real_replace(src, dst)
                stop()
            os.replace = replace

    for line in sys.stdin:
        kind, mode, path, start = line.split()
        pid = os.fork()
        if pid == 0:
            arm(mode)
            k = int(start)
            while True:
                SAVERS[kind](path, k)
                k += 1
        print("pid", pid, flush=True)
        os.waitpid(pid, 0)
        print("reaped", flush=True)
    """
)


class _Lines:
    """Read lines from a pipe with a timeout (select on the raw fd, own buffer)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def read(self, what: str) -> str:
        deadline = time.monotonic() + READ_TIMEOUT
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(left, 0))
            if not ready:
                raise AssertionError(f"timed out waiting for {what} from the saving worker")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise AssertionError(f"the fork server exited while waiting for {what}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[subprocess.Popen[bytes], _Lines]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.stdout is not None
    try:
        yield proc, _Lines(proc.stdout.fileno())
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=60)


def _embedding_round(path: Path) -> int:
    """Load the file; return its round number after checking it is one whole save."""
    layer = sio.load(path)
    assert isinstance(layer, Embedding)
    weight = layer.weight.detach()
    assert tuple(weight.shape) == (ROWS, DIM)
    k = float(weight[0, 0])
    assert bool((weight == k).all())
    return int(k)


def _vocabulary_round(path: Path) -> int:
    vocab = Vocabulary.load(path)
    tokens = vocab.tokens
    assert len(tokens) == VOCAB_TOKENS
    rounds = {str(t).split("_")[0] for t in tokens}
    assert len(rounds) == 1
    return int(rounds.pop()[1:])


def _vectors_round(path: Path) -> int:
    """Load with ``load_vectors``; the file must equal one round's vectors exactly."""
    loaded = load_vectors(path, cache=False)
    assert loaded.format == "glove"
    words = loaded.words
    assert len(words) == VECTOR_WORDS
    rounds = {w.split("_")[0] for w in words}
    assert len(rounds) == 1
    k = int(rounds.pop()[1:])
    expected = make_vectors(k)
    assert words == expected.words
    assert loaded.vectors.dtype == torch.float32
    assert torch.equal(loaded.vectors, expected.vectors)  # 9 digits round-trip float32
    return k


def _initial(kind: str, path: Path) -> None:
    if kind == "embedding":
        layer = Embedding(ROWS, DIM)
        with torch.no_grad():
            layer.weight.fill_(0.0)
        sio.save(layer, path)
    elif kind == "vocabulary":
        Vocabulary([f"t0_{i}_{PAD}" for i in range(VOCAB_TOKENS)]).save(path)
    else:
        save_vectors(make_vectors(0), path, format="glove")


CHECKS: dict[str, Callable[[Path], int]] = {
    "embedding": _embedding_round,
    "vocabulary": _vocabulary_round,
    "vectors": _vectors_round,
}
SUFFIXES = {"embedding": ".safetensors", "vocabulary": ".json", "vectors": ".txt"}


@pytest.mark.parametrize("kind", ["embedding", "vocabulary", "vectors"])
def test_sigkill_during_save_keeps_previous_file(
    server: tuple[subprocess.Popen[bytes], _Lines], tmp_path: Path, kind: str
) -> None:
    proc, lines = server
    assert proc.stdin is not None
    path = tmp_path / f"target{SUFFIXES[kind]}"
    _initial(kind, path)
    check = CHECKS[kind]
    rng = random.Random(1234)
    last = check(path)
    assert last == 0
    # Every stop at least once, then a random mix with free-running kills.
    modes = list(STOPS) + [
        rng.choice(("random", "random", *STOPS)) for _ in range(ROUNDS_PER_KIND - len(STOPS))
    ]
    for mode in modes:
        start = last + 1
        proc.stdin.write(f"{kind} {mode} {path} {start}\n".encode())
        proc.stdin.flush()
        got = [lines.read("the worker's pid")]
        if mode != "random":
            got.append(lines.read(f"the worker to stop at {mode}"))
        else:
            time.sleep(rng.choice([0.0, rng.uniform(0.0, 0.05)]))
        (pid_line,) = [g for g in got if g.startswith("pid ")]
        os.kill(int(pid_line.split()[1]), signal.SIGKILL)
        assert lines.read("the reaped notice") == "reaped"

        leftovers = list(tmp_path.glob(f".{path.name}.*.tmp"))
        if mode in ("half_written", "before_fsync", "before_rename"):
            assert len(leftovers) == 1  # the kill really landed inside the write
        for leftover in leftovers:
            leftover.unlink()
        current = check(path)  # must load, and hold one whole save
        if mode == "after_rename":
            assert current == start
        elif mode == "random":
            assert current >= last, "the file went back to an older save"
        else:
            assert current == last, f"a save killed at {mode} changed the file"
        last = current
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
