"""Tests for synthembed.layers.column_vocab: one id per value for the layer and the encoder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthembed import encoders
from synthembed.errors import ConfigError, UnknownTokenError
from synthembed.layers import tabular
from synthembed.layers.column_vocab import (
    CATEGORICAL_SPECIALS,
    auto_embedding_dim,
    build_column_vocab,
    encode_column,
    to_token,
)


def test_tokens_vocabulary_and_ids() -> None:
    assert [to_token(v) for v in (3.0, np.int64(2), True, "a", 2.5)] == [3, 2, "True", "a", "2.5"]
    vocab = build_column_vocab(pd.Series(["b", "a", "b", None]))
    assert vocab.specials == list(CATEGORICAL_SPECIALS) and vocab.tokens == ["b", "a"]
    ids = encode_column(pd.Series(["a", None, "zz"]), vocab, "c")
    assert ids.tolist() == [vocab["a"], 1, 0]  # missing -> "<missing>", unseen -> "<unk>"
    strict = build_column_vocab(["x"], oov="error")
    with pytest.raises(UnknownTokenError, match="Column 'c'"):
        encode_column(["y"], strict, "c")
    with pytest.raises(ConfigError, match="'oov' parameter of build_column_vocab"):
        build_column_vocab(["x"], oov="drop")  # type: ignore[arg-type]
    assert [auto_embedding_dim(n) for n in (1, 4, 100, 4000)] == [2, 3, 21, 50]


def test_old_import_paths() -> None:
    for module in (tabular, encoders):
        assert module.build_column_vocab is build_column_vocab
        assert module.encode_column is encode_column
        assert module.to_token is to_token


def test_build_column_vocab_num_buckets_is_deprecated() -> None:
    import pytest as _pytest

    from synthembed.layers.column_vocab import build_column_vocab as build

    with _pytest.warns(DeprecationWarning, match=r"num_buckets=.*num_oov_buckets="):
        old = build(["a", "b"], oov="hash", num_buckets=3)
    assert old == build(["a", "b"], oov="hash", num_oov_buckets=3)
