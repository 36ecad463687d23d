"""Tests for synthembed.encoders: EmbeddingEncoder and the shared column helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from synthembed.encoders import EmbeddingEncoder, build_column_vocab, encode_column, to_token
from synthembed.errors import ConfigError, NotFittedError, UnknownTokenError
from synthembed.layers.tabular import TabularEmbedding


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"carrier": ["UA", "AA", "UA", "DL", None], "month": [1, 2, 1, 1, 3]},
    )


@parametrize_with_checks([EmbeddingEncoder(), EmbeddingEncoder(oov="hash", num_oov_buckets=4)])
def test_sklearn_estimator_checks(estimator, check) -> None:  # type: ignore[no-untyped-def]
    check(estimator)


def test_fit_transform_ids_and_names(frame: pd.DataFrame) -> None:
    enc = EmbeddingEncoder()
    ids = enc.fit_transform(frame)
    assert ids.dtype == np.int64 and ids.shape == (5, 2)
    carrier = enc.vocabularies_[0]
    assert carrier.tokens == ["UA", "AA", "DL"]  # most frequent first
    assert ids[:, 0].tolist() == [2, 3, 2, 4, 1]  # None -> <missing> (id 1)
    assert enc.vocabularies_[1].tokens == [1, 2, 3]
    assert enc.cardinalities_ == [5, 5]
    assert enc.get_feature_names_out().tolist() == ["carrier", "month"]
    assert enc.inverse_transform(ids[:2]).tolist() == [["UA", 1], ["AA", 2]]


def test_oov_policies(frame: pd.DataFrame) -> None:
    new = pd.DataFrame({"carrier": ["B6", "UA"], "month": [12, 1]})
    assert EmbeddingEncoder().fit(frame).transform(new)[:, 0].tolist() == [0, 2]
    hashed = EmbeddingEncoder(oov="hash", num_oov_buckets=8).fit(frame).transform(new)
    assert 2 <= hashed[0, 0] < 10 and hashed[1, 0] == 10  # UA after 2 specials + 8 buckets
    strict = EmbeddingEncoder(oov="error").fit(frame)
    with pytest.raises(UnknownTokenError, match=r"Column 'carrier': Token 'B6' is not in"):
        strict.transform(new)


def test_min_freq_and_max_size(frame: pd.DataFrame) -> None:
    enc = EmbeddingEncoder(min_freq=2).fit(frame)
    assert enc.vocabularies_[0].tokens == ["UA"]
    assert enc.transform(frame)[:, 0].tolist() == [2, 0, 2, 0, 1]
    assert EmbeddingEncoder(max_size=1).fit(frame).vocabularies_[1].tokens == [1]


def test_parameter_and_fitted_errors(frame: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="'oov' parameter of EmbeddingEncoder must be one of"):
        EmbeddingEncoder(oov="drop").fit(frame)  # type: ignore[arg-type]
    with pytest.raises(
        ConfigError, match="'num_oov_buckets' parameter of EmbeddingEncoder only applies"
    ):
        EmbeddingEncoder(num_oov_buckets=3).fit(frame)
    with pytest.raises(NotFittedError, match="not fitted yet") as info:
        EmbeddingEncoder().transform(frame)
    assert isinstance(info.value, ValueError)  # also scikit-learn's NotFittedError


def test_pipeline_and_column_transformer(frame: pd.DataFrame) -> None:
    pipe = Pipeline(
        [
            (
                "ids",
                ColumnTransformer(
                    [("cat", EmbeddingEncoder(), ["carrier"])], remainder="passthrough"
                ),
            ),
            ("plus", FunctionTransformer(lambda a: a + 0)),
        ]
    )
    out = pipe.fit_transform(frame)
    assert out.shape == (5, 2)
    assert out[:, 0].tolist() == [2, 3, 2, 4, 1] and out[:, 1].tolist() == [1, 2, 1, 1, 3]
    assert pipe[0].get_feature_names_out().tolist() == ["cat__carrier", "remainder__month"]


def test_same_ids_as_tabular_embedding(frame: pd.DataFrame) -> None:
    enc = EmbeddingEncoder(oov="hash", num_oov_buckets=4).fit(frame)
    layer = TabularEmbedding.from_frame(frame, categorical=list(frame.columns), oov="hash")
    new = pd.DataFrame({"carrier": ["ZZ", "DL", None], "month": [7, 1, 2]})
    batch = layer.encode(new)
    assert layer.vocabs["carrier"].num_buckets == 16
    enc16 = EmbeddingEncoder(oov="hash", num_oov_buckets=16).fit(frame)
    assert enc16.transform(new)[:, 0].tolist() == batch["carrier"].tolist()
    assert enc16.transform(new)[:, 1].tolist() == batch["month"].tolist()
    assert enc.transform(new).shape == (3, 2)


def test_tokens_and_helpers() -> None:
    assert [to_token(v) for v in (np.int64(4), 4.0, np.float32(2.5), np.bool_(True), "x")] == [
        4,
        4,
        "2.5",
        "True",
        "x",
    ]
    vocab = build_column_vocab(np.array([3, 1, 3, 3], dtype=np.int64))
    assert vocab.tokens == [3, 1] and vocab.specials == ["<unk>", "<missing>"]
    ids = encode_column(pd.Series([1.0, np.nan, 7.0]), vocab, "n")
    assert ids.tolist() == [vocab[1], 1, 0]


def test_num_buckets_is_a_deprecated_name_of_num_oov_buckets() -> None:
    frame = pd.DataFrame({"c": ["x", "y", "x"]})
    with pytest.warns(DeprecationWarning, match=r"num_buckets=.*num_oov_buckets="):
        enc = EmbeddingEncoder(oov="hash", num_buckets=4)
    assert enc.num_oov_buckets == 4 and enc.fit(frame).cardinalities_ == [2 + 4 + 2]


def test_fitted_encoder_saves_and_loads(tmp_path) -> None:
    import synthembed

    frame = pd.DataFrame({"c": ["x", "y", "x"], "d": ["a", None, "b"]})
    enc = EmbeddingEncoder(oov="hash", num_oov_buckets=3)
    with pytest.raises(NotFittedError, match=r"call fit\(X\) before synthembed.save"):
        synthembed.save(enc, tmp_path / "unfitted.safetensors")
    enc.fit(frame)
    synthembed.save(enc, tmp_path / "enc.safetensors")
    loaded = synthembed.load(tmp_path / "enc.safetensors")
    new = pd.DataFrame({"c": ["y", "zz", None], "d": ["b", "q", "a"]})
    assert np.array_equal(loaded.transform(new), enc.transform(new))
    assert loaded.get_params() == enc.get_params()
    assert loaded.get_feature_names_out().tolist() == ["c", "d"]
