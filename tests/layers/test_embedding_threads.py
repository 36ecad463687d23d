"""Concurrency (issue 18): two Python threads train different Embedding layers at once.

Each gets the results of a single-threaded run, and neither thread (nor the
process) is left with a changed ``torch.get_num_threads()``, although the fast
kernels drop to one intra-op thread inside (``synthembed._kernels.one_thread``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from synthembed.layers.embedding import Embedding

STEPS = 20

# Layers whose fast kernels enter one_thread (dense scatter-add, padding, max_norm, bags).
CONFIGS: list[dict[str, Any]] = [
    {"padding_idx": 0},
    {"padding_idx": 0, "sparse": True},
    {"max_norm": 1.0},
    {"padding_idx": 0, "mode": "mean"},
]


@pytest.fixture
def two_torch_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _train(config: dict[str, Any], seed: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """STEPS of SGD on a fresh layer; returns the final table and every step's output."""
    gen = torch.Generator().manual_seed(seed)
    layer = Embedding(5_000, 32, **config)
    with torch.no_grad():  # a start drawn from this run's own generator, not the global one
        layer.weight.copy_(torch.randn(5_000, 32, generator=gen))
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    outputs = []
    for _ in range(STEPS):
        ids = torch.randint(0, 5_000, (512, 4), generator=gen)
        opt.zero_grad()
        out = layer(ids)
        out.pow(2).sum().backward()
        opt.step()
        outputs.append(out.detach().clone())
    return layer.weight.detach().clone(), outputs


@pytest.mark.parametrize(
    "config", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items())
)
def test_two_threads_train_like_one_and_keep_the_thread_count(config, two_torch_threads) -> None:
    alone = [_train(config, seed) for seed in (1, 2)]
    results: dict[int, tuple[torch.Tensor, list[torch.Tensor]]] = {}
    counts: dict[int, tuple[int, int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work(seed: int) -> None:
        try:
            torch.set_num_threads(2)  # each worker's own count, under either OpenMP semantics
            before = torch.get_num_threads()
            start.wait()
            results[seed] = _train(config, seed)
            counts[seed] = (before, torch.get_num_threads())
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i, seed in enumerate((1, 2)):
        table, outputs = results[seed]
        assert torch.equal(table, alone[i][0])
        assert all(torch.equal(a, b) for a, b in zip(outputs, alone[i][1], strict=True))
        assert counts[seed] == (2, 2)
    assert torch.get_num_threads() == 2
