"""The digits example (examples/digits_embeddings.py) end to end, in quick mode."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits_embeddings.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load_example():
    spec = importlib.util.spec_from_file_location("digits_embeddings", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_digits_example_quick(tmp_path, capsys) -> None:
    example = load_example()
    table = example.main(quick=True, out=tmp_path)

    names = [row["name"] for row in table]
    assert names == [
        "raw pixels",
        "PCA-32",
        "CNN fc1 (extract, 32-d)",
        "PCA-6",
        "AutoencoderEmbedder (6-d)",
    ]
    assert [row["dim"] for row in table] == [64, 32, 32, 6, 6]
    for row in table:
        assert len(row["folds"]) == 3
        assert row["accuracy"] == pytest.approx(np.mean(row["folds"]))
        # Ten classes: chance is 0.1; even the quick mode's barely trained
        # models must carry the digit identity far above it.
        assert 0.5 < row["accuracy"] <= 1.0

    for name in ("digits_pixels", "digits_cnn_fc1", "digits_autoencoder", "digits_cnn_fc2_weights"):
        data = (tmp_path / f"{name}.png").read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000
    vectors = np.loadtxt(tmp_path / "projector" / "vectors.tsv", delimiter="\t")
    labels = (tmp_path / "projector" / "metadata.tsv").read_text().splitlines()
    assert vectors.shape == (300, 32) and len(labels) == 300
    assert set(labels) == {str(d) for d in range(10)}

    report = (tmp_path / "digits_knn.md").read_text()
    assert "| PCA-6 | 6 | no |" in report and "3-fold" in report
    assert "reconstruction MSE" in report
    assert "| raw pixels | 64 | no |" in capsys.readouterr().out


def test_cnn_embedding_is_fc1_output() -> None:
    """extract(..., "fc1") equals the CNN's own fc1 on its pooled conv features."""
    example = load_example()
    X, y = example.load_digits_images(quick=True)
    cnn = example.train_cnn(X[:64], y[:64], epochs=1, seed=0)
    images = torch.from_numpy(X[:20]).view(-1, 1, 8, 8)
    got = example.extract(cnn, images, "fc1", progress=False)
    assert cnn.training  # restored after extraction
    with torch.no_grad():
        h = torch.relu(cnn.conv1(images))
        h = torch.nn.functional.max_pool2d(torch.relu(cnn.conv2(h)), 2)
        expected = cnn.fc1(h.flatten(1))
    torch.testing.assert_close(got, expected)
