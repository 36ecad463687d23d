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
    seen: list[int] = []
    reader = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    reader.start()
    reader.join(10)
    assert seen == [2]  # and so in every other thread: the count is process-wide


def test_each_thread_is_restored_whoever_leaves_first(two_threads) -> None:
    """Two threads inside at once, the first one in leaving first: afterwards every
    thread, the two included, runs on its count from before."""
    inside = threading.Barrier(2)
    first_left = threading.Event()
    counts: dict[str, int] = {}

    def first() -> None:
        torch.set_num_threads(2)
        with one_thread():
            inside.wait(5)
        first_left.set()
        counts["first"] = torch.get_num_threads()

    def second() -> None:
        torch.set_num_threads(2)
        with one_thread():
            inside.wait(5)
            first_left.wait(5)
        counts["second"] = torch.get_num_threads()

    a, b = threading.Thread(target=first), threading.Thread(target=second)
    a.start()
    b.start()
    a.join(10)
    b.join(10)
    assert counts == {"first": 2, "second": 2}
    assert torch.get_num_threads() == 2
