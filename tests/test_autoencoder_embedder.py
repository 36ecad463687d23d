"""Tests for synthembed.autoencoder_embedder.AutoencoderEmbedder."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from synthembed.autoencoder_embedder import AutoencoderEmbedder
from synthembed.errors import ConfigError, NonFiniteError, NotFittedError, ShapeError
from synthembed.extract import AutoencoderEmbedder as ReExported


def low_rank_data(n: int = 300, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = rng.normal(size=(n, 3))
    mixing = rng.normal(size=(3, 12))
    return (np.tanh(codes @ mixing) * 5 + 10 + 0.05 * rng.normal(size=(n, 12))).astype(np.float64)


def test_autoencoder_reproducible_and_beats_mean_predictor() -> None:
    X = low_rank_data()
    kw: dict[str, Any] = dict(hidden_dims=(32,), epochs=15, batch_size=32, lr=3e-3, seed=3)
    a = AutoencoderEmbedder(3, **kw).fit(X)
    b = AutoencoderEmbedder(3, **kw).fit(X)
    za, zb = a.transform(X), b.transform(X)
    assert isinstance(za, np.ndarray) and za.shape == (300, 3) and za.dtype == np.float32
    assert np.array_equal(za, zb)
    assert a.history_ == b.history_
    c = AutoencoderEmbedder(3, **{**kw, "seed": 4}).fit(X)
    assert not np.array_equal(c.transform(X), za)
    # The reconstruction error is reported and beats predicting the mean row.
    mean_predictor = float(((X - X.mean(0)) ** 2).mean())
    assert a.reconstruction_error(X) < 0.25 * mean_predictor
    assert 0 < a.reconstruction_error_ < a.baseline_error_
    rec = a.inverse_transform(za)
    assert rec.shape == X.shape
    assert float(((rec - X) ** 2).mean()) == pytest.approx(a.reconstruction_error(X), rel=1e-4)
    assert a.score(X) == pytest.approx(-a.reconstruction_error(X))


def test_autoencoder_does_not_touch_global_rng() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    AutoencoderEmbedder(2, hidden_dims=(4,), epochs=2).fit(low_rank_data(50))
    assert torch.equal(torch.rand(3), expected)


def test_autoencoder_early_stopping_and_history() -> None:
    X = low_rank_data(200)
    ae = AutoencoderEmbedder(2, hidden_dims=(16,), epochs=500, patience=3, lr=0.05, seed=0).fit(X)
    epochs = len(ae.history_)
    assert epochs < 500
    assert ae.best_epoch_ == epochs - 3
    val = [h["val_loss"] for h in ae.history_]
    assert min(val) == val[ae.best_epoch_ - 1]
    assert all(v >= val[ae.best_epoch_ - 1] for v in val[ae.best_epoch_ :])
    no_split = AutoencoderEmbedder(2, hidden_dims=(), epochs=3, validation_fraction=0.0).fit(X)
    assert len(no_split.history_) == 3
    assert all(h["val_loss"] is None for h in no_split.history_)


def test_autoencoder_tensor_in_tensor_out() -> None:
    X = torch.from_numpy(low_rank_data(80)).float()
    ae = AutoencoderEmbedder(2, hidden_dims=(8,), epochs=3)
    Z = ae.fit_transform(X)
    assert isinstance(Z, torch.Tensor) and Z.shape == (80, 2) and not Z.is_inference()
    assert isinstance(ae.inverse_transform(Z), torch.Tensor)
    assert ae.n_features_in_ == 12
    assert ae.mean_.shape == ae.scale_.shape == (12,)


def test_autoencoder_not_fitted_and_input_errors() -> None:
    ae = AutoencoderEmbedder(2)
    with pytest.raises(NotFittedError, match=r"not fitted yet; call fit\(X\) before transform\(\)"):
        ae.transform(np.zeros((2, 3)))
    with pytest.raises(NotFittedError, match=r"before inverse_transform\(\)"):
        ae.inverse_transform(np.zeros((2, 2)))
    assert not hasattr(ae, "encoder_")
    ae.set_params(epochs=2, hidden_dims=(4,))
    ae.fit(low_rank_data(40))
    with pytest.raises(ShapeError, match="got X with 5 features; it was fitted on 12"):
        ae.transform(np.zeros((3, 5)))
    with pytest.raises(ShapeError, match=r"needs Z of shape \(N, 2\); got \(3, 4\)"):
        ae.inverse_transform(np.zeros((3, 4)))
    bad = low_rank_data(40)
    bad[3, 2] = np.nan
    with pytest.raises(NonFiniteError, match="1 NaN"):
        AutoencoderEmbedder(2).fit(bad)
    with pytest.raises(ShapeError, match=r"shape \(n_samples, n_features\); got \(40,\)"):
        AutoencoderEmbedder(2).fit(np.zeros(40))


def test_autoencoder_parameter_errors_and_sklearn_protocol() -> None:
    with pytest.raises(
        ConfigError,
        match=r"'embedding_dim' parameter of AutoencoderEmbedder must be an int in the range \[1, inf\)\. Got 0",
    ):
        AutoencoderEmbedder(0)
    with pytest.raises(ConfigError, match=r"'validation_fraction' parameter.*\[0, 1\)\. Got 1\.0"):
        AutoencoderEmbedder(2, validation_fraction=1.0)
    with pytest.raises(ConfigError, match=r"'hidden_dims' parameter.*Got 64 instead"):
        AutoencoderEmbedder(2, hidden_dims=64)  # type: ignore[arg-type]
    ae = AutoencoderEmbedder(2, epochs=7)
    with pytest.raises(ConfigError, match="'lr' parameter"):
        ae.set_params(epochs=9, lr=-1.0)
    assert ae.epochs == 7  # unchanged: checked before anything is set
    with pytest.raises(
        ConfigError,
        match="has no parameter 'epoch'; valid parameters: embedding_dim, hidden_dims, epochs",
    ):
        ae.set_params(epoch=3)
    assert repr(ae) == "AutoencoderEmbedder(2, epochs=7)"
    from sklearn.base import clone

    twin = clone(ae)
    assert twin.get_params() == ae.get_params() and twin is not ae


def test_old_import_path_and_sklearn_estimator_protocol() -> None:
    base = pytest.importorskip("sklearn.base")
    exceptions = pytest.importorskip("sklearn.exceptions")
    assert ReExported is AutoencoderEmbedder
    ae = AutoencoderEmbedder(2, hidden_dims=(8,), epochs=3, lr=0.01, seed=3)
    assert isinstance(ae, base.BaseEstimator) and isinstance(ae, base.TransformerMixin)
    twin = base.clone(ae)
    assert type(twin) is AutoencoderEmbedder and twin is not ae
    assert twin.get_params() == ae.get_params()
    assert twin.get_params(deep=False)["hidden_dims"] == ae.hidden_dims
    twin.set_params(embedding_dim=4)
    assert (twin.embedding_dim, ae.embedding_dim) == (4, 2)
    # Unfitted: our error and scikit-learn's, so either except clause catches it.
    for caught in (
        NotFittedError,
        exceptions.NotFittedError,
        RuntimeError,
        ValueError,
        AttributeError,
    ):
        with pytest.raises(caught, match="not fitted yet"):
            ae.transform(np.zeros((2, 12)))
    validation = pytest.importorskip("sklearn.utils.validation")
    with pytest.raises(exceptions.NotFittedError):
        validation.check_is_fitted(ae)
    ae.fit(low_rank_data(60))
    validation.check_is_fitted(ae)
    fresh = base.clone(ae)  # clone drops fitted state
    assert not hasattr(fresh, "encoder_")


def test_fit_in_a_pipeline() -> None:
    pipeline = pytest.importorskip("sklearn.pipeline")
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    X = low_rank_data(80)
    pipe = pipeline.make_pipeline(
        preprocessing.MinMaxScaler(), AutoencoderEmbedder(3, hidden_dims=(8,), epochs=2, seed=0)
    )
    assert pipe.fit_transform(X).shape == (80, 3)
    pipe.set_params(autoencoderembedder__epochs=1)
    assert pipe.get_params()["autoencoderembedder__epochs"] == 1


def test_constant_feature_reconstructs_exactly() -> None:
    X = low_rank_data(60)
    X[:, 4] = 7.0
    ae = AutoencoderEmbedder(3, hidden_dims=(8,), epochs=5, seed=0).fit(X)
    assert float(ae.scale_[4]) == 1.0 and float(ae.mean_[4]) == 7.0
    assert np.all(ae.inverse_transform(ae.transform(X))[:, 4] == 7.0)


def test_hidden_is_a_deprecated_name_of_hidden_dims() -> None:
    with pytest.warns(DeprecationWarning, match=r"hidden=.*hidden_dims="):
        ae = AutoencoderEmbedder(2, hidden=(4,), epochs=2)
    assert ae.hidden_dims == (4,) and ae.hidden == (4,)
    with pytest.warns(DeprecationWarning, match=r"hidden=.*hidden_dims="):
        ae.set_params(hidden=(3,))
    assert ae.hidden_dims == (3,)


def test_fitted_embedder_saves_and_loads_bit_for_bit(tmp_path) -> None:
    import synthembed

    X = low_rank_data(60)
    ae = AutoencoderEmbedder(2, hidden_dims=(8,), epochs=3, seed=1)
    with pytest.raises(NotFittedError, match=r"call fit\(X\) before synthembed.save"):
        synthembed.save(ae, tmp_path / "unfitted.safetensors")
    ae.fit(X)
    path = tmp_path / "ae.safetensors"
    synthembed.save(ae, path)
    loaded = synthembed.load(path)
    assert isinstance(loaded, AutoencoderEmbedder)
    assert loaded.get_params() == {**ae.get_params(), "hidden_dims": [8]}
    assert np.array_equal(loaded.transform(X), ae.transform(X))
    Z = ae.transform(X)
    assert np.array_equal(loaded.inverse_transform(Z), ae.inverse_transform(Z))
    assert loaded.reconstruction_error_ == ae.reconstruction_error_
