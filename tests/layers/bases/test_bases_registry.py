"""The base registry (layers/bases/registry.py) and the 'full' base (layers/bases/full.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from torch import nn

import synthembed.layers.bases.registry as registry
from synthembed.errors import ConfigError
from synthembed.layers.bases import BASES, base_names, get_base, make_base, register_base
from synthembed.layers.embedding import Embedding

NAMES = ["hash", "qr", "dhe", "lowrank", "mixed"]


def test_all_compressed_bases_are_registered() -> None:
    assert {"full", *NAMES} <= set(BASES)


def test_full_base_is_the_plain_embedding() -> None:
    assert get_base("full") is Embedding
    assert type(make_base("full", 10, 4)) is Embedding


def test_base_names_are_the_sorted_registered_names() -> None:
    assert base_names() == sorted(BASES)


def test_unknown_base_lists_the_registered_names() -> None:
    with pytest.raises(ConfigError, match=r"Unknown base 'nope'; registered bases are \[.*'qr'"):
        make_base("nope", 10, 4)
    with pytest.raises(ConfigError, match=r"@register_base\(name\)"):
        get_base("nope")


def test_register_base_adds_a_factory() -> None:
    @register_base("_test_linear")
    def linear(num_embeddings: int, embedding_dim: int) -> nn.Module:
        return nn.Linear(num_embeddings, embedding_dim)

    try:
        assert isinstance(make_base("_test_linear", 3, 2), nn.Linear)
    finally:
        del BASES["_test_linear"]


def test_registry_imports_no_base() -> None:
    tree = ast.parse(Path(registry.__file__).read_text(encoding="utf-8"))
    imported = [
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    ] + [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    assert not [m for m in imported if m.startswith("synthembed.layers")], imported
