"""TabularEmbedding: the columns of a DataFrame row to one dense vector.

Categorical columns go through a learned table each (pandas values ->
vocabulary ids -> :class:`~synthembed.Embedding`, the founding documents'
"embedding for a categorical column"), numerical columns are scaled (min-max
into [0, 1] fitted on training data, or standardised) with an explicit NaN
indicator, optionally through a learned numerical embedding
(:mod:`synthembed.layers.numerical`), and multi-label columns (lists, or strings
such as ``"Action|Comedy"``) become pooled bags.

The parts live in their own modules: column vocabularies in
:mod:`~synthembed.layers.column_vocab`, the specs a user gives in
:mod:`~synthembed.layers.tabular_specs`, the fitted columns and fitting in
:mod:`~synthembed.layers.tabular_columns`; their public names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

import numpy as np
import torch
from torch import nn

from synthembed._config import DTYPE, Codec, Configurable, Option
from synthembed._validation import (
    check_choice,
    check_ids,
    check_integer_ids,
    check_output_finite,
)
from synthembed.errors import ConfigError, NonFiniteError, ShapeError, UnknownTokenError
from synthembed.io import register_savable
from synthembed.layers.column_vocab import (
    CATEGORICAL_SPECIALS,
    DEFAULT_NUM_BUCKETS,
    MISSING_TOKEN,
    OOV_POLICIES,
    UNK_TOKEN,
    auto_embedding_dim,
    build_column_vocab,
    encode_column,
    pandas,
    to_token,
)
from synthembed.layers.embedding import Embedding
from synthembed.layers.numerical import PeriodicEmbedding, PiecewiseLinearEmbedding
from synthembed.layers.tabular_columns import (
    CategoricalColumn,
    FittedColumn,
    MultiLabelColumn,
    NumericalColumn,
    column_from_dict,
    fit_column,
    looks_multi_label,
    split_cells,
    value_kind,
)
from synthembed.layers.tabular_specs import (
    NAN_POLICIES,
    NUMERICAL_EMBEDDINGS,
    SCALINGS,
    CategoricalSpec,
    MultiLabelSpec,
    NanPolicy,
    NumericalEmbedding,
    NumericalSpec,
    Scaling,
    Spec,
    check_dim,
)
from synthembed.vocab import OOVPolicy, Token, Vocabulary

__all__ = [
    "CATEGORICAL_SPECIALS",
    "DEFAULT_NUM_BUCKETS",
    "MISSING_TOKEN",
    "UNK_TOKEN",
    "CategoricalColumn",
    "CategoricalSpec",
    "MultiLabelColumn",
    "MultiLabelSpec",
    "NumericalColumn",
    "NumericalSpec",
    "PeriodicEmbedding",
    "PiecewiseLinearEmbedding",
    "TabularEmbedding",
    "auto_embedding_dim",
    "build_column_vocab",
    "encode_column",
    "to_token",
]

_CONFIG_VERSION = 1
_NAN_FIX = (
    "a NaN indicator (its training data had none); impute them, or fit with "
    "NumericalSpec(nan_policy='impute') to fill NaN with the training mean, or with "
    "NumericalSpec(nan_indicator=True)."
)

#: Fitted columns in JSON: their ``to_dict()`` form (the constructor takes those back).
COLUMNS = Codec(
    lambda columns: [c.to_dict() for c in columns],
    lambda data, owner: [column_from_dict(c) for c in data],
)


def _float_dtype(module: nn.Module) -> torch.dtype:
    floats = [p for p in module.parameters() if p.is_floating_point()]
    return floats[0].dtype if floats else torch.float32


# ---------------------------------------------------------------------- the layer
@register_savable
class TabularEmbedding(Configurable, nn.Module):
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
        device, dtype: where and in which floating dtype the tables and numerical
            embeddings are created (as ``torch.nn.Embedding``'s).

    ``output_dim`` is the width of the concatenated row vector (the sum of the
    columns' widths), not a per-column ``embedding_dim``: the name says it differs.

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

    config_options = (
        Option("columns", codec=COLUMNS),
        Option("check_finite"),
        Option("dtype", get=_float_dtype, codec=DTYPE, show=False),
    )

    def __init__(
        self,
        columns: Sequence[FittedColumn | Mapping[str, Any]],
        *,
        check_finite: bool = False,
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if not columns:
            raise ConfigError("TabularEmbedding needs at least one column; got none.")
        fitted = [column_from_dict(c) for c in columns]
        names = [c.name for c in fitted]
        duplicates = sorted({str(n) for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"TabularEmbedding got duplicate column names {duplicates}.")
        super().__init__()
        self.check_finite = bool(check_finite)
        self.columns: list[FittedColumn] = fitted
        self.vocabs: dict[Any, Vocabulary] = {}
        self.embedders = nn.ModuleList()
        for column in self.columns:
            self.embedders.append(self._make_embedder(column, device, dtype))

    def _make_embedder(self, column: FittedColumn, device: Any, dtype: Any) -> nn.Module:
        if isinstance(column, NumericalColumn):
            if column.embedding == "periodic":
                return PeriodicEmbedding(
                    column.n_frequencies,
                    column.embedding_dim,
                    sigma=column.sigma,
                    device=device,
                    dtype=dtype,
                )
            if column.embedding == "piecewise_linear":
                if column.bins is None:
                    raise ConfigError(
                        f"Numerical column {column.name!r} uses a piecewise_linear embedding "
                        "but has no bins; refit it with TabularEmbedding.from_frame."
                    )
                return PiecewiseLinearEmbedding(
                    column.bins, column.embedding_dim, device=device, dtype=dtype
                )
            return nn.Identity()
        vocab = column.vocab
        self.vocabs[column.name] = vocab
        mode = column.mode if isinstance(column, MultiLabelColumn) else None
        table = Embedding(
            len(vocab),
            column.embedding_dim,
            device=device,
            dtype=dtype,
            vocab=vocab,
            mode=mode,  # type: ignore[arg-type]
        )
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
        nan_policy: NanPolicy = "error",
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
            nan_policy: default for NaN at predict time in numerical columns fitted
                without NaN: ``"error"`` or ``"impute"`` (the training mean); see
                :class:`NumericalSpec`.
            separator: splits string cells of multi-label columns.
            check_finite: see the class (raise on NaN/inf outputs, naming the column).

        Raises:
            ShapeError: a named column is missing, named twice, or of a kind that
                cannot be used (dates, text in a numerical column).
        """
        pd = pandas()
        owner = "TabularEmbedding.from_frame"
        if not isinstance(df, pd.DataFrame):
            raise ShapeError(f"{owner} expects a pandas DataFrame; got {type(df).__name__}.")
        if len(df) == 0:
            raise ShapeError(f"{owner} needs at least one training row; the frame is empty.")
        check_dim(owner, embedding_dim)
        check_choice(owner, "oov", oov, OOV_POLICIES)
        check_choice(owner, "scaling", scaling, SCALINGS)
        check_choice(owner, "numerical_embedding", numerical_embedding, NUMERICAL_EMBEDDINGS)
        check_choice(owner, "nan_policy", nan_policy, NAN_POLICIES)
        defaults: dict[str, Spec] = {
            "categorical": CategoricalSpec(embedding_dim=embedding_dim, oov=oov),
            "numerical": NumericalSpec(
                scaling=scaling, embedding=numerical_embedding, nan_policy=nan_policy
            ),
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
            kind = value_kind(df[name])
            if kind == "datetime":
                raise ShapeError(
                    f"{owner}: column {name!r} holds dates/times; derive numbers or categories "
                    "from it (month, hour, ...) or drop it."
                )
            if kind == "number":
                specs[name] = defaults["numerical"]
            elif looks_multi_label(df[name], separator):
                specs[name] = defaults["multi_label"]
            else:
                specs[name] = defaults["categorical"]
        columns = [fit_column(name, df[name], specs[name]) for name in df.columns if name in specs]
        return cls(columns, check_finite=check_finite)

    # ------------------------------------------------------------------ properties
    @property
    def column_names(self) -> list[Any]:
        """The fitted columns, in output order."""
        return [c.name for c in self.columns]

    @property
    def column_dims(self) -> dict[Any, int]:
        """How many output values each column contributes."""
        return {c.name: c.output_dim for c in self.columns}

    @property
    def output_dim(self) -> int:
        """Size of the row vector: the sum of :attr:`column_dims`."""
        return sum(c.output_dim for c in self.columns)

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
        pd = pandas()
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
            batch[column.name] = self._encode_column(column, df[column.name]).to(device)
        return batch

    def _encode_column(self, column: FittedColumn, series: Any) -> torch.Tensor:
        name = column.name
        got = value_kind(series)
        if isinstance(column, NumericalColumn):
            if got not in ("number", "bool"):
                raise ShapeError(
                    f"Column {name!r} was fitted as numerical but now holds {series.dtype} "
                    "values; convert it with pd.to_numeric."
                )
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
            self._check_numbers(column, values)
            return torch.from_numpy(values.astype(np.float32))
        vocab = self.vocabs[name]
        if isinstance(column, CategoricalColumn):
            fitted = column.value_kind
            # A column with only missing values reads as numbers (NaN): let it through.
            if got != fitted and not (series.isna().all() and len(series)):
                raise ShapeError(
                    f"Column {name!r} was fitted on {fitted} values but now holds {got} values "
                    f"(dtype {series.dtype}); cast it back to the training dtype."
                )
            return torch.from_numpy(encode_column(series, vocab, name))
        rows = split_cells(series, column.separator)
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
    def _check_numbers(column: NumericalColumn, values: np.ndarray) -> None:
        name = column.name
        n_inf = int(np.isinf(values).sum())
        if n_inf:
            raise NonFiniteError(
                f"Numerical column {name!r} holds {n_inf} infinite value(s); replace them."
            )
        if not column.nan_indicator and column.nan_policy == "error":
            n_nan = int(np.isnan(values).sum())
            if n_nan:
                raise NonFiniteError(
                    f"Numerical column {name!r} holds {n_nan} NaN value(s) but was fitted without "
                    f"{_NAN_FIX}"
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
            if not isinstance(column, NumericalColumn):
                owner = f"TabularEmbedding column {column.name!r}"
                ids = check_integer_ids(batch[column.name], owner)
                table = cast(Embedding, embedder)  # categorical and multi-label columns
                check_ids(ids, table.num_embeddings, owner)
        parts: list[torch.Tensor] = []
        for column, embedder in zip(self.columns, self.embedders):
            x = batch[column.name]
            if isinstance(column, NumericalColumn):
                out = self._numerical(column, embedder, x)
                if self.check_finite:
                    self._check_numerical_output(column.name, out[0])
                parts.extend(out)
            else:
                part = embedder(x)
                if self.check_finite:
                    check_output_finite(part, x, f"TabularEmbedding column {column.name!r}")
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
        self, column: NumericalColumn, embedder: nn.Module, x: torch.Tensor
    ) -> list[torch.Tensor]:
        name = column.name
        if x.dim() != 1:
            raise ShapeError(
                f"Numerical column {name!r} must be a (B,) tensor; got shape {tuple(x.shape)}."
            )
        x = x.float()
        nan = torch.isnan(x)
        if bool(torch.isinf(x).any()):
            raise NonFiniteError(f"Numerical column {name!r} holds infinite values; replace them.")
        if not column.nan_indicator and bool(nan.any()):
            if column.nan_policy != "impute" or column.fill is None:
                raise NonFiniteError(
                    f"Numerical column {name!r} holds {int(nan.sum())} NaN value(s) but was "
                    f"fitted without {_NAN_FIX}"
                )
            x = torch.where(nan, torch.full_like(x, column.fill), x)  # the training mean
        scaled = column.scale_values(x)  # minmax clips to [0, 1]; NaN stays NaN
        if column.nan_indicator:
            scaled = torch.where(nan, torch.zeros_like(scaled), scaled)
        out = [embedder(scaled) if column.embedding else scaled.unsqueeze(-1)]  # (B, d)
        if column.nan_indicator:
            out.append(nan.to(scaled.dtype).unsqueeze(-1))  # (B, 1)
        return out

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """The JSON-safe fitted columns (vocabularies and scaler parameters included)."""
        config = {"version": _CONFIG_VERSION, **super().get_config()}
        if config["dtype"] == "float32":
            del config["dtype"]  # float32 layers keep the JSON they had before dtype= existed
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], **extra: Any) -> TabularEmbedding:
        """Rebuild the layer (fresh weights) from :meth:`get_config` output."""
        version = config.get("version")
        if version != _CONFIG_VERSION:
            raise ConfigError(
                f"TabularEmbedding configuration version {version!r} is not supported; this "
                f"synthembed reads version {_CONFIG_VERSION}."
            )
        # check_finite and dtype are absent from configurations saved before they existed.
        return super().from_config({k: v for k, v in config.items() if k != "version"}, **extra)

    def extra_repr(self) -> str:
        kinds = ", ".join(f"{c.name}:{c.kind}" for c in self.columns)
        extra = ", check_finite=True" if self.check_finite else ""
        return f"output_dim={self.output_dim}, columns=[{kinds}]{extra}"
