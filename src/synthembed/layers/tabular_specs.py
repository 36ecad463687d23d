"""How to fit each kind of table column: the spec dataclasses :class:`TabularEmbedding` takes.

A spec is what the user asks for (sizes, policies); what fitting learns from the
data (vocabularies, scaler parameters, bins) lives in the fitted column types of
:mod:`synthembed.layers.tabular_columns`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from synthembed._deprecation import renamed
from synthembed._scaling import SCALINGS, ScalingKind
from synthembed._validation import check_choice, check_float, check_int
from synthembed.errors import ConfigError
from synthembed.layers.column_vocab import OOV_POLICIES
from synthembed.layers.embedding import PoolingMode
from synthembed.vocab import OOVPolicy

__all__ = [
    "BAG_MODES",
    "NAN_POLICIES",
    "NUMERICAL_EMBEDDINGS",
    "SCALINGS",
    "CategoricalSpec",
    "MultiLabelSpec",
    "NanPolicy",
    "NumericalEmbedding",
    "NumericalSpec",
    "Scaling",
    "Spec",
    "check_dim",
]

Scaling = ScalingKind
NumericalEmbedding = Literal["periodic", "piecewise_linear"]
NUMERICAL_EMBEDDINGS: tuple[str | None, ...] = (None, "periodic", "piecewise_linear")
BAG_MODES: tuple[str, ...] = ("mean", "sum", "max")
NanPolicy = Literal["error", "impute"]
NAN_POLICIES: tuple[str, ...] = ("error", "impute")


def check_dim(owner: str, dim: Any) -> None:
    """``embedding_dim`` is ``"auto"`` or an int >= 1."""
    if dim != "auto":
        check_int(owner, "embedding_dim", dim, 1)


@dataclass(frozen=True)
class CategoricalSpec:
    """How to fit one categorical column.

    Args:
        embedding_dim: an int, or ``"auto"`` for :func:`auto_embedding_dim`.
        oov: unseen values at encode time: ``"unk"``, ``"hash"`` or ``"error"``.
        num_oov_buckets: hash buckets with ``oov="hash"`` (default 16); ``num_buckets=``
            is its deprecated old name.
        min_freq: values seen fewer times in training are treated as unseen.
        max_size: keep at most this many values (most frequent).
    """

    embedding_dim: int | Literal["auto"] = "auto"
    oov: OOVPolicy = "unk"
    num_oov_buckets: int | None = None
    min_freq: int = 1
    max_size: int | None = None

    def __post_init__(self) -> None:
        check_dim("CategoricalSpec", self.embedding_dim)
        check_choice("CategoricalSpec", "oov", self.oov, OOV_POLICIES)
        check_int("CategoricalSpec", "num_oov_buckets", self.num_oov_buckets, 1, optional=True)
        check_int("CategoricalSpec", "min_freq", self.min_freq, 1)
        check_int("CategoricalSpec", "max_size", self.max_size, 0, optional=True)


@dataclass(frozen=True)
class NumericalSpec:
    """How to fit one numerical column.

    Args:
        scaling: ``"minmax"`` (into [0, 1] with the training min and max, clipped
            outside it) or ``"standard"`` (training mean and standard deviation).
        nan_indicator: add a 0/1 column that is 1 where the value was NaN (the
            value itself is then the scaled fill: 0 for both scalings). ``None``
            adds it when the training column holds NaN.
        nan_policy: NaN at encode / predict time in a column fitted without a NaN
            indicator (its training data had none): ``"error"`` (the default: a
            :class:`~synthembed.errors.NonFiniteError` naming the column and the
            count, so missing data never passes silently) or ``"impute"`` (the
            training mean, the statistic fitted with the scaling, stands in).
            Columns with an indicator take NaN under either policy.
        embedding: ``None`` (the scaled value itself), ``"periodic"`` or
            ``"piecewise_linear"`` (see the module docstring).
        embedding_dim: output size of a numerical embedding.
        n_bins: quantile bins of ``"piecewise_linear"``.
        n_frequencies: frequencies of ``"periodic"``.
        sigma: standard deviation of the initial frequencies of ``"periodic"``.
    """

    scaling: Scaling = "minmax"
    nan_indicator: bool | None = None
    nan_policy: NanPolicy = "error"
    embedding: NumericalEmbedding | None = None
    embedding_dim: int = 8
    n_bins: int = 16
    n_frequencies: int = 16
    sigma: float = 1.0

    def __post_init__(self) -> None:
        owner = "NumericalSpec"
        check_choice(owner, "scaling", self.scaling, SCALINGS)
        check_choice(owner, "nan_policy", self.nan_policy, NAN_POLICIES)
        check_choice(owner, "embedding", self.embedding, NUMERICAL_EMBEDDINGS)
        check_int(owner, "embedding_dim", self.embedding_dim, 1)
        check_int(owner, "n_bins", self.n_bins, 1)
        check_int(owner, "n_frequencies", self.n_frequencies, 1)
        check_float(owner, "sigma", self.sigma, 0.0, low_closed=False)


@dataclass(frozen=True)
class MultiLabelSpec:
    """How to fit one multi-label column (list cells, or strings joined by ``separator``).

    Args:
        embedding_dim: an int, or ``"auto"`` for :func:`auto_embedding_dim`.
        separator: splits string cells; ``None`` keeps a string as one label.
        mode: pooling of a row's labels: ``"mean"``, ``"sum"`` or ``"max"``.
        oov, num_oov_buckets, min_freq, max_size: as in :class:`CategoricalSpec`.
    """

    embedding_dim: int | Literal["auto"] = "auto"
    separator: str | None = "|"
    mode: PoolingMode = "mean"
    oov: OOVPolicy = "unk"
    num_oov_buckets: int | None = None
    min_freq: int = 1
    max_size: int | None = None

    def __post_init__(self) -> None:
        owner = "MultiLabelSpec"
        check_dim(owner, self.embedding_dim)
        check_choice(owner, "mode", self.mode, BAG_MODES)
        check_choice(owner, "oov", self.oov, OOV_POLICIES)
        check_int(owner, "num_oov_buckets", self.num_oov_buckets, 1, optional=True)
        check_int(owner, "min_freq", self.min_freq, 1)
        check_int(owner, "max_size", self.max_size, 0, optional=True)
        if self.separator is not None and (
            not isinstance(self.separator, str) or not self.separator
        ):
            raise ConfigError(
                f"The 'separator' parameter of {owner} must be a non-empty str or None. "
                f"Got {self.separator!r} instead."
            )


def _num_buckets(self: CategoricalSpec | MultiLabelSpec) -> int | None:
    """Deprecated alias of ``num_oov_buckets``."""
    return self.num_oov_buckets


# The dataclass-made __init__ takes the old name too, with a DeprecationWarning.
for _spec in (CategoricalSpec, MultiLabelSpec):
    _spec.__init__ = renamed(num_buckets="num_oov_buckets")(_spec.__init__)  # type: ignore[method-assign]
    _spec.num_buckets = property(_num_buckets)  # type: ignore[attr-defined,union-attr]

Spec = CategoricalSpec | NumericalSpec | MultiLabelSpec
