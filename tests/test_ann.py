"""Tests of synthembed.ann: the faiss IVF and HNSW indexes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthembed.ann import ApproximateIndex
from synthembed.errors import ConfigError, ShapeError
from synthembed.search import most_similar, search
from synthembed.vectors import Vectors


def _random_vectors(n: int = 300, dim: int = 16, seed: int = 0) -> Vectors:
    g = torch.Generator().manual_seed(seed)
    return Vectors([f"w{i}" for i in range(n)], torch.randn(n, dim, generator=g))


def _clustered_vectors(n: int = 3000, dim: int = 16, clusters: int = 60) -> Vectors:
    g = torch.Generator().manual_seed(5)
    centres = torch.randn(clusters, dim, generator=g)
    labels = torch.randint(0, clusters, (n,), generator=g)
    data = centres[labels] + 0.3 * torch.randn(n, dim, generator=g)
    return Vectors([f"w{i}" for i in range(n)], data)


def _recall(index: ApproximateIndex, v: Vectors, n: int = 100) -> float:
    queries = v.unit_vectors()[-n:]  # rows calibration need not have sampled
    _, approx = index.search(queries, 10)
    _, exact = search(v.unit_vectors(), queries, 10)
    return float(
        np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx.tolist(), exact.tolist())])
    )


def test_approximate_index_hnsw_recall_and_exclusion() -> None:
    pytest.importorskip("faiss")
    v = _random_vectors(n=2000, dim=16, seed=1)
    index = ApproximateIndex(v, method="hnsw", m=16, ef_search=64)
    assert _recall(index, v) >= 0.9
    got = most_similar(v, "w3", k=5, index=index)
    assert "w3" not in [w for w, _ in got] and len(got) == 5
    assert got[0][0] == most_similar(v, "w3", k=1)[0][0]
    with pytest.raises(ShapeError, match=r"shape \(Q, 16\)"):
        index.search(torch.ones(2, 3), 1)
    with pytest.raises(ConfigError, match="'ef_search' parameter of ApproximateIndex"):
        index.ef_search = 0
    with pytest.raises(ConfigError, match="nprobe applies to method='ivf'; this index uses"):
        index.nprobe = 4


def test_approximate_index_ivf_calibrates_nprobe_to_the_recall_goal() -> None:
    pytest.importorskip("faiss")
    v = _clustered_vectors()
    index = ApproximateIndex(v, target_recall=0.95)
    assert index.method == "ivf" and index.nlist == min(int(4 * 3000**0.5), 3000 // 39)
    assert index.calibrated_recall is not None and index.calibrated_recall >= 0.95
    assert index.nprobe & (index.nprobe - 1) == 0 and index.nprobe < index.nlist
    assert _recall(index, v) >= 0.9  # held-out rows: near the calibrated recall
    low = ApproximateIndex(v, nprobe=1)
    assert low.calibrated_recall is None and low.nprobe == 1
    got = most_similar(v, ["w3", "w4"], k=5, index=index)
    assert all(len(r) == 5 and q not in [w for w, _ in r] for q, r in zip(["w3", "w4"], got))
    assert "nprobe=" in repr(index)
    with pytest.raises(ConfigError, match="'nprobe' parameter of ApproximateIndex"):
        index.nprobe = index.nlist + 1
    with pytest.raises(ConfigError, match="ef_search applies to method='hnsw'"):
        _ = index.ef_search
    with pytest.raises(ConfigError, match="'method' parameter of ApproximateIndex"):
        ApproximateIndex(v, method="lsh")
    with pytest.raises(ConfigError, match="'target_recall' parameter of ApproximateIndex"):
        ApproximateIndex(v, target_recall=1.5)


def test_approximate_index_without_structure_scans_more_cells() -> None:
    pytest.importorskip("faiss")
    with pytest.warns(UserWarning, match=r"needs nprobe=\d+ of 76 cells: these vectors have"):
        noise = ApproximateIndex(_random_vectors(n=3000, dim=16, seed=2), target_recall=0.95)
    clustered = ApproximateIndex(_clustered_vectors(), target_recall=0.95)
    assert noise.nprobe * 4 > noise.nlist > 4 * clustered.nprobe
