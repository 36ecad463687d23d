"""Categorical columns to integer ids: a scikit-learn transformer.

:class:`EmbeddingEncoder` maps each categorical column to the ids of its own
:class:`~synthembed.vocab.Vocabulary`, with the same out-of-vocabulary policies
(``"error"``, ``"unk"``, ``"hash"``) and the same handling of missing values as
:class:`~synthembed.layers.tabular.TabularEmbedding`, so ids made in a
scikit-learn ``Pipeline`` index the same rows as the layer's tables.

Tokens are normalised the same way everywhere: strings stay strings, whole
numbers (ints, and floats such as ``3.0``) become ints, booleans become
``"True"``/``"False"``, anything else its ``str()``. Missing values (None, NaN,
``pd.NA``, NaT) are not out-of-vocabulary: they map to the ``"<missing>"`` id.
The column helpers (:func:`to_token`, :func:`build_column_vocab`,
:func:`encode_column`) live in :mod:`synthembed.layers.column_vocab`, which does not
import scikit-learn, and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from synthembed._deprecation import renamed
from synthembed._estimator import BaseEstimator, EstimatorNotFittedError, TransformerMixin
from synthembed._validation import check_choice, check_int, require
from synthembed.errors import ConfigError, ShapeError
from synthembed.io import register_savable
from synthembed.layers.column_vocab import (
    CATEGORICAL_SPECIALS,
    MISSING_TOKEN,
    OOV_POLICIES,
    build_column_vocab,
    encode_column,
    to_token,
)
from synthembed.vocab import VOCABULARY, OOVPolicy

__all__ = [
    "CATEGORICAL_SPECIALS",
    "MISSING_TOKEN",
    "EmbeddingEncoder",
    "build_column_vocab",
    "encode_column",
    "to_token",
]


@register_savable
class EmbeddingEncoder(TransformerMixin, BaseEstimator):  # type: ignore[misc,valid-type]
    """scikit-learn transformer: categorical columns to embedding ids, one vocabulary each.

    Every column gets a :class:`~synthembed.vocab.Vocabulary` (ids ``0`` =
    ``"<unk>"``, ``1`` = ``"<missing>"``, then hash buckets under ``oov="hash"``,
    then the values, most frequent first; a cell is never padding, so there is no
    ``"<pad>"`` as in a sequence ``Vocabulary``, see :mod:`synthembed.layers.column_vocab`).
    The output is an ``int64`` array of
    ids, ready for ``synthembed.Embedding(cardinalities_[j], dim)`` per column,
    and it works inside a ``Pipeline`` or ``ColumnTransformer``. A fitted encoder
    saves with ``synthembed.save(enc, path)`` and loads with ``synthembed.load(path)``.

    Args:
        oov: what an unseen value becomes: ``"unk"`` (id 0), ``"hash"`` (one of
            ``num_oov_buckets`` ids by a stable hash) or ``"error"``
            (:class:`~synthembed.errors.UnknownTokenError` naming the column).
        num_oov_buckets: hash buckets per column with ``oov="hash"`` (default 16);
            ``num_buckets=`` is its deprecated old name.
        min_freq: values seen fewer times in ``fit`` are treated as unseen.
        max_size: keep at most this many values per column (most frequent).

    Attributes:
        vocabularies_: one fitted vocabulary per column.
        cardinalities_: ``len`` of each vocabulary (the table sizes to use).
        n_features_in_, feature_names_in_: as everywhere in scikit-learn.

    Shape:
        ``(n_samples, n_features)`` values -> ``(n_samples, n_features)`` int64 ids.

    Example:
        >>> import pandas as pd
        >>> enc = EmbeddingEncoder().fit(pd.DataFrame({"c": ["x", "y", "x"]}))
        >>> enc.transform(pd.DataFrame({"c": ["x", "zzz", None]})).ravel().tolist()
        [2, 0, 1]
        >>> enc.get_feature_names_out().tolist()
        ['c']
    """

    @renamed(num_buckets="num_oov_buckets")
    def __init__(
        self,
        *,
        oov: OOVPolicy = "unk",
        num_oov_buckets: int | None = None,
        min_freq: int = 1,
        max_size: int | None = None,
    ) -> None:
        # scikit-learn convention: store the arguments untouched; fit validates them.
        self.oov = oov
        self.num_oov_buckets = num_oov_buckets
        self.min_freq = min_freq
        self.max_size = max_size

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values have their own id
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = []  # the output is always int64 ids
        return tags

    def _check_fitted(self) -> None:
        if not hasattr(self, "vocabularies_"):
            raise EstimatorNotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )

    def get_config(self) -> dict[str, Any]:
        """Parameters and fitted vocabularies, as JSON (what :func:`synthembed.save` writes).

        Raises:
            NotFittedError: the encoder is not fitted (call ``fit(X)`` before saving).
        """
        if not hasattr(self, "vocabularies_"):
            raise EstimatorNotFittedError(
                f"This {type(self).__name__} is not fitted yet; call fit(X) before "
                "synthembed.save()."
            )
        names = getattr(self, "feature_names_in_", None)
        return {
            "params": self.get_params(),
            "vocabularies": [VOCABULARY.encode(v) for v in self.vocabularies_],
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": None if names is None else [str(n) for n in names],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EmbeddingEncoder:
        """A fitted encoder rebuilt from :meth:`get_config` output."""
        if not isinstance(config, dict):
            raise ConfigError(
                f"An {cls.__name__} configuration must be a JSON object; got {config!r}."
            )
        enc = cls(**config["params"])
        enc.vocabularies_ = [VOCABULARY.decode(v, cls.__name__) for v in config["vocabularies"]]
        enc.cardinalities_ = [len(v) for v in enc.vocabularies_]
        enc.n_features_in_ = int(config["n_features_in"])
        if config.get("feature_names_in") is not None:
            enc.feature_names_in_ = np.asarray(config["feature_names_in"], dtype=object)
        return enc

    def _validate(self, X: Any, *, reset: bool) -> np.ndarray:
        from sklearn.utils.validation import validate_data

        return validate_data(  # type: ignore[no-any-return]
            self, X, reset=reset, dtype=None, ensure_all_finite=False
        )

    def fit(self, X: Any, y: Any = None) -> EmbeddingEncoder:
        """Build one vocabulary per column of ``X``; returns ``self``."""
        require("sklearn", "data", "EmbeddingEncoder")
        owner = type(self).__name__
        check_choice(owner, "oov", self.oov, OOV_POLICIES)
        if self.oov == "hash":
            check_int(owner, "num_oov_buckets", self.num_oov_buckets, 1, optional=True)
        elif self.num_oov_buckets is not None:
            raise ConfigError(
                f"The 'num_oov_buckets' parameter of {owner} only applies to oov='hash'; "
                f"got num_oov_buckets={self.num_oov_buckets!r} with oov={self.oov!r}."
            )
        check_int(owner, "min_freq", self.min_freq, 1)
        check_int(owner, "max_size", self.max_size, 0, optional=True)
        data = self._validate(X, reset=True)
        self.vocabularies_ = [
            build_column_vocab(
                data[:, j],
                oov=self.oov,
                num_oov_buckets=self.num_oov_buckets,
                min_freq=self.min_freq,
                max_size=self.max_size,
            )
            for j in range(data.shape[1])
        ]
        self.cardinalities_ = [len(v) for v in self.vocabularies_]
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Map each column to ids of its vocabulary; unseen values follow ``oov``."""
        self._check_fitted()
        data = self._validate(X, reset=False)
        names = self._names()
        out = np.empty(data.shape, dtype=np.int64)
        for j, vocab in enumerate(self.vocabularies_):
            out[:, j] = encode_column(data[:, j], vocab, names[j])
        return out

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Map ids back to values (``"<unk>"``, ``"<missing>"`` or bucket names where lossy)."""
        self._check_fitted()
        ids = np.asarray(X)
        if ids.ndim != 2 or ids.shape[1] != len(self.vocabularies_):
            raise ShapeError(
                f"inverse_transform expects ids of shape (n, {len(self.vocabularies_)}); "
                f"got {ids.shape}."
            )
        out = np.empty(ids.shape, dtype=object)
        for j, vocab in enumerate(self.vocabularies_):
            out[:, j] = vocab.decode([int(i) for i in ids[:, j]], strip_padding=False)
        return out

    def _names(self) -> list[Any]:
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            return list(names)
        return [f"x{j}" for j in range(self.n_features_in_)]

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        """One output column per input column, with the input's names (``x0, x1, ...`` for arrays)."""
        from sklearn.utils.validation import _check_feature_names_in

        self._check_fitted()
        return np.asarray(_check_feature_names_in(self, input_features), dtype=object)
