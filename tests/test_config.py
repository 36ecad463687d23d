"""Tests for synthembed._config: one declaration drives get_config, from_config and extra_repr."""

from __future__ import annotations

import json

import pytest
import torch

import synthembed as se
from synthembed._config import DTYPE, Configurable, Option
from synthembed.errors import ConfigError
from synthembed.vocab import VOCABULARY


class Box(Configurable):
    config_options = (
        Option("size", positional=True),
        Option("label"),
        Option("dtype", codec=DTYPE, show=False),
        Option("frozen", arg="_freeze", get=lambda b: b.is_frozen, show=False),
        Option("vocab", codec=VOCABULARY),
        Option("dims"),
    )

    def __init__(self, size, label=None, dtype=torch.float32, _freeze=False, vocab=None, dims=(1,)):
        self.size, self.label, self.dtype, self.is_frozen = size, label, dtype, _freeze
        self.vocab, self.dims = vocab, tuple(dims)


def test_round_trip_through_json() -> None:
    vocab = se.Vocabulary.build(["a", "b"])
    box = Box(3, label="x", dtype=torch.float64, _freeze=True, vocab=vocab, dims=(2, 3))
    config = json.loads(json.dumps(box.get_config()))
    assert config["dtype"] == "float64" and config["frozen"] is True and config["dims"] == [2, 3]
    again = Box.from_config(config)
    assert (again.size, again.label, again.dtype, again.is_frozen) == (3, "x", torch.float64, True)
    assert again.vocab == vocab and again.dims == (2, 3)


def test_extra_repr_shows_positional_then_non_defaults() -> None:
    assert Box(3).extra_repr() == "3"
    assert Box(3, label="x", dims=(2,)).extra_repr() == "3, label='x', dims=(2,)"
    assert Box(3, dtype=torch.float64, _freeze=True).extra_repr() == "3"  # hidden options


def test_unknown_options_and_bad_values_are_named() -> None:
    with pytest.raises(
        ConfigError, match=r"Unknown option\(s\) \['colour'\] in the Box configuration"
    ):
        Box.from_config({"size": 1, "colour": "red"})
    with pytest.raises(ConfigError, match="Unknown dtype 'float7' in the Box configuration"):
        Box.from_config({"size": 1, "dtype": "float7"})
    with pytest.raises(ConfigError, match="A Box configuration must be a JSON object; got 3"):
        Box.from_config(3)  # type: ignore[arg-type]


def test_layers_declare_their_configuration_once() -> None:
    layer = se.Embedding(7, 2, padding_idx=1, check_finite=True)
    assert repr(layer) == "Embedding(7, 2, padding_idx=1, check_finite=True)"
    assert se.Embedding.from_config(layer.get_config()).get_config() == layer.get_config()
