"""Shared test set-up: hypothesis profiles and one torch thread per test.

The default ``ci`` profile keeps fuzzing bounded so the suite stays fast on 2
cores; ``SYNTHEMBED_FUZZ=long`` selects a much longer search for local runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,  # shared machine: timing varies, speed lives in benchmarks/
    derandomize=True,  # the same examples every run, so CI failures reproduce
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=2_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("long" if os.environ.get("SYNTHEMBED_FUZZ") == "long" else "ci")


def pytest_configure(config: object) -> None:
    """Under pytest-xdist each worker gets one core: one torch thread avoids oversubscription.

    With ``-n 2`` on 2 cores, two workers running 2 torch threads each made small
    models 5-30x slower on a busy machine.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)
        os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny tensors: one intra-op thread avoids oversubscribing the 2 shared cores (also
    outside xdist); a test that needs more sets them itself. Restored after each test."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
