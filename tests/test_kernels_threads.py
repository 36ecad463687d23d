"""Tests for synthembed._kernels.threads.one_thread: restored on every path, thread-safe."""

from __future__ import annotations

import threading

import pytest
import torch

from synthembed._kernels import one_thread


@pytest.fixture()
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_one_thread_inside_and_restored(two_threads) -> None:
    with one_thread():
        assert torch.get_num_threads() == 1
        with one_thread():  # nested
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_one_thread_restored_after_an_error(two_threads) -> None:
    with pytest.raises(ValueError, match="boom"), one_thread():
        raise ValueError("boom")
    assert torch.get_num_threads() == 2


def test_interleaving_threads_never_leave_the_process_at_one_thread(two_threads) -> None:
    first_in = threading.Event()
    second_in = threading.Event()
    first_may_leave = threading.Event()

    def first() -> None:
        with one_thread():
            first_in.set()
            first_may_leave.wait(5)

    def second() -> None:
        first_in.wait(5)
        with one_thread():  # enters while the first is inside: sees 1 thread, must not save it
            second_in.set()
            first_may_leave.set()
        # leaves after the first one: the last one out restores the count

    a, b = threading.Thread(target=first), threading.Thread(target=second)
    a.start()
    b.start()
    a.join(10)
    b.join(10)
    assert second_in.is_set()
    assert torch.get_num_threads() == 2
