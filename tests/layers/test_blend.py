"""Tests of synthembed.layers.blend: the one blend formula and the weak hold on an output."""

from __future__ import annotations

import copy
import pickle

import torch

from synthembed.layers.blend import LastOutput, blend


def test_blend_rates_hidden_rows_and_padding() -> None:
    rows, syn = torch.full((3, 2), 2.0), torch.full((3, 2), 10.0)
    out = blend(
        rows,
        syn,
        0.25,
        hidden=torch.tensor([False, True, False]),
        notpad=torch.tensor([True, True, False]),
    )
    # lerp: 0.75 * 2 + 0.25 * 10 = 4; hidden: fully synthetic; padding: (1 - r) * rows only.
    assert out.tolist() == [[4.0, 4.0], [10.0, 10.0], [1.5, 1.5]]


def test_blend_rate_tensor_gets_its_gradient() -> None:
    rate = torch.tensor(0.5, requires_grad=True)
    rows, syn = torch.ones(2, 3), torch.full((2, 3), 3.0)
    blend(rows, syn, rate).sum().backward()
    assert rate.grad is not None and float(rate.grad) == 12.0  # sum of (syn - rows)


def test_last_output_is_weak_and_never_copied() -> None:
    out = torch.ones(2, requires_grad=True) * 2
    held = LastOutput(out)
    assert held.get() is out
    assert copy.deepcopy(held).get() is None and pickle.loads(pickle.dumps(held)).get() is None
    del out
    assert held.get() is None
