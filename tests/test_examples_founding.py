"""The founding document's uses, as our examples, run end to end (quick mode)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NAMES = ["usage", "recommender", "multimodal", "adaptive", "regularized"]


def load_example(name: str) -> ModuleType:
    path = EXAMPLES / f"founding_{name}.py"
    spec = importlib.util.spec_from_file_location(f"founding_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_usage(result: dict[str, Any]) -> None:
    assert result["output_shape"] == (1, 10, 128)


def check_multimodal(result: dict[str, Any]) -> None:
    assert result["joint_shape"] == (128, 512)  # text (256) + image (256)


def check_adaptive(result: dict[str, Any]) -> None:
    # The subclass's nn.Parameter synthesis_rate receives gradients and moves.
    assert result["rate_grad"] != 0.0
    assert result["rates"][0] != result["rates"][-1]


def check_regularized(result: dict[str, Any]) -> None:
    # get_loss() returns the subclass's L2 term, part of the total loss.
    assert all(v > 0 for v in result["l2"])
    assert result["l2"][0] < result["losses"][0]


CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "usage": check_usage,
    "multimodal": check_multimodal,
    "adaptive": check_adaptive,
    "regularized": check_regularized,
}


@pytest.mark.parametrize("name", NAMES)
def test_example_runs_and_loss_goes_down(name: str) -> None:
    result = load_example(name).main(quick=True)
    losses = result["losses"]
    assert all(torch.isfinite(torch.tensor(losses)))
    k = max(1, len(losses) // 5)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    assert last < 0.8 * first, (first, last)
    if name in CHECKS:
        CHECKS[name](result)
