"""TabularEmbedding: the columns of a DataFrame row to one dense vector.

Categorical columns go through a learned table each (pandas values ->
vocabulary ids -> :class:`~synthembed.Embedding`, the founding documents'
"embedding for a categorical column"), numerical columns are scaled (min-max
into [0, 1] fitted on training data, or standardised) with an explicit NaN
indicator, optionally through a learned numerical embedding, and multi-label
columns (lists, or strings such as ``"Action|Comedy"``) become pooled bags.

The numerical embeddings follow Gorishniy, Rubachev and Babenko, "On Embeddings
for Numerical Features in Tabular Deep Learning" (NeurIPS 2022):

- ``"periodic"``: ``[cos(2 pi c x), sin(2 pi c x)]`` with learned frequencies
  ``c ~ N(0, sigma)``, then ``Linear`` and ``ReLU`` (the paper's PLR).
- ``"piecewise_linear"``: the piecewise-linear encoding over quantile bins of
  the training data (the paper's PLE with quantile bins), then ``Linear`` and
  ``ReLU`` (Q-LR).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import torch
from torch import nn

from synthembed._validation import (
    check_choice,
    check_float,
    check_ids,
    check_int,
    check_integer_ids,
    check_output_finite,
    require,
)
from synthembed.errors import ConfigError, NonFiniteError, ShapeError, UnknownTokenError
from synthembed.io import register_savable
from synthembed.layers.embedding import Embedding, PoolingMode
from synthembed.vocab import OOVPolicy, Token, Vocabulary

__all__ = [
    "CATEGORICAL_SPECIALS",
    "MISSING_TOKEN",
    "CategoricalSpec",
    "MultiLabelSpec",
    "NumericalSpec",
    "PeriodicEmbedding",
    "PiecewiseLinearEmbedding",
    "TabularEmbedding",
    "auto_embedding_dim",
    "build_column_vocab",
    "encode_column",
    "to_token",
]

Scaling = Literal["minmax", "standard"]
NumericalEmbedding = Literal["periodic", "piecewise_linear"]
_SCALINGS = ("minmax", "standard")
_NUM_EMBEDDINGS = (None, "periodic", "piecewise_linear")
_OOV = ("error", "unk", "hash")
_BAG_MODES = ("mean", "sum", "max")
_CONFIG_VERSION = 1


# ---------------------------------------------------------------------- categorical columns
MISSING_TOKEN = "<missing>"
UNK_TOKEN = "<unk>"
#: Specials of a categorical column's vocabulary: ids 0 and 1.
CATEGORICAL_SPECIALS = (UNK_TOKEN, MISSING_TOKEN)
#: Hash buckets used with ``oov="hash"`` when ``num_buckets`` is not given.
DEFAULT_NUM_BUCKETS = 16


def to_token(value: Any) -> Token:
    """Normalise one non-missing cell to a vocabulary token (str or int).

    Example:
        >>> to_token(3.0), to_token(True), to_token("a"), to_token(2.5)
        (3, 'True', 'a', '2.5')
    """
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if math.isfinite(f) and f.is_integer():
            return int(f)
        return str(f)
    return str(value)


def _factorize(values: Any) -> tuple[np.ndarray, list[Any]]:
    """Codes (-1 for missing) and the distinct non-missing values, in first-seen order."""
    pd = _pandas()
    if not isinstance(values, (np.ndarray, pd.Series, pd.Index, pd.Categorical)):
        values = pd.Series(list(values), dtype=object)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), list(uniques)


def build_column_vocab(
    values: Any,
    *,
    oov: OOVPolicy = "unk",
    num_buckets: int | None = None,
    min_freq: int = 1,
    max_size: int | None = None,
) -> Vocabulary:
    """Count one categorical column and build its vocabulary.

    Ids ``0`` and ``1`` are ``"<unk>"`` and ``"<missing>"``; with ``oov="hash"``
    the hash buckets follow, then the values, most frequent first.

    Args:
        values: a 1-d array, list or pandas Series (missing values are skipped).
        oov: what an unseen value becomes at encode time.
        num_buckets: hash buckets for ``oov="hash"`` (default 16).
        min_freq: keep values seen at least this often (rarer ones become OOV).
        max_size: keep at most this many values.

    Example:
        >>> v = build_column_vocab(["a", "b", "a", None])
        >>> v.tokens, len(v)
        (['a', 'b'], 4)
    """
    check_choice("build_column_vocab", "oov", oov, _OOV)
    codes, uniques = _factorize(values)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    counter: Counter[Token] = Counter()
    for value, count in zip(uniques, counts.tolist()):
        counter[to_token(value)] += int(count)
    return Vocabulary.build(
        counter,
        min_freq=min_freq,
        max_size=max_size,
        specials=CATEGORICAL_SPECIALS,
        pad_token=None,
        unk_token=UNK_TOKEN,
        oov=oov,
        num_buckets=(num_buckets or DEFAULT_NUM_BUCKETS) if oov == "hash" else None,
    )


def encode_column(values: Any, vocab: Vocabulary, column: Any) -> np.ndarray:
    """Map one column to ids with ``vocab``; missing cells get the ``"<missing>"`` id.

    Each distinct value is looked up once, so a column of a million rows with a
    few thousand values costs one ``pandas.factorize`` and a few thousand lookups.

    Raises:
        UnknownTokenError: an unseen value under ``oov="error"``; the message names
            the column.

    Returns:
        A ``(n,)`` int64 array.
    """
    codes, uniques = _factorize(values)
    try:
        table = np.fromiter((vocab.encode(to_token(u)) for u in uniques), np.int64, len(uniques))
    except UnknownTokenError as exc:
        raise UnknownTokenError(f"Column {column!r}: {exc}") from exc
    missing = vocab.key_to_index.get(MISSING_TOKEN)
    if missing is None:
        missing = vocab.unk_id
    if missing is None and bool((codes < 0).any()):
        raise UnknownTokenError(
            f"Column {column!r} has missing values but its vocabulary has neither a "
            f"'{MISSING_TOKEN}' nor an unknown token; fill the missing values first."
        )
    out = np.full(codes.shape, -1 if missing is None else missing, dtype=np.int64)
    seen = codes >= 0
    out[seen] = table[codes[seen]]
    return out


def auto_embedding_dim(cardinality: int) -> int:
    """The rule of thumb ``min(50, round(1.6 * n ** 0.56))`` for a column of ``n`` ids.

    It is fastai's heuristic for categorical embeddings: it grows slowly with the
    number of values and stops at 50.

    Example:
        >>> auto_embedding_dim(4), auto_embedding_dim(100), auto_embedding_dim(4000)
        (3, 21, 50)
    """
    check_int("auto_embedding_dim", "cardinality", cardinality, 1)
    return int(min(50, max(1, round(1.6 * cardinality**0.56))))


# ---------------------------------------------------------------------- column specs
@dataclass(frozen=True)
class CategoricalSpec:
    """How to fit one categorical column.

    Args:
        embedding_dim: an int, or ``"auto"`` for :func:`auto_embedding_dim`.
        oov: unseen values at encode time: ``"unk"``, ``"hash"`` or ``"error"``.
        num_buckets: hash buckets with ``oov="hash"`` (default 16).
        min_freq: values seen fewer times in training are treated as unseen.
        max_size: keep at most this many values (most frequent).
    """

    embedding_dim: int | Literal["auto"] = "auto"
    oov: OOVPolicy = "unk"
    num_buckets: int | None = None
    min_freq: int = 1
    max_size: int | None = None

    def __post_init__(self) -> None:
        _check_dim("CategoricalSpec", self.embedding_dim)
        check_choice("CategoricalSpec", "oov", self.oov, _OOV)
        check_int("CategoricalSpec", "num_buckets", self.num_buckets, 1, optional=True)
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
        embedding: ``None`` (the scaled value itself), ``"periodic"`` or
            ``"piecewise_linear"`` (see the module docstring).
        embedding_dim: output size of a numerical embedding.
        n_bins: quantile bins of ``"piecewise_linear"``.
        n_frequencies: frequencies of ``"periodic"``.
        sigma: standard deviation of the initial frequencies of ``"periodic"``.
    """

    scaling: Scaling = "minmax"
    nan_indicator: bool | None = None
    embedding: NumericalEmbedding | None = None
    embedding_dim: int = 8
    n_bins: int = 16
    n_frequencies: int = 16
    sigma: float = 1.0

    def __post_init__(self) -> None:
        owner = "NumericalSpec"
        check_choice(owner, "scaling", self.scaling, _SCALINGS)
        check_choice(owner, "embedding", self.embedding, _NUM_EMBEDDINGS)
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
        oov, num_buckets, min_freq, max_size: as in :class:`CategoricalSpec`.
    """

    embedding_dim: int | Literal["auto"] = "auto"
    separator: str | None = "|"
    mode: PoolingMode = "mean"
    oov: OOVPolicy = "unk"
    num_buckets: int | None = None
    min_freq: int = 1
    max_size: int | None = None

    def __post_init__(self) -> None:
        owner = "MultiLabelSpec"
        _check_dim(owner, self.embedding_dim)
        check_choice(owner, "mode", self.mode, _BAG_MODES)
        check_choice(owner, "oov", self.oov, _OOV)
        check_int(owner, "num_buckets", self.num_buckets, 1, optional=True)
        check_int(owner, "min_freq", self.min_freq, 1)
        check_int(owner, "max_size", self.max_size, 0, optional=True)
        if self.separator is not None and (
            not isinstance(self.separator, str) or not self.separator
        ):
            raise ConfigError(
                f"The 'separator' parameter of {owner} must be a non-empty str or None. "
                f"Got {self.separator!r} instead."
            )


Spec = CategoricalSpec | NumericalSpec | MultiLabelSpec


def _check_dim(owner: str, dim: Any) -> None:
    if dim != "auto":
        check_int(owner, "embedding_dim", dim, 1)


# ---------------------------------------------------------------------- numerical embeddings
class PeriodicEmbedding(nn.Module):
    """Periodic embedding of one scalar feature: ``ReLU(Linear([cos(2 pi c x), sin(2 pi c x)]))``.

    Gorishniy et al. (2022), "PLR": the frequencies ``c`` are learned, drawn at
    init from ``N(0, sigma)``.

    Args:
        n_frequencies: number of frequencies ``k`` (the encoding has ``2k`` values).
        embedding_dim: output size.
        sigma: standard deviation of the initial frequencies.

    Shape:
        ``(*)`` floats -> ``(*, embedding_dim)``.

    Example:
        >>> PeriodicEmbedding(4, 3)(torch.rand(5)).shape
        torch.Size([5, 3])
    """

    def __init__(self, n_frequencies: int, embedding_dim: int, *, sigma: float = 1.0) -> None:
        check_int("PeriodicEmbedding", "n_frequencies", n_frequencies, 1)
        check_int("PeriodicEmbedding", "embedding_dim", embedding_dim, 1)
        check_float("PeriodicEmbedding", "sigma", sigma, 0.0, low_closed=False)
        super().__init__()
        self.sigma = float(sigma)
        self.frequencies = nn.Parameter(torch.empty(n_frequencies))
        self.linear = nn.Linear(2 * n_frequencies, embedding_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Frequencies from ``N(0, sigma)``; the linear layer as torch initialises it."""
        nn.init.normal_(self.frequencies, 0.0, self.sigma)
        self.linear.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = 2 * math.pi * x.unsqueeze(-1) * self.frequencies  # (*, k)
        encoded = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)  # (*, 2k)
        return torch.relu(self.linear(encoded))


class PiecewiseLinearEmbedding(nn.Module):
    """Piecewise-linear encoding over fixed bins, then ``ReLU(Linear(.))``.

    Gorishniy et al. (2022), "PLE": for bins ``[b_{t-1}, b_t)``, component ``t``
    is 0 left of the bin, 1 right of it and linear inside. As in the paper the
    first component is not clipped below and the last not clipped above, so
    values outside the training range keep a slope.

    Args:
        bins: strictly increasing bin edges (``T + 1`` edges give ``T`` components).
        embedding_dim: output size.

    Shape:
        ``(*)`` floats -> ``(*, embedding_dim)``.

    Example:
        >>> PiecewiseLinearEmbedding([0.0, 0.5, 1.0], 3)(torch.rand(5)).shape
        torch.Size([5, 3])
    """

    def __init__(self, bins: Sequence[float], embedding_dim: int) -> None:
        edges = [float(b) for b in bins]
        if (
            len(edges) < 2
            or any(not math.isfinite(b) for b in edges)
            or any(b >= c for b, c in itertools.pairwise(edges))
        ):
            raise ConfigError(
                "PiecewiseLinearEmbedding needs at least 2 finite, strictly increasing bin "
                f"edges; got {edges!r}."
            )
        check_int("PiecewiseLinearEmbedding", "embedding_dim", embedding_dim, 1)
        super().__init__()
        self.bins = edges
        # Not persistent: the edges live in the JSON configuration, not among the weights.
        self._left: torch.Tensor
        self._width: torch.Tensor
        self.register_buffer("_left", torch.tensor(edges[:-1]), persistent=False)
        self.register_buffer("_width", torch.tensor(np.diff(edges).tolist()), persistent=False)
        self.linear = nn.Linear(len(edges) - 1, embedding_dim)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The piecewise-linear encoding alone: ``(*)`` -> ``(*, T)``."""
        ratio = (x.unsqueeze(-1) - self._left) / self._width  # (*, T)
        n = ratio.shape[-1]
        if n == 1:
            return ratio
        # Departure from clipping every component to [0, 1]: the paper leaves the
        # outer sides of the first and last bins open.
        first = ratio[..., :1].clamp(max=1.0)
        middle = ratio[..., 1:-1].clamp(0.0, 1.0)
        last = ratio[..., -1:].clamp(min=0.0)
        return torch.cat([first, middle, last], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(self.encode(x.to(self._left.dtype))))


# ---------------------------------------------------------------------- helpers
def _pandas() -> Any:
    return require("pandas", "data", "TabularEmbedding")


def _value_kind(series: Any) -> str:
    """'bool', 'number', 'datetime' or 'text': what a column holds, for dtype checks."""
    pd = _pandas()
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


def _looks_multi_label(series: Any, separator: str | None) -> bool:
    cells = series.dropna()
    if len(cells) == 0:
        return False
    if any(_is_list_cell(v) for v in cells.head(1000)):
        return True
    if separator is None:
        return False
    strings = cells[cells.map(lambda v: isinstance(v, str))]
    return bool(len(strings)) and bool(strings.str.contains(separator, regex=False).any())


def _split_cells(series: Any, separator: str | None) -> list[list[Any]]:
    """Each cell as a list of labels: list cells as they are, strings split, missing empty."""
    pd = _pandas()
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


def _fit_numerical(name: str, values: np.ndarray, spec: NumericalSpec) -> dict[str, Any]:
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
    low, high = float(finite.min()), float(finite.max())
    mean, std = float(finite.mean()), float(finite.std())
    if spec.scaling == "minmax":
        shift, scale = low, (high - low) or 1.0
    else:
        shift, scale = mean, std or 1.0
    column: dict[str, Any] = {
        "name": name,
        "kind": "numerical",
        "value_kind": "number",
        "scaling": spec.scaling,
        "shift": shift,
        "scale": scale,
        "min": low,
        "max": high,
        "nan_indicator": has_nan if spec.nan_indicator is None else bool(spec.nan_indicator),
        "embedding": spec.embedding,
        "embedding_dim": spec.embedding_dim if spec.embedding else 1,
        "n_frequencies": spec.n_frequencies,
        "sigma": spec.sigma,
        "bins": None,
    }
    if spec.embedding == "piecewise_linear":
        scaled = _scale_numpy(finite, column)
        edges = np.unique(np.quantile(scaled, np.linspace(0.0, 1.0, spec.n_bins + 1)))
        if edges.size < 2:  # a constant column: one bin of width 1 around its value
            edges = np.array([edges[0], edges[0] + 1.0])
        column["bins"] = [float(e) for e in edges]
    return column


def _scale_numpy(values: np.ndarray, column: Mapping[str, Any]) -> np.ndarray:
    out = (values - column["shift"]) / column["scale"]
    if column["scaling"] == "minmax":
        out = np.clip(out, 0.0, 1.0)
    return out


# ---------------------------------------------------------------------- the layer
@register_savable
class TabularEmbedding(nn.Module):
    """Turns each row of a table into one dense vector.

    Build it with :meth:`from_frame`, which fits vocabularies and scalers on a
    training DataFrame; the constructor takes the fitted column descriptions
    that :meth:`get_config` returns. Columns are concatenated in frame order:

    - categorical: ``embedding_dim`` values from the column's table;
    - numerical: the scaled value (or its ``embedding_dim``-sized numerical
      embedding), then the NaN indicator when the column has one;
    - multi-label: ``embedding_dim`` values, the pooled bag of the row's labels.

    Table rows are drawn from ``N(0, 1)`` as in ``torch.nn.Embedding``, except
    the special rows (``"<unk>"``, ``"<missing>"``, ``"<pad>"``), which start at
    zero: an unseen value then contributes nothing until its row is trained.

    Args:
        columns: fitted column descriptions (from ``from_frame(...).get_config()``).
        check_finite: raise :class:`~synthembed.errors.NonFiniteError` at the first
            NaN or infinity a column's embedding produces, naming the column and the
            ids (categorical and multi-label columns) or batch rows (numerical ones).

    Shape:
        ``layer(layer.encode(df))``: ``(B, output_dim)`` for a frame of ``B`` rows.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"city": ["a", "b", "a"], "age": [20.0, None, 40.0],
        ...                    "tags": ["x|y", "y", None]})
        >>> layer = TabularEmbedding.from_frame(df, embedding_dim=4)
        >>> layer(layer.encode(df)).shape, layer.output_dim
        (torch.Size([3, 10]), 10)
    """

    def __init__(self, columns: Sequence[Mapping[str, Any]], *, check_finite: bool = False) -> None:
        if not columns:
            raise ConfigError("TabularEmbedding needs at least one column; got none.")
        names = [c["name"] for c in columns]
        duplicates = sorted({str(n) for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"TabularEmbedding got duplicate column names {duplicates}.")
        super().__init__()
        self.check_finite = bool(check_finite)
        self.columns: list[dict[str, Any]] = [dict(c) for c in columns]
        self.vocabs: dict[str, Vocabulary] = {}
        self.embedders = nn.ModuleList()
        for column in self.columns:
            self.embedders.append(self._make_embedder(column))

    def _make_embedder(self, column: dict[str, Any]) -> nn.Module:
        kind = column["kind"]
        check_choice(
            "TabularEmbedding", "column kind", kind, ("categorical", "numerical", "multi_label")
        )
        if kind == "numerical":
            if column["embedding"] == "periodic":
                return PeriodicEmbedding(
                    column["n_frequencies"], column["embedding_dim"], sigma=column["sigma"]
                )
            if column["embedding"] == "piecewise_linear":
                return PiecewiseLinearEmbedding(column["bins"], column["embedding_dim"])
            return nn.Identity()
        vocab = Vocabulary.from_dict(column["vocab"], source=f"column {column['name']!r}")
        self.vocabs[column["name"]] = vocab
        mode = column.get("mode") if kind == "multi_label" else None
        table = Embedding(len(vocab), column["embedding_dim"], vocab=vocab, mode=mode)
        # Departure from N(0, 1) everywhere: the "<unk>" and "<missing>" rows start at zero,
        # so a value never seen in training (whose row gets no gradient unless rare values
        # were folded into "<unk>" by min_freq/max_size) adds nothing rather than noise.
        with torch.no_grad():
            for special in vocab.specials:
                table.weight[vocab.key_to_index[special]].zero_()
        return table

    # ------------------------------------------------------------------ building
    @classmethod
    def from_frame(
        cls,
        df: Any,
        categorical: Sequence[str] | Mapping[str, CategoricalSpec] | None = None,
        numerical: Sequence[str] | Mapping[str, NumericalSpec] | None = None,
        multi_label: Sequence[str] | Mapping[str, MultiLabelSpec] | None = None,
        *,
        embedding_dim: int | Literal["auto"] = "auto",
        oov: OOVPolicy = "unk",
        scaling: Scaling = "minmax",
        numerical_embedding: NumericalEmbedding | None = None,
        separator: str | None = "|",
        check_finite: bool = False,
    ) -> TabularEmbedding:
        """Fit vocabularies and scalers on a training frame and build the layer.

        Columns not named in ``categorical``, ``numerical`` or ``multi_label``
        are inferred: list cells, or strings containing ``separator`` in any
        cell -> multi-label; other object, string, category and bool columns ->
        categorical; numbers -> numerical. Drop the target before the call.

        Args:
            df: the training ``pandas.DataFrame``.
            categorical, numerical, multi_label: column names (fitted with the
                defaults below) or mappings of name to a spec.
            embedding_dim: default size of categorical and multi-label vectors, or
                ``"auto"``: ``min(50, round(1.6 * n ** 0.56))`` for ``n`` ids.
            oov: default policy for unseen values: ``"unk"``, ``"hash"``, ``"error"``.
            scaling: default numerical scaling, ``"minmax"`` or ``"standard"``.
            numerical_embedding: default numerical embedding: ``None``,
                ``"periodic"`` or ``"piecewise_linear"``.
            separator: splits string cells of multi-label columns.
            check_finite: see the class (raise on NaN/inf outputs, naming the column).

        Raises:
            ShapeError: a named column is missing, named twice, or of a kind that
                cannot be used (dates, text in a numerical column).
        """
        pd = _pandas()
        owner = "TabularEmbedding.from_frame"
        if not isinstance(df, pd.DataFrame):
            raise ShapeError(f"{owner} expects a pandas DataFrame; got {type(df).__name__}.")
        if len(df) == 0:
            raise ShapeError(f"{owner} needs at least one training row; the frame is empty.")
        _check_dim(owner, embedding_dim)
        check_choice(owner, "oov", oov, _OOV)
        check_choice(owner, "scaling", scaling, _SCALINGS)
        check_choice(owner, "numerical_embedding", numerical_embedding, _NUM_EMBEDDINGS)
        defaults: dict[str, Spec] = {
            "categorical": CategoricalSpec(embedding_dim=embedding_dim, oov=oov),
            "numerical": NumericalSpec(scaling=scaling, embedding=numerical_embedding),
            "multi_label": MultiLabelSpec(
                embedding_dim=embedding_dim, oov=oov, separator=separator
            ),
        }
        specs: dict[Any, Spec] = {}
        for kind, given, spec_type in (
            ("categorical", categorical, CategoricalSpec),
            ("numerical", numerical, NumericalSpec),
            ("multi_label", multi_label, MultiLabelSpec),
        ):
            if given is None:
                continue
            if isinstance(given, str):
                raise ShapeError(
                    f"{owner}: {kind}= takes a list of column names; got the str {given!r}."
                )
            items = (
                given.items()
                if isinstance(given, Mapping)
                else ((n, defaults[kind]) for n in given)
            )
            for name, spec in items:
                if not isinstance(spec, spec_type):
                    raise ConfigError(
                        f"{owner}: column {name!r} in {kind}= needs a {spec_type.__name__}; "
                        f"got {type(spec).__name__}."
                    )
                if name in specs:
                    raise ShapeError(f"{owner}: column {name!r} is named in two column lists.")
                if name not in df.columns:
                    raise ShapeError(
                        f"{owner}: column {name!r} (in {kind}=) is not in the frame; its columns "
                        f"are {list(df.columns)}."
                    )
                specs[name] = spec
        for name in df.columns:
            if name in specs:
                continue
            kind = _value_kind(df[name])
            if kind == "datetime":
                raise ShapeError(
                    f"{owner}: column {name!r} holds dates/times; derive numbers or categories "
                    "from it (month, hour, ...) or drop it."
                )
            if kind == "number":
                specs[name] = defaults["numerical"]
            elif _looks_multi_label(df[name], separator):
                specs[name] = defaults["multi_label"]
            else:
                specs[name] = defaults["categorical"]
        columns = [
            cls._fit_column(name, df[name], specs[name]) for name in df.columns if name in specs
        ]
        return cls(columns, check_finite=check_finite)

    @staticmethod
    def _fit_column(name: Any, series: Any, spec: Spec) -> dict[str, Any]:
        kind = _value_kind(series)
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
                num_buckets=spec.num_buckets,
                min_freq=spec.min_freq,
                max_size=spec.max_size,
            )
            return {
                "name": name,
                "kind": "categorical",
                "value_kind": kind,
                "embedding_dim": dim_of(len(vocab)),
                "vocab": vocab.to_dict(),
            }
        labels = [to_token(v) for row in _split_cells(series, spec.separator) for v in row]
        vocab = Vocabulary.build(
            labels,
            min_freq=spec.min_freq,
            max_size=spec.max_size,
            specials=("<pad>", UNK_TOKEN),
            pad_token="<pad>",
            unk_token=UNK_TOKEN,
            oov=spec.oov,
            num_buckets=(spec.num_buckets or DEFAULT_NUM_BUCKETS) if spec.oov == "hash" else None,
        )
        return {
            "name": name,
            "kind": "multi_label",
            "value_kind": "labels",
            "embedding_dim": dim_of(len(vocab)),
            "separator": spec.separator,
            "mode": spec.mode,
            "vocab": vocab.to_dict(),
        }

    # ------------------------------------------------------------------ properties
    @property
    def column_names(self) -> list[Any]:
        """The fitted columns, in output order."""
        return [c["name"] for c in self.columns]

    @property
    def column_dims(self) -> dict[Any, int]:
        """How many output values each column contributes."""
        return {c["name"]: self._dim(c) for c in self.columns}

    @staticmethod
    def _dim(column: Mapping[str, Any]) -> int:
        if column["kind"] == "numerical":
            return int(column["embedding_dim"]) + int(bool(column["nan_indicator"]))
        return int(column["embedding_dim"])

    @property
    def output_dim(self) -> int:
        """Size of the row vector: the sum of :attr:`column_dims`."""
        return sum(self._dim(c) for c in self.columns)

    # ------------------------------------------------------------------ encoding
    def encode(
        self, df: Any, *, extra_columns: Literal["error", "ignore"] = "error", device: Any = None
    ) -> dict[Any, torch.Tensor]:
        """Turn a frame into the tensors :meth:`forward` takes, one per column.

        Categorical columns give ``(B,)`` long ids, numerical columns ``(B,)``
        float32 raw values (NaN kept; :meth:`forward` scales them), multi-label
        columns ``(B, L)`` long ids padded with the pad id.

        Args:
            df: a frame with the fitted columns.
            extra_columns: what to do with columns the layer was not fitted on.
            device: where to put the tensors.

        Raises:
            ShapeError: a missing column, an extra one (with ``extra_columns="error"``),
                or a column whose values changed kind (text where numbers were fitted).
            UnknownTokenError: an unseen value in a column with ``oov="error"``.
            NonFiniteError: infinity in a numerical column, or NaN in one fitted
                without a NaN indicator.
        """
        pd = _pandas()
        if not isinstance(df, pd.DataFrame):
            raise ShapeError(
                f"TabularEmbedding.encode expects a pandas DataFrame; got {type(df).__name__}."
            )
        check_choice("TabularEmbedding.encode", "extra_columns", extra_columns, ("error", "ignore"))
        missing = [n for n in self.column_names if n not in df.columns]
        if missing:
            raise ShapeError(
                f"TabularEmbedding.encode: the frame lacks column(s) {missing} that the layer was "
                f"fitted on; it has {list(df.columns)}."
            )
        if extra_columns == "error":
            extra = [n for n in df.columns if n not in set(self.column_names)]
            if extra:
                raise ShapeError(
                    f"TabularEmbedding.encode: the frame has column(s) {extra} that the layer was "
                    "not fitted on; drop them or pass extra_columns='ignore'."
                )
        batch: dict[Any, torch.Tensor] = {}
        for column in self.columns:
            name = column["name"]
            batch[name] = self._encode_column(column, df[name]).to(device)
        return batch

    def _encode_column(self, column: Mapping[str, Any], series: Any) -> torch.Tensor:
        name, kind = column["name"], column["kind"]
        got = _value_kind(series)
        if kind == "numerical":
            if got not in ("number", "bool"):
                raise ShapeError(
                    f"Column {name!r} was fitted as numerical but now holds {series.dtype} "
                    "values; convert it with pd.to_numeric."
                )
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
            self._check_numbers(column, values)
            return torch.from_numpy(values.astype(np.float32))
        vocab = self.vocabs[name]
        if kind == "categorical":
            fitted = column["value_kind"]
            # A column with only missing values reads as numbers (NaN): let it through.
            if got != fitted and not (series.isna().all() and len(series)):
                raise ShapeError(
                    f"Column {name!r} was fitted on {fitted} values but now holds {got} values "
                    f"(dtype {series.dtype}); cast it back to the training dtype."
                )
            return torch.from_numpy(encode_column(series, vocab, name))
        rows = _split_cells(series, column["separator"])
        return self._encode_bags(name, rows, vocab)

    @staticmethod
    def _encode_bags(name: Any, rows: list[list[Any]], vocab: Vocabulary) -> torch.Tensor:
        width = max((len(r) for r in rows), default=0)
        pad = vocab.pad_id if vocab.pad_id is not None else 0
        ids = np.full((len(rows), max(width, 1)), pad, dtype=np.int64)  # (B, L)
        cache: dict[Token, int] = {}
        try:
            for i, row in enumerate(rows):
                for j, label in enumerate(row):
                    token = to_token(label)
                    index = cache.get(token)
                    if index is None:
                        index = cache[token] = vocab.encode(token)
                    ids[i, j] = index
        except UnknownTokenError as exc:
            raise UnknownTokenError(f"Column {name!r}: {exc}") from exc
        return torch.from_numpy(ids)

    @staticmethod
    def _check_numbers(column: Mapping[str, Any], values: np.ndarray) -> None:
        name = column["name"]
        n_inf = int(np.isinf(values).sum())
        if n_inf:
            raise NonFiniteError(
                f"Numerical column {name!r} holds {n_inf} infinite value(s); replace them."
            )
        if not column["nan_indicator"]:
            n_nan = int(np.isnan(values).sum())
            if n_nan:
                raise NonFiniteError(
                    f"Numerical column {name!r} holds {n_nan} NaN value(s) but was fitted without "
                    "a NaN indicator; impute them, or fit with NumericalSpec(nan_indicator=True)."
                )

    # ------------------------------------------------------------------ forward
    def forward(self, batch: Mapping[Any, torch.Tensor] | Any) -> torch.Tensor:
        """Embed a batch and concatenate the columns.

        Args:
            batch: the mapping :meth:`encode` returns (or a DataFrame, encoded first).

        Shape:
            Output: ``(B, output_dim)``.

        Raises:
            ShapeError: a column missing from the batch, columns of different lengths, or
                non-integer ids in a categorical or multi-label column.
            InvalidIndexError: ids outside a column's table; the message names the column.
            NonFiniteError: with ``check_finite=True``, NaN/inf in a column's output.
        """
        if not isinstance(batch, Mapping):
            batch = self.encode(batch)
        missing = [n for n in self.column_names if n not in batch]
        if missing:
            raise ShapeError(
                f"TabularEmbedding got a batch without column(s) {missing}; build batches with "
                "layer.encode(df)."
            )
        sizes = {name: int(batch[name].shape[0]) for name in self.column_names}
        if len(set(sizes.values())) > 1:
            raise ShapeError(
                f"TabularEmbedding got columns with different numbers of rows: {sizes}."
            )
        # Every column's ids are checked before any lookup, with the column in the message
        # (the tables would name only "Embedding").
        for column, embedder in zip(self.columns, self.embedders):
            if column["kind"] != "numerical":
                owner = f"TabularEmbedding column {column['name']!r}"
                ids = check_integer_ids(batch[column["name"]], owner)
                table = cast(Embedding, embedder)  # categorical and multi-label columns
                check_ids(ids, table.num_embeddings, owner)
        parts: list[torch.Tensor] = []
        for column, embedder in zip(self.columns, self.embedders):
            x = batch[column["name"]]
            if column["kind"] == "numerical":
                out = self._numerical(column, embedder, x)
                if self.check_finite:
                    self._check_numerical_output(column["name"], out[0])
                parts.extend(out)
            else:
                part = embedder(x)
                if self.check_finite:
                    check_output_finite(part, x, f"TabularEmbedding column {column['name']!r}")
                parts.append(part)
        return torch.cat(parts, dim=-1)  # (B, output_dim)

    @staticmethod
    def _check_numerical_output(name: Any, out: torch.Tensor) -> None:
        """NaN/inf from a numerical column (a learned periodic or piecewise-linear embedding):
        the rows of the batch are named, as the column has no ids."""
        bad = ~torch.isfinite(out)
        if bool(bad.any()):
            rows = torch.nonzero(bad.reshape(len(out), -1).any(-1)).reshape(-1)[:10].tolist()
            check_output_finite(out, None, f"TabularEmbedding column {name!r} (batch rows {rows})")

    def _numerical(
        self, column: Mapping[str, Any], embedder: nn.Module, x: torch.Tensor
    ) -> list[torch.Tensor]:
        name = column["name"]
        if x.dim() != 1:
            raise ShapeError(
                f"Numerical column {name!r} must be a (B,) tensor; got shape {tuple(x.shape)}."
            )
        x = x.float()
        nan = torch.isnan(x)
        if bool(torch.isinf(x).any()):
            raise NonFiniteError(f"Numerical column {name!r} holds infinite values; replace them.")
        scaled = (x - column["shift"]) / column["scale"]
        if column["scaling"] == "minmax":
            scaled = scaled.clamp(0.0, 1.0)
        if column["nan_indicator"]:
            scaled = torch.where(nan, torch.zeros_like(scaled), scaled)
        elif bool(nan.any()):
            raise NonFiniteError(
                f"Numerical column {name!r} holds NaN but was fitted without a NaN indicator; "
                "impute it, or fit with NumericalSpec(nan_indicator=True)."
            )
        out = [embedder(scaled) if column["embedding"] else scaled.unsqueeze(-1)]  # (B, d)
        if column["nan_indicator"]:
            out.append(nan.to(scaled.dtype).unsqueeze(-1))  # (B, 1)
        return out

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """The JSON-safe fitted columns (vocabularies and scaler parameters included)."""
        return {
            "version": _CONFIG_VERSION,
            "columns": [dict(c) for c in self.columns],
            "check_finite": self.check_finite,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TabularEmbedding:
        """Rebuild the layer (fresh weights) from :meth:`get_config` output."""
        version = config.get("version")
        if version != _CONFIG_VERSION:
            raise ConfigError(
                f"TabularEmbedding configuration version {version!r} is not supported; this "
                f"synthembed reads version {_CONFIG_VERSION}."
            )
        # check_finite is absent from configurations saved before it existed.
        return cls(config["columns"], check_finite=bool(config.get("check_finite", False)))

    def extra_repr(self) -> str:
        kinds = ", ".join(f"{c['name']}:{c['kind']}" for c in self.columns)
        extra = ", check_finite=True" if self.check_finite else ""
        return f"output_dim={self.output_dim}, columns=[{kinds}]{extra}"
