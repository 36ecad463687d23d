"""Tests for synthembed.layers.tabular_specs: what a user asks of each column."""

from __future__ import annotations

import pytest

from synthembed.errors import ConfigError
from synthembed.layers import tabular
from synthembed.layers.tabular_specs import CategoricalSpec, MultiLabelSpec, NumericalSpec


def test_specs_check_their_arguments() -> None:
    assert CategoricalSpec().embedding_dim == "auto"
    with pytest.raises(ConfigError, match="'embedding_dim' parameter of CategoricalSpec"):
        CategoricalSpec(embedding_dim=0)
    with pytest.raises(ConfigError, match="'scaling' parameter of NumericalSpec"):
        NumericalSpec(scaling="robust")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'sigma' parameter of NumericalSpec"):
        NumericalSpec(sigma=0.0)
    with pytest.raises(ConfigError, match="'separator' parameter of MultiLabelSpec"):
        MultiLabelSpec(separator="")
    with pytest.raises(ConfigError, match="'mode' parameter of MultiLabelSpec"):
        MultiLabelSpec(mode="first")  # type: ignore[arg-type]


def test_old_import_path() -> None:
    assert tabular.CategoricalSpec is CategoricalSpec
    assert tabular.NumericalSpec is NumericalSpec
    assert tabular.MultiLabelSpec is MultiLabelSpec


def test_specs_num_buckets_is_a_deprecated_name_of_num_oov_buckets() -> None:
    import pytest as _pytest

    from synthembed.layers.tabular_specs import CategoricalSpec as C
    from synthembed.layers.tabular_specs import MultiLabelSpec as M

    for cls in (C, M):
        with _pytest.warns(DeprecationWarning, match=r"num_buckets=.*num_oov_buckets="):
            spec = cls(oov="hash", num_buckets=5)
        assert spec.num_oov_buckets == spec.num_buckets == 5
        assert spec == cls(oov="hash", num_oov_buckets=5)
