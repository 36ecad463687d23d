"""Tests for synthembed.data.prep: one-hot, scaling, prepare."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from synthembed.data.prep import OneHot, Scaler, one_hot, prepare, scale
from synthembed.errors import ConfigError, NonFiniteError, NotFittedError, ShapeError


def test_one_hot_integers_like_torch() -> None:
    out = one_hot(np.array([[0, 2], [1, 1]]), num_classes=4)
    assert out.dtype == torch.float32 and out.shape == (2, 2, 4)
    assert torch.equal(out.long(), torch.nn.functional.one_hot(torch.tensor([[0, 2], [1, 1]]), 4))
    assert one_hot([1.0, 0.0]).tolist() == [[0.0, 1.0], [1.0, 0.0]]
    with pytest.raises(ShapeError, match=r"class indices in \[0, 3\]; they must lie in \[0, 2\]"):
        one_hot([0, 3], num_classes=3)
    with pytest.raises(ShapeError, match=r"in \[-1, 0\]"):
        one_hot([-1, 0])


def test_one_hot_labels_keeps_classes_and_decodes() -> None:
    enc = OneHot().fit(pd.Series(["dog", "cat", "bird", "cat"]))
    assert enc.classes_ == ["bird", "cat", "dog"]
    assert enc.transform(["cat", "dog"]).tolist() == [[0, 1, 0], [0, 0, 1]]
    assert enc.decode(torch.tensor([[0.1, 0.7, 0.2], [3.0, -1.0, 0.0]])) == ["cat", "bird"]
    assert enc.decode(torch.tensor([2, 0])) == ["dog", "bird"]
    with pytest.raises(ShapeError, match=r"One-hot value 'cow' is not among the 3 classes"):
        enc.transform(["cow"])
    with pytest.raises(NotFittedError, match=r"call fit\(values\) first"):
        OneHot().transform(["a"])
    with pytest.raises(ConfigError, match="num_classes applies to integer class indices"):
        one_hot(["a"], num_classes=2)


def test_scale_per_feature_and_reuse() -> None:
    x = np.array([[0.0, 10.0], [5.0, 20.0], [10.0, 30.0]])
    x01, scaler = scale(x)
    assert x01.tolist() == [[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]]
    # fitted parameters reused: new data outside the range is not clipped by default
    assert scaler.transform(torch.tensor([[20.0, 20.0]])).tolist() == [[2.0, 0.5]]
    assert torch.allclose(scaler.inverse_transform(x01), torch.tensor(x, dtype=torch.float32))
    restored = Scaler.from_dict(scaler.to_dict())
    assert torch.equal(restored.transform(x), x01)


def test_scale_global_range_and_constant_feature() -> None:
    x = np.array([[0.0, 2.0], [4.0, 2.0]])
    x_glob, _ = scale(x, per_feature=False)
    assert x_glob.tolist() == [[0.0, 0.5], [1.0, 0.5]]
    x_pf, _ = scale(x, feature_range=(-1.0, 1.0))
    assert x_pf.tolist() == [[-1.0, -1.0], [1.0, -1.0]]  # constant feature -> low
    clipped = Scaler(clip=True).fit(x).transform([[8.0, 9.0]])
    assert clipped.tolist() == [[1.0, 1.0]]


def test_scale_errors() -> None:
    with pytest.raises(NonFiniteError, match="1 NaN and 0 infinite"):
        scale([[1.0], [np.nan]])
    with pytest.raises(ConfigError, match=r"feature_range low < high; got \(1.0, 0.0\)"):
        Scaler((1.0, 0.0))
    s = Scaler().fit(np.zeros((3, 2)))
    with pytest.raises(ShapeError, match="fitted on 2 features per sample; got 3"):
        s.transform(np.zeros((1, 3)))
    with pytest.raises(NotFittedError, match="not fitted yet"):
        Scaler().transform([[1.0]])


def test_prepare_split_sizes_shapes_and_no_leak() -> None:
    X = np.arange(60.0).reshape(30, 2)
    y = np.arange(30) % 3
    p = prepare(X, y, scale_features=True, split=(2, 1, 0), seed=1)
    assert (len(p.train), len(p.val), len(p.test)) == (20, 10, 0)
    assert p.n_features == 2 and p.classes is None
    x_train, _ = p.train.tensors
    # scaler fitted on the training split only: training data spans exactly [0, 1]
    assert float(x_train.min()) == 0.0 and float(x_train.max()) == 1.0
    # every sample lands in exactly one split
    scaler = p.scaler
    assert scaler is not None
    originals = torch.cat(
        [scaler.inverse_transform(p.train.tensors[0]), scaler.inverse_transform(p.val.tensors[0])]
    )
    assert sorted(originals[:, 0].round().tolist()) == X[:, 0].tolist()
    assert len(list(p.test_loader)) == 0


def test_prepare_is_seeded_and_shuffles() -> None:
    X, y = np.arange(40.0).reshape(40, 1), np.arange(40)
    a = prepare(X, y, seed=3)
    b = prepare(X, y, seed=3)
    c = prepare(X, y, shuffle=False)
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])
    assert c.train.tensors[0][:, 0].tolist() == list(range(27))  # in order without shuffle
    assert a.train.tensors[0][:, 0].tolist() != list(range(27))
    # the labels travel with their samples
    assert torch.equal(a.train.tensors[0][:, 0].long(), a.train.tensors[1])


def test_prepare_one_hot_labels_features_and_batches() -> None:
    X = pd.DataFrame({"a": ["x", "y", "x", "z"] * 5, "b": ["y", "y", "z", "x"] * 5})
    y = pd.Series(["no", "yes"] * 10)
    p = prepare(
        X, y, one_hot_features=True, one_hot_labels=True, split=(3, 1, 1), batch_size=4, seed=0
    )
    assert (len(p.train), len(p.val), len(p.test)) == (12, 4, 4)
    assert p.classes == ["no", "yes"]
    xb, yb = next(iter(p.train_loader))
    assert xb.shape == (4, 2, 3) and yb.shape == (4, 2)  # (m, n, C) and (m, classes)
    assert bool((xb.sum(-1) == 1).all()) and bool((yb.sum(-1) == 1).all())
    assert len(list(p.train_loader)) == 3
    assert p.decode(torch.tensor([[0.9, 0.1], [0.2, 0.8]])) == ["no", "yes"]


def test_prepare_string_labels_become_indices_with_class_list() -> None:
    p = prepare(torch.rand(9, 3, 2), ["b", "a", "c"] * 3, seed=0)
    assert p.classes == ["a", "b", "c"]
    y = p.train.tensors[1]
    assert y.dtype == torch.long and set(y.tolist()) <= {0, 1, 2}
    assert p.n_features == 6 and p.train.tensors[0].shape[1:] == (3, 2)
    xb, _ = next(iter(p.train_loader))  # batch_size=None: the whole split in one batch
    assert xb.shape[0] == len(p.train)


def test_prepare_errors() -> None:
    with pytest.raises(ShapeError, match="X has 3 samples but y has shape"):
        prepare(np.zeros((3, 2)), [1, 2])
    with pytest.raises(ConfigError, match=r"'split' parameter of prepare must be 3 relative sizes"):
        prepare(np.zeros((3, 2)), [1, 2, 3], split=(1, 1))
    with pytest.raises(ConfigError, match="positive training share"):
        prepare(np.zeros((3, 2)), [1, 2, 3], split=(0, 1, 1))
    with pytest.raises(ShapeError, match="X holds non-numeric values"):
        prepare(pd.DataFrame({"a": ["x", "y"]}), [0, 1])
    with pytest.raises(ConfigError, match="'batch_size' parameter of prepare"):
        prepare(np.zeros((3, 2)), [1, 2, 3], batch_size=0)
    with pytest.raises(NotFittedError, match="kept no class list"):
        prepare(np.zeros((3, 2)), [1.5, 2.5, 3.5]).decode(torch.zeros(3, 2))


def test_fitted_scaler_and_one_hot_save_and_load_exactly(tmp_path) -> None:
    import synthembed

    with pytest.raises(NotFittedError, match=r"call fit\(x\) before synthembed.save"):
        synthembed.save(Scaler(), tmp_path / "unfitted.safetensors")
    with pytest.raises(NotFittedError, match=r"call fit\(values\) before synthembed.save"):
        synthembed.save(OneHot(), tmp_path / "unfitted.safetensors")
    x = torch.randn(20, 3, dtype=torch.float64) * 7
    scaler = Scaler((-1.0, 2.0), clip=True).fit(x)
    synthembed.save(scaler, tmp_path / "s.safetensors")
    loaded = synthembed.load(tmp_path / "s.safetensors")
    new = torch.randn(5, 3) * 9
    assert torch.equal(loaded.transform(new), scaler.transform(new))
    assert loaded.to_dict() == scaler.to_dict()
    enc = OneHot().fit(["cat", "dog", "cat"])
    synthembed.save(enc, tmp_path / "o.safetensors")
    again = synthembed.load(tmp_path / "o.safetensors")
    assert again.classes_ == enc.classes_
    assert torch.equal(again.transform(["dog", "cat"]), enc.transform(["dog", "cat"]))
