"""Fitted table columns: what :class:`~synthembed.layers.tabular.TabularEmbedding` learns per column.

Fitting a column on training data gives one immutable object:

- :class:`CategoricalColumn`: the column's vocabulary and vector size;
- :class:`NumericalColumn`: the scaler parameters, the NaN indicator and the
  numerical embedding's settings (and quantile bins for ``"piecewise_linear"``);
- :class:`MultiLabelColumn`: the label vocabulary, separator and pooling mode.

Each has ``to_dict`` / ``from_dict`` for the JSON configuration that
:func:`synthembed.save` writes; the JSON form is the one earlier releases wrote as
plain dicts, so their files load unchanged. This module also reads a frame's
columns: what kind of values they hold and how multi-label cells split.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from synthembed._scaling import AffineScaler
from synthembed._validation import check_choice
from synthembed.errors import ConfigError, NonFiniteError, ShapeError
from synthembed.layers.column_vocab import (
    DEFAULT_NUM_BUCKETS,
    UNK_TOKEN,
    auto_embedding_dim,
    build_column_vocab,
    pandas,
    to_token,
)
from synthembed.layers.tabular_specs import (
    CategoricalSpec,
    MultiLabelSpec,
    NumericalSpec,
    Spec,
)
from synthembed.vocab import Vocabulary

__all__ = [
    "COLUMN_KINDS",
    "CategoricalColumn",
    "FittedColumn",
    "MultiLabelColumn",
    "NumericalColumn",
    "column_from_dict",
    "fit_column",
    "looks_multi_label",
    "split_cells",
    "value_kind",
]

COLUMN_KINDS: tuple[str, ...] = ("categorical", "numerical", "multi_label")


class _LegacyItems:
    """``column["key"]``: the dict access of releases that kept columns as dicts (deprecated)."""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def __getitem__(self, key: str) -> Any:
        warnings.warn(
            f"Fitted columns are typed objects now; use column.{key} instead of "
            f"column[{key!r}] (dict access goes in the next release).",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.to_dict()[key]


@dataclass(frozen=True)
class CategoricalColumn(_LegacyItems):
    """A fitted categorical column: one vector of ``embedding_dim`` values per vocabulary id.

    Attributes:
        name: the column's name in the frame.
        embedding_dim: size of the column's vectors.
        vocab: the column's vocabulary (ids 0 and 1 are ``"<unk>"`` and ``"<missing>"``).
        value_kind: what the training column held (``"text"``, ``"number"``, ``"bool"``);
            encoding refuses a frame whose column changed kind.
    """

    kind: ClassVar[str] = "categorical"
    name: Any
    embedding_dim: int
    vocab: Vocabulary
    value_kind: str = "text"

    @property
    def output_dim(self) -> int:
        """How many values the column adds to a row's vector."""
        return int(self.embedding_dim)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the dict earlier releases stored)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "value_kind": self.value_kind,
            "embedding_dim": self.embedding_dim,
            "vocab": self.vocab.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoricalColumn:
        return cls(
            name=data["name"],
            embedding_dim=int(data["embedding_dim"]),
            vocab=_vocab(data),
            value_kind=str(data["value_kind"]),
        )


@dataclass(frozen=True)
class MultiLabelColumn(_LegacyItems):
    """A fitted multi-label column: a row's labels pooled into ``embedding_dim`` values.

    Attributes:
        name: the column's name in the frame.
        embedding_dim: size of the pooled vector.
        vocab: the label vocabulary (ids 0 and 1 are ``"<pad>"`` and ``"<unk>"``).
        separator: splits string cells (``None``: a string is one label).
        mode: pooling of a row's labels: ``"mean"``, ``"sum"`` or ``"max"``.
    """

    kind: ClassVar[str] = "multi_label"
    value_kind: ClassVar[str] = "labels"
    name: Any
    embedding_dim: int
    vocab: Vocabulary
    separator: str | None = "|"
    mode: str = "mean"

    @property
    def output_dim(self) -> int:
        """How many values the column adds to a row's vector."""
        return int(self.embedding_dim)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the dict earlier releases stored)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "value_kind": self.value_kind,
            "embedding_dim": self.embedding_dim,
            "separator": self.separator,
            "mode": self.mode,
            "vocab": self.vocab.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MultiLabelColumn:
        return cls(
            name=data["name"],
            embedding_dim=int(data["embedding_dim"]),
            vocab=_vocab(data),
            separator=data.get("separator", "|"),
            mode=str(data.get("mode") or "mean"),
        )


@dataclass(frozen=True)
class NumericalColumn(_LegacyItems):
    """A fitted numerical column: a scaled value (or its learned embedding), then a NaN flag.

    Attributes:
        name: the column's name in the frame.
        scaling: ``"minmax"`` (into [0, 1], clipped) or ``"standard"``.
        shift, scale: the scaling ``(x - shift) / scale`` (``scale`` is never 0).
        min, max: the finite training range.
        nan_indicator: whether a 0/1 NaN column follows the value.
        nan_policy: NaN in a column without indicator: ``"error"`` or ``"impute"``
            (``fill`` stands in); files saved before it existed read as ``"error"``.
        fill: the training mean (raw units), what ``"impute"`` puts in for NaN.
        embedding: ``None``, ``"periodic"`` or ``"piecewise_linear"``.
        embedding_dim: size of the embedding (1 without one: the scaled value).
        n_frequencies, sigma: settings of ``"periodic"``.
        bins: quantile bin edges of ``"piecewise_linear"`` (in scaled units), else None.
    """

    kind: ClassVar[str] = "numerical"
    value_kind: ClassVar[str] = "number"
    name: Any
    scaling: str
    shift: float
    scale: float
    min: float
    max: float
    nan_indicator: bool
    embedding: str | None = None
    embedding_dim: int = 1
    n_frequencies: int = 16
    sigma: float = 1.0
    bins: tuple[float, ...] | None = None
    nan_policy: str = "error"
    fill: float | None = None
    scaler: AffineScaler = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_choice(
            f"Numerical column {self.name!r}", "scaling", self.scaling, ("minmax", "standard")
        )
        check_choice(
            f"Numerical column {self.name!r}", "nan_policy", self.nan_policy, ("error", "impute")
        )
        if self.nan_policy == "impute" and (self.fill is None or not np.isfinite(self.fill)):
            raise ConfigError(
                f"Numerical column {self.name!r} has nan_policy='impute' but no finite fill "
                f"value; got fill={self.fill!r}."
            )
        if not self.scale or not np.isfinite(self.scale):
            raise ConfigError(
                f"Numerical column {self.name!r} needs a finite, nonzero scale; got {self.scale!r}."
            )
        # minmax: (x - min) / (max - min) clipped to [0, 1]; standard: (x - mean) / std.
        scaler = AffineScaler(
            "minmax" if self.scaling == "minmax" else "standard",
            torch.tensor(float(self.shift), dtype=torch.float64),
            torch.tensor(float(self.scale), dtype=torch.float64),
            clip=self.scaling == "minmax",
        )
        object.__setattr__(self, "scaler", scaler)

    @property
    def output_dim(self) -> int:
        """How many values the column adds to a row's vector (the NaN flag included)."""
        return int(self.embedding_dim) + int(bool(self.nan_indicator))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the dict earlier releases stored; ``nan_policy`` and ``fill``
        only when imputing, so files of the default policy read in earlier releases)."""
        impute = {"nan_policy": self.nan_policy, "fill": self.fill}
        return {
            "name": self.name,
            "kind": self.kind,
            "value_kind": self.value_kind,
            "scaling": self.scaling,
            "shift": self.shift,
            "scale": self.scale,
            "min": self.min,
            "max": self.max,
            "nan_indicator": self.nan_indicator,
            "embedding": self.embedding,
            "embedding_dim": self.embedding_dim,
            "n_frequencies": self.n_frequencies,
            "sigma": self.sigma,
            "bins": None if self.bins is None else list(self.bins),
            **(impute if self.nan_policy != "error" else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericalColumn:
        bins = data.get("bins")
        return cls(
            name=data["name"],
            scaling=str(data["scaling"]),
            shift=float(data["shift"]),
            scale=float(data["scale"]),
            min=float(data["min"]),
            max=float(data["max"]),
            nan_indicator=bool(data["nan_indicator"]),
            embedding=data.get("embedding"),
            embedding_dim=int(data["embedding_dim"]),
            n_frequencies=int(data.get("n_frequencies", 16)),
            sigma=float(data.get("sigma", 1.0)),
            bins=None if bins is None else tuple(float(b) for b in bins),
            nan_policy=str(data.get("nan_policy", "error")),
            fill=None if data.get("fill") is None else float(data["fill"]),
        )

    def scale_values(self, x: torch.Tensor) -> torch.Tensor:
        """``(*)`` raw values -> scaled values, in ``x``'s dtype (NaN stays NaN)."""
        return self.scaler.transform(x)


FittedColumn = CategoricalColumn | NumericalColumn | MultiLabelColumn
_TYPES: dict[str, type[CategoricalColumn] | type[NumericalColumn] | type[MultiLabelColumn]] = {
    "categorical": CategoricalColumn,
    "numerical": NumericalColumn,
    "multi_label": MultiLabelColumn,
}


def column_from_dict(data: Mapping[str, Any] | FittedColumn) -> FittedColumn:
    """A fitted column from its JSON form (a fitted column is returned as it is).

    Raises:
        ConfigError: an unknown ``kind``.
        KeyError: a field is missing.
    """
    if isinstance(data, (CategoricalColumn, NumericalColumn, MultiLabelColumn)):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"A TabularEmbedding column must be a fitted column or its dict form; got "
            f"{type(data).__name__}."
        )
    kind = data["kind"]
    check_choice("TabularEmbedding", "column kind", kind, COLUMN_KINDS)
    return _TYPES[kind].from_dict(data)


def _vocab(data: Mapping[str, Any]) -> Vocabulary:
    vocab = data["vocab"]
    if isinstance(vocab, Vocabulary):
        return vocab
    return Vocabulary.from_dict(vocab, source=f"column {data['name']!r}")


# ---------------------------------------------------------------------- reading a frame
def value_kind(series: Any) -> str:
    """'bool', 'number', 'datetime' or 'text': what a column holds, for dtype checks."""
    pd = pandas()
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        dtype = dtype.categories.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return "datetime"
    return "text"


def _is_list_cell(value: Any) -> bool:
    return isinstance(value, (list, tuple, set, frozenset, np.ndarray))


def looks_multi_label(series: Any, separator: str | None) -> bool:
    """List cells, or strings containing ``separator``: a multi-label column."""
    cells = series.dropna()
    if len(cells) == 0:
        return False
    if any(_is_list_cell(v) for v in cells.head(1000)):
        return True
    if separator is None:
        return False
    strings = cells[cells.map(lambda v: isinstance(v, str))]
    return bool(len(strings)) and bool(strings.str.contains(separator, regex=False).any())


def split_cells(series: Any, separator: str | None) -> list[list[Any]]:
    """Each cell as a list of labels: list cells as they are, strings split, missing empty."""
    pd = pandas()
    rows: list[list[Any]] = []
    for cell in series.tolist():
        if _is_list_cell(cell):
            rows.append([v for v in cell if not _scalar_missing(v, pd)])
        elif _scalar_missing(cell, pd):
            rows.append([])
        elif isinstance(cell, str) and separator is not None:
            rows.append([p for p in cell.split(separator) if p != ""])
        else:
            rows.append([cell])
    return rows


def _scalar_missing(value: Any, pd: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------- fitting
def fit_column(name: Any, series: Any, spec: Spec) -> FittedColumn:
    """Fit one training column (a pandas Series) as ``spec`` says.

    Raises:
        ShapeError: text in a numerical column, or a numerical column without a finite value.
        NonFiniteError: infinity in a numerical column.
    """
    kind = value_kind(series)
    if isinstance(spec, NumericalSpec):
        if kind not in ("number", "bool"):
            raise ShapeError(
                f"Column {name!r} is numerical but holds {series.dtype} values; convert it "
                "with pd.to_numeric or list it as categorical."
            )
        return _fit_numerical(name, series.to_numpy(dtype=np.float64, na_value=np.nan), spec)
    fixed_dim = spec.embedding_dim

    def dim_of(n: int) -> int:
        return auto_embedding_dim(n) if fixed_dim == "auto" else int(fixed_dim)

    if isinstance(spec, CategoricalSpec):
        vocab = build_column_vocab(
            series,
            oov=spec.oov,
            num_oov_buckets=spec.num_oov_buckets,
            min_freq=spec.min_freq,
            max_size=spec.max_size,
        )
        return CategoricalColumn(name, dim_of(len(vocab)), vocab, kind)
    assert isinstance(spec, MultiLabelSpec)
    labels = [to_token(v) for row in split_cells(series, spec.separator) for v in row]
    vocab = Vocabulary.build(
        labels,
        min_freq=spec.min_freq,
        max_size=spec.max_size,
        specials=("<pad>", UNK_TOKEN),
        pad_token="<pad>",
        unk_token=UNK_TOKEN,
        oov=spec.oov,
        num_oov_buckets=(spec.num_oov_buckets or DEFAULT_NUM_BUCKETS)
        if spec.oov == "hash"
        else None,
    )
    return MultiLabelColumn(name, dim_of(len(vocab)), vocab, spec.separator, spec.mode)


def _fit_numerical(name: Any, values: np.ndarray, spec: NumericalSpec) -> NumericalColumn:
    finite = values[np.isfinite(values)]
    if np.isinf(values).any():
        raise NonFiniteError(
            f"Numerical column {name!r} holds {int(np.isinf(values).sum())} infinite value(s); "
            "replace them (NaN is allowed and gets an indicator)."
        )
    has_nan = bool(np.isnan(values).any())
    if finite.size == 0:
        raise ShapeError(
            f"Numerical column {name!r} has no finite value to fit its scaling on; drop it "
            "or fill it."
        )
    data = torch.from_numpy(finite)
    fitted = AffineScaler.fit(data, spec.scaling, dim=None, clip=spec.scaling == "minmax")
    low, high = float(data.min()), float(data.max())
    column = NumericalColumn(
        name=name,
        scaling=spec.scaling,
        shift=float(fitted.shift),
        scale=float(fitted.divisor),
        min=low,
        max=high,
        nan_indicator=has_nan if spec.nan_indicator is None else bool(spec.nan_indicator),
        nan_policy=spec.nan_policy,
        fill=float(finite.mean()) if spec.nan_policy == "impute" else None,
        embedding=spec.embedding,
        embedding_dim=spec.embedding_dim if spec.embedding else 1,
        n_frequencies=spec.n_frequencies,
        sigma=spec.sigma,
    )
    if spec.embedding != "piecewise_linear":
        return column
    scaled = column.scale_values(data).numpy()
    edges = np.unique(np.quantile(scaled, np.linspace(0.0, 1.0, spec.n_bins + 1)))
    if edges.size < 2:  # a constant column: one bin of width 1 around its value
        edges = np.array([edges[0], edges[0] + 1.0])
    return dataclasses.replace(column, bins=tuple(float(e) for e in edges))
