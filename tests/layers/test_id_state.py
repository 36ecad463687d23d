"""synthembed.layers.id_state: compact, saturating counts; the count rate; the distillation loss."""

from __future__ import annotations

import math

import torch

from synthembed.layers.id_state import (
    COUNT_CAP,
    add_counts,
    compact_counts,
    count_rate,
    distill_loss,
    initial_rate_k,
    new_counts,
)


def test_counts_are_int32_and_count_duplicates() -> None:
    counts = new_counts(5)
    assert counts.dtype == torch.int32 and counts.tolist() == [0] * 5
    bound = add_counts(counts, torch.tensor([1, 3, 3, 3]), 0)
    assert counts.tolist() == [0, 1, 0, 3, 0] and bound == 4


def test_counts_saturate_before_int32_overflows() -> None:
    counts = torch.tensor([0, 2**31 - 3, COUNT_CAP + 5], dtype=torch.int32)
    bound = add_counts(counts, torch.tensor([1, 1, 1, 1, 0]), 2**31 - 3)  # would overflow
    assert counts.tolist() == [1, COUNT_CAP + 4, COUNT_CAP] and bound == COUNT_CAP + 5
    bound = add_counts(counts, torch.tensor([2]), bound)  # room again: no clamp
    assert counts.tolist() == [1, COUNT_CAP + 4, COUNT_CAP + 1] and bound == COUNT_CAP + 6


def test_old_int64_counts_become_compact() -> None:
    saved = torch.tensor([0, 7, 2**40], dtype=torch.long)
    out = compact_counts(saved)
    assert out.dtype == torch.int32 and out.tolist() == [0, 7, COUNT_CAP]


def test_count_rate_is_k_over_k_plus_count() -> None:
    raw = torch.tensor([initial_rate_k(0.5)], dtype=torch.float64)  # k = 10 * 0.5 / 0.5 = 10
    assert math.isclose(torch.nn.functional.softplus(raw).item(), 10.0, rel_tol=1e-12)
    r = count_rate(torch.tensor([0, 1, 10, 90], dtype=torch.int32), raw)
    assert r.shape == (4, 1)
    torch.testing.assert_close(r[:, 0], torch.tensor([1.0, 10 / 11, 0.5, 0.1], dtype=torch.float64))
    # A large start (rate near 1) does not overflow the softplus inverse.
    assert math.isclose(
        torch.nn.functional.softplus(
            torch.tensor(initial_rate_k(0.999), dtype=torch.float64)
        ).item(),
        9990.0,
        rel_tol=1e-9,
    )


def test_distill_loss_is_weighted_mean_cosine_gap_and_spares_rows() -> None:
    syn = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]], requires_grad=True)
    rows = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]], requires_grad=True)
    select = torch.tensor([True, True, False])
    weight = torch.tensor([1, 3, 5])
    loss = distill_loss(syn, rows, select, weight)
    assert loss is not None
    # Gaps 1 - cos: 0 (same direction) and 1 (orthogonal), weighted 1 and 3: (0 + 3) / 4.
    torch.testing.assert_close(loss, torch.tensor(0.75))
    loss.backward()
    assert rows.grad is None and syn.grad is not None and syn.grad[2].abs().sum() == 0
    assert distill_loss(syn, rows, torch.zeros(3, dtype=torch.bool)) is None
