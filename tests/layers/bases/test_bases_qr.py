"""The 'qr' base (layers/bases/qr.py): Shi et al., KDD 2020."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from synthembed.errors import ConfigError
from synthembed.io import load, save
from synthembed.layers.bases.qr import QREmbedding, qr_partition_sizes


@pytest.mark.parametrize(
    ("v", "n", "m", "expected"),
    [
        (1000, 2, 10, [10, 100]),
        (1000, 2, None, [32, 32]),
        (1000, 3, None, [10, 10, 10]),
        (10**8, 2, 10**4, [10**4, 10**4]),
    ],
)
def test_qr_partition_sizes(v: int, n: int, m: int | None, expected: list[int]) -> None:
    assert qr_partition_sizes(v, n, m) == expected


@pytest.mark.parametrize("n", [2, 3])
def test_qr_partitions_are_complementary(n: int) -> None:
    q = QREmbedding(1000, 4, num_partitions=n)
    digits = torch.stack(q.digits(torch.arange(1000)), dim=1)
    assert len({tuple(r) for r in digits.tolist()}) == 1000
    for j, size in enumerate(q.sizes):
        assert int(digits[:, j].max()) < size
    assert len({tuple(r) for r in q(torch.arange(1000)).tolist()}) == 1000


def test_qr_two_partitions_are_remainder_and_quotient() -> None:
    q = QREmbedding(1000, 4, num_collisions=10)
    r, quo = q.digits(torch.tensor([0, 9, 10, 999]))
    assert r.tolist() == [0, 9, 0, 9] and quo.tolist() == [0, 0, 1, 99]


def test_qr_ids_beyond_capacity_are_hashed_into_range() -> None:
    q = QREmbedding(100, 4, num_collisions=10)
    ids = torch.tensor([100, 200, 10**18, 2**63 - 1])
    digits = q.digits(ids)
    assert all(int(d.max()) < s for d, s in zip(digits, q.sizes))
    # Plain mixed radix would alias 100 and 200 onto id 0; the hash spreads them.
    assert len({tuple(int(d[i]) for d in digits) for i in range(4)}) == 4


@pytest.mark.parametrize("operation", ["product", "sum", "concat"])
def test_qr_operations(operation: str) -> None:
    q = QREmbedding(100, 7, num_collisions=10, operation=operation)  # type: ignore[arg-type]
    ids = torch.tensor([13])
    a, b = (t.weight[d] for t, d in zip(q.tables, q.digits(ids)))
    if operation == "product":
        expected = a * b
    elif operation == "sum":
        expected = a + b
    else:
        expected = torch.cat([a, b], -1)
    torch.testing.assert_close(q(ids), expected)
    if operation == "concat":
        assert q.dims == [4, 3]


def test_qr_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"'num_collisions' parameter of QREmbedding .* Got 0"):
        QREmbedding(100, 4, num_collisions=0)
    with pytest.raises(ConfigError, match=r"'num_partitions' .* \[2, inf\). Got 1"):
        QREmbedding(100, 4, num_partitions=1)
    with pytest.raises(ConfigError, match=r"'operation' .* 'product', 'sum', 'concat'. Got 'mult'"):
        QREmbedding(100, 4, operation="mult")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"embedding_dim must be >= num_partitions"):
        QREmbedding(100, 2, num_partitions=3, operation="concat")
    with pytest.raises(ConfigError, match=r"'table_sizes' .* at least 2 .* Got \[5\]"):
        QREmbedding(100, 4, table_sizes=[5])
    with pytest.raises(ConfigError, match=r"'table_sizes\[i\]' .* Got 0"):
        QREmbedding(100, 4, table_sizes=[5, 0])
    with pytest.raises(ConfigError, match=r"num_partitions=2 but 3 table_sizes \[2, 3, 4\]"):
        QREmbedding(100, 4, num_partitions=2, table_sizes=[2, 3, 4])
    with pytest.raises(ConfigError, match=r"num_collisions=7 but table_sizes\[0\]=5"):
        QREmbedding(100, 4, num_collisions=7, table_sizes=[5, 20])


def test_qr_explicit_table_sizes() -> None:
    q = QREmbedding(100, 4, table_sizes=[3, 5, 7])
    assert q.sizes == [3, 5, 7] and q.num_partitions == 3 and q.capacity == 105
    assert [t.num_embeddings for t in q.tables] == [3, 5, 7]
    assert q.get_config()["table_sizes"] == [3, 5, 7]


@pytest.mark.parametrize("operation", ["product", "concat"])
@pytest.mark.parametrize("grow_by", [1, 7, 500])
def test_grown_qr_round_trips_bit_exact(operation: str, grow_by: int, tmp_path: Any) -> None:
    # Growing changes num_embeddings, not the tables: the rebuilt layer must not re-derive
    # its sizes from the new num_embeddings (it used to: "Saved table sizes [6, 5] do not
    # match [6, 6]").
    torch.manual_seed(0)
    q = QREmbedding(30, 4, num_collisions=6, operation=operation)  # type: ignore[arg-type]
    sizes = list(q.sizes)
    new = q.grow(grow_by)
    assert q.sizes == sizes and qr_partition_sizes(q.num_embeddings, 2, 6) != sizes
    rebuilt = QREmbedding.from_config(q.get_config())
    assert rebuilt.sizes == sizes and rebuilt.get_config() == q.get_config()
    save(q, tmp_path / "q.safetensors")
    loaded = load(tmp_path / "q.safetensors")
    assert loaded.num_embeddings == 30 + grow_by and loaded.sizes == sizes
    ids = torch.cat([torch.arange(30), new, torch.tensor([2**63 - 1])])
    assert torch.equal(loaded(ids), q(ids))


def test_qr_reads_configs_saved_with_private_sizes() -> None:
    # Files written before table_sizes existed recorded the sizes as "_sizes".
    cfg = QREmbedding(30, 4, num_collisions=6).get_config()
    cfg["_sizes"] = cfg.pop("table_sizes")
    assert QREmbedding.from_config(cfg).sizes == [6, 5]


def test_qr_num_buckets_is_a_deprecated_name_of_num_collisions() -> None:
    with pytest.warns(DeprecationWarning, match=r"num_buckets=.*num_collisions="):
        old = QREmbedding(100, 4, num_buckets=10)
    assert old.num_collisions == 10 and old.num_buckets == 10
    assert old.get_config() == QREmbedding(100, 4, num_collisions=10).get_config()


def test_qr_reads_configs_saved_with_num_buckets() -> None:
    cfg = QREmbedding(30, 4, num_collisions=6).get_config()
    cfg["num_buckets"] = cfg.pop("num_collisions")
    assert QREmbedding.from_config(cfg).num_collisions == 6
