"""Tests for synthembed.layers.tabular_columns: typed fitted columns and their JSON form."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from synthembed.errors import ConfigError, FileFormatError, NonFiniteError, ShapeError
from synthembed.io import _write, load, save
from synthembed.layers.tabular import TabularEmbedding
from synthembed.layers.tabular_columns import (
    CategoricalColumn,
    MultiLabelColumn,
    NumericalColumn,
    column_from_dict,
    fit_column,
    split_cells,
    value_kind,
)
from synthembed.layers.tabular_specs import CategoricalSpec, MultiLabelSpec, NumericalSpec

# The configuration TabularEmbedding.get_config() gave before columns were typed
# (columns as plain dicts), for the frame in LEGACY_FRAME, as synthembed.save wrote it.
LEGACY_CONFIG: dict[str, Any] = {
    "version": 1,
    "columns": [
        {
            "name": "city",
            "kind": "categorical",
            "value_kind": "text",
            "embedding_dim": 2,
            "vocab": {
                "format": "synthembed.vocabulary",
                "version": 1,
                "specials": ["<unk>", "<missing>"],
                "pad_token": None,
                "unk_token": "<unk>",
                "oov": "unk",
                "num_buckets": 0,
                "tokens": ["a", "b"],
                "counts": [2, 1],
                "checksum": "a380f677b47a875de581aa5c4a1bfc404ecb9a02a092da80a02209504c37a546",
            },
        },
        {
            "name": "age",
            "kind": "numerical",
            "value_kind": "number",
            "scaling": "minmax",
            "shift": 20.0,
            "scale": 20.0,
            "min": 20.0,
            "max": 40.0,
            "nan_indicator": True,
            "embedding": None,
            "embedding_dim": 1,
            "n_frequencies": 16,
            "sigma": 1.0,
            "bins": None,
        },
        {
            "name": "tags",
            "kind": "multi_label",
            "value_kind": "labels",
            "embedding_dim": 2,
            "separator": "|",
            "mode": "mean",
            "vocab": {
                "format": "synthembed.vocabulary",
                "version": 1,
                "specials": ["<pad>", "<unk>"],
                "pad_token": "<pad>",
                "unk_token": "<unk>",
                "oov": "unk",
                "num_buckets": 0,
                "tokens": ["y", "x"],
                "counts": [2, 1],
                "checksum": "8ac3a2dafe6ecd031521999908817efeed5e559c65a2691372f07d03e5b7a83d",
            },
        },
        {
            "name": "n",
            "kind": "numerical",
            "value_kind": "number",
            "scaling": "standard",
            "shift": 2.3333333333333335,
            "scale": 1.247219128924647,
            "min": 1.0,
            "max": 4.0,
            "nan_indicator": False,
            "embedding": "piecewise_linear",
            "embedding_dim": 2,
            "n_frequencies": 16,
            "sigma": 1.0,
            "bins": [-1.0690449676496978, -0.2672612419124245, 1.3363062095621219],
        },
    ],
    "check_finite": False,
}
LEGACY_SHAPES = {
    "embedders.0.weight": (4, 2),
    "embedders.2.weight": (4, 2),
    "embedders.3.linear.weight": (2, 2),
    "embedders.3.linear.bias": (2,),
}
LEGACY_FRAME = {
    "city": ["a", "b", "a"],
    "age": [20.0, None, 40.0],
    "tags": ["x|y", "y", None],
    "n": [1.0, 2.0, 4.0],
}
# layer(layer.encode(LEGACY_FRAME)) computed by the code that wrote the file, with every
# tensor filled with arange(numel) / 10.
LEGACY_OUTPUT = [
    [0.4, 0.5, 0.0, 0.0, 0.5, 0.6, 0.0, 0.1],
    [0.6, 0.7, 0.0, 1.0, 0.4, 0.5, 3.7170024835830873e-09, 0.3],
    [0.4, 0.5, 1.0, 0.0, 0.0, 0.0, 0.10000001639127731, 0.6000000834465027],
]


def _legacy_tensors() -> dict[str, torch.Tensor]:
    return {
        name: torch.arange(int(np.prod(shape)), dtype=torch.float32).reshape(shape) / 10
        for name, shape in LEGACY_SHAPES.items()
    }


def test_file_saved_with_dict_columns_still_loads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "legacy.safetensors"
    _write(path, _legacy_tensors(), {"class": "TabularEmbedding", "config": LEGACY_CONFIG})
    layer = load(path)
    assert isinstance(layer, TabularEmbedding)
    assert [type(c) for c in layer.columns] == [
        CategoricalColumn,
        NumericalColumn,
        MultiLabelColumn,
        NumericalColumn,
    ]
    assert layer.get_config() == LEGACY_CONFIG  # the JSON form is unchanged
    out = layer(layer.encode(pd.DataFrame(LEGACY_FRAME)))
    torch.testing.assert_close(out, torch.tensor(LEGACY_OUTPUT), rtol=0, atol=1e-6)
    # ... and saving it again writes the same configuration.
    again = tmp_path / "again.safetensors"
    save(layer, again)
    assert load(again).get_config() == LEGACY_CONFIG


def test_tampered_legacy_column_is_a_file_format_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = {**LEGACY_CONFIG, "columns": [dict(LEGACY_CONFIG["columns"][1], kind="blob")]}
    path = tmp_path / "bad.safetensors"
    _write(path, {}, {"class": "TabularEmbedding", "config": config})
    with pytest.raises(FileFormatError, match="column kind"):
        load(path)
    config = {**LEGACY_CONFIG, "columns": [{"name": "age", "kind": "numerical"}]}
    _write(path, {}, {"class": "TabularEmbedding", "config": config})
    with pytest.raises(FileFormatError, match="invalid TabularEmbedding configuration"):
        load(path)


def test_columns_are_typed_and_round_trip_through_dicts() -> None:
    frame = pd.DataFrame(LEGACY_FRAME)
    layer = TabularEmbedding.from_frame(frame, embedding_dim=2)
    for column in layer.columns:
        assert column_from_dict(column.to_dict()) == column
        assert column_from_dict(column) is column
        with pytest.raises(dataclasses.FrozenInstanceError):
            column.name = "other"  # type: ignore[misc]
    age = layer.columns[1]
    assert isinstance(age, NumericalColumn)
    assert (age.shift, age.scale, age.nan_indicator, age.output_dim) == (20.0, 20.0, True, 2)
    # a layer built from typed columns equals one built from their dicts
    twin = TabularEmbedding(layer.columns)
    assert twin.get_config() == TabularEmbedding(layer.get_config()["columns"]).get_config()


def test_dict_access_still_works_with_a_deprecation_warning() -> None:
    layer = TabularEmbedding.from_frame(pd.DataFrame(LEGACY_FRAME), embedding_dim=2)
    with pytest.warns(DeprecationWarning, match=r"use column.kind instead of column\['kind'\]"):
        assert layer.columns[0]["kind"] == "categorical"
    with pytest.warns(DeprecationWarning):
        assert layer.columns[1]["shift"] == 20.0


def test_fit_column_kinds_and_scalings() -> None:
    series = pd.Series([1.0, 3.0, np.nan])
    minmax = fit_column("x", series, NumericalSpec())
    assert isinstance(minmax, NumericalColumn)
    assert (minmax.shift, minmax.scale, minmax.nan_indicator) == (1.0, 2.0, True)
    assert minmax.scale_values(torch.tensor([0.0, 2.0, 9.0])).tolist() == [0.0, 0.5, 1.0]
    standard = fit_column("x", series, NumericalSpec(scaling="standard"))
    assert isinstance(standard, NumericalColumn)
    assert (standard.shift, standard.scale) == (2.0, 1.0)
    assert standard.scale_values(torch.tensor([5.0])).tolist() == [3.0]  # not clipped
    constant = fit_column("c", pd.Series([4.0, 4.0]), NumericalSpec(embedding="piecewise_linear"))
    assert isinstance(constant, NumericalColumn) and constant.scale == 1.0
    assert constant.bins == (0.0, 1.0)
    cat = fit_column("c", pd.Series(["u", "v", "u"]), CategoricalSpec(embedding_dim=3))
    assert isinstance(cat, CategoricalColumn) and cat.vocab.tokens == ["u", "v"]
    tags = fit_column("t", pd.Series(["a|b", None]), MultiLabelSpec(embedding_dim=2, mode="sum"))
    assert isinstance(tags, MultiLabelColumn) and (tags.mode, tags.separator) == ("sum", "|")


def test_fit_column_errors_name_the_column() -> None:
    with pytest.raises(ShapeError, match="Column 'w' is numerical but holds "):
        fit_column("w", pd.Series(["a", "b"]), NumericalSpec())
    with pytest.raises(NonFiniteError, match="'w' holds 1 infinite"):
        fit_column("w", pd.Series([1.0, np.inf]), NumericalSpec())
    with pytest.raises(ShapeError, match="'w' has no finite value"):
        fit_column("w", pd.Series([np.nan, np.nan]), NumericalSpec())
    with pytest.raises(ConfigError, match=r"finite, nonzero scale; got 0\.0"):
        NumericalColumn("w", "minmax", 0.0, 0.0, 0.0, 0.0, False)
    with pytest.raises(ConfigError, match="fitted column or its dict form; got int"):
        column_from_dict(3)  # type: ignore[arg-type]


def test_reading_cells() -> None:
    assert split_cells(pd.Series(["a|b", None, ["c", None], "d"]), "|") == [
        ["a", "b"],
        [],
        ["c"],
        ["d"],
    ]
    assert [value_kind(pd.Series(v)) for v in ([True], [1.5], ["x"])] == [
        "bool",
        "number",
        "text",
    ]
