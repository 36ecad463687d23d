"""The ``parser`` fixture: a test runs on both fast text parsers (pyarrow's, numpy's fallback)."""

from __future__ import annotations

import pytest

from synthembed.formats import arrow_available
from synthembed.formats import text as text_module

HAS_ARROW = arrow_available()


@pytest.fixture(
    params=[
        pytest.param(
            "one block",
            marks=pytest.mark.skipif(not HAS_ARROW, reason="pyarrow is not installed"),
        ),
        pytest.param(
            "tiny blocks",
            marks=pytest.mark.skipif(not HAS_ARROW, reason="pyarrow is not installed"),
        ),
        "numpy",
        "numpy tiny blocks",
    ]
)
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test on both fast parsers (pyarrow's, numpy's fallback), each with the whole
    file in one block and with lines split across 7-byte reads."""
    if "numpy" in request.param:
        monkeypatch.setattr(text_module, "_ARROW", False)
    if "tiny" in request.param:
        monkeypatch.setattr(text_module, "_BLOCK", 7)
    return str(request.param)
