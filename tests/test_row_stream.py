"""Tests for synthembed.row_stream: crash-safe streaming of row batches to .npy / .safetensors."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from synthembed import row_stream
from synthembed.errors import ConfigError, ShapeError
from synthembed.row_stream import open_rows, stream_rows


@pytest.mark.parametrize("suffix", [".npy", ".safetensors"])
def test_rows_round_trip(tmp_path, suffix: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / f"rows{suffix}"
    batches = [torch.randn(3, 2, 4), torch.randn(1, 2, 4), torch.randn(5, 2, 4)]
    with stream_rows(path, {"layer": "fc1"}) as rows:
        for batch in batches:
            rows.write(batch)
    expected = torch.cat(batches)
    assert torch.equal(open_rows(path, rows), expected)
    if suffix == ".npy":
        assert np.array_equal(np.load(path), expected.numpy())
    else:
        assert torch.equal(load_file(path)["embeddings"], expected)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_failure_leaves_neither_file_nor_temporary(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "rows.npy"
    mismatch = r"per-row shape \(3,\) in a later batch but \(2,\)"
    with pytest.raises(ShapeError, match=mismatch), stream_rows(path) as rows:
        rows.write(torch.zeros(2, 2))
        rows.write(torch.zeros(2, 3))
    with pytest.raises(KeyboardInterrupt), stream_rows(path) as rows:
        rows.write(torch.zeros(2, 2))
        raise KeyboardInterrupt
    with pytest.raises(ShapeError, match="no rows"), stream_rows(path):
        pass
    assert list(tmp_path.iterdir()) == []
    suffix = r"must end in \.npy or \.safetensors"
    with pytest.raises(ConfigError, match=suffix), stream_rows(tmp_path / "rows.csv"):
        pass


def test_file_and_directory_are_fsynced(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The rename is made durable as synthembed.io.atomic_write does: fsync of the directory."""
    synced: list[bool] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    with stream_rows(tmp_path / "rows.npy") as rows:
        rows.write(torch.ones(2, 2))
    assert synced == [False, True]  # the file, then its directory
    assert row_stream.atomic_write.__module__ == "synthembed.io"
