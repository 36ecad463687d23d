"""``synthembed plot`` and ``synthembed inspect`` through the real console script."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import ok_json, run, user_error

pytest.importorskip("typer")
pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")


@pytest.fixture
def vectors_file(tmp_path: Path) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    path = tmp_path / "v.txt"
    rows = [f"w{i} " + " ".join(f"{x:.4f}" for x in rng.normal(size=5)) for i in range(30)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_plot_writes_a_png_with_labels(tmp_path: Path, vectors_file: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join("ab"[i % 2] for i in range(30)) + "\n")
    out = tmp_path / "map.png"
    got = ok_json("plot", vectors_file, "--labels", labels, "-o", out)
    assert got["points"] == 30 and out.read_bytes()[:4] == b"\x89PNG"
    mapping = tmp_path / "map.tsv"
    mapping.write_text("w1\tx\nw2\ty\n")
    got = ok_json("plot", vectors_file, "-l", mapping, "--method", "tsne", "-o", tmp_path / "t.svg")
    assert got["method"] == "tsne"


def test_plot_bad_usage(tmp_path: Path, vectors_file: Path) -> None:
    user_error(run("plot", vectors_file, "-o", tmp_path / "map.jpg"), 2, "map.jpg", ".png")
    user_error(run("plot", vectors_file, "--method", "mds", "-o", tmp_path / "m.png"), 2, "mds")
    short = tmp_path / "short.txt"
    short.write_text("a\nb\n")
    user_error(run("plot", vectors_file, "-l", short, "-o", tmp_path / "m.png"), 2, "2 labels")
    user_error(run("plot", vectors_file, "-o", tmp_path / "no" / "m.png"), 2, "does not exist")


def test_inspect_a_saved_layer_and_a_vocabulary(tmp_path: Path) -> None:
    import synthembed as se

    se.save(se.QREmbedding(1000, 8), tmp_path / "qr.safetensors")
    got = ok_json("inspect", tmp_path / "qr.safetensors")
    assert got["type"] == "QREmbedding" and got["config"]["num_embeddings"] == 1000
    assert got["memory"]["compression_ratio"] > 1 and got["parameters"] == 512
    text = run("inspect", tmp_path / "qr.safetensors")
    assert "compression vs dense float32" in text.stdout
    se.save(se.Vocabulary.build(["a", "b"]), tmp_path / "v.safetensors")
    assert ok_json("inspect", tmp_path / "v.safetensors")["size"] == 4


def test_inspect_a_file_that_is_not_a_model(tmp_path: Path) -> None:
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x00" * 10)
    user_error(run("inspect", bad), 1, "model.safetensors")
