"""Compressed bases: hash, qr, dhe, lowrank, mixed."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import torch
from torch import nn

from synthembed.errors import ConfigError, InvalidIndexError, NonFiniteError, ShapeError
from synthembed.io import load, save
from synthembed.layers.bases import BASES, make_base
from synthembed.layers.compressed import (
    DHEEmbedding,
    HashEmbedding,
    LowRankEmbedding,
    MixedDimEmbedding,
    QREmbedding,
    hash_ids,
    mix64,
    qr_partition_sizes,
)

V, D = 300, 8
NAMES = ["hash", "qr", "dhe", "lowrank", "mixed"]
SMALL: dict[str, dict[str, Any]] = {
    "hash": {"num_buckets": 40, "num_hashes": 3},
    "qr": {"num_buckets": 20},
    "dhe": {"num_hashes": 32, "hidden_dims": (16,)},
    "lowrank": {"rank": 3},
    "mixed": {"num_blocks": 3, "alpha": 0.5},
}
ANY_ID = {"hash", "qr", "dhe"}


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    """Tiny tensors: one intra-op thread avoids oversubscribing the 2 shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def build(name: str, **extra: Any) -> nn.Module:
    torch.manual_seed(0)
    return make_base(name, V, D, **{**SMALL[name], **extra})


def reference_mix64(x: int) -> int:
    """splitmix64's finaliser on Python ints (unsigned), as published by Vigna."""
    z = x % 2**64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return z ^ (z >> 31)


# --------------------------------------------------------------------------- registry and shapes
def test_all_compressed_bases_are_registered() -> None:
    assert {"full", *NAMES} <= set(BASES)


@pytest.mark.parametrize("name", NAMES)
def test_output_shape_and_dtype(name: str) -> None:
    base = build(name)
    ids = torch.tensor([[0, 1, 2], [V - 1, 7, 7]])
    out = base(ids)
    assert out.shape == (2, 3, D)
    assert out.dtype == torch.float32
    assert torch.equal(out[1, 1], out[1, 2])  # same id, same vector
    assert not torch.equal(out[0, 0], out[0, 1])
    assert base(torch.tensor(5)).shape == (D,)
    assert base(torch.zeros(0, 4, dtype=torch.long)).shape == (0, 4, D)
    assert base(ids.int()).shape == (2, 3, D)  # int32 ids are widened


@pytest.mark.parametrize("name", NAMES)
def test_gradient_reaches_every_parameter_and_training_fits(name: str) -> None:
    base = build(name)
    ids = torch.arange(V)
    base(ids).pow(2).sum().backward()
    for pname, p in base.named_parameters():
        assert p.grad is not None and bool(p.grad.abs().sum() > 0), pname
    # A few plain gradient steps fit a random target better than at the start.
    target = torch.randn(V, D, generator=torch.Generator().manual_seed(1))
    params = [p for p in base.parameters()]
    losses = []
    for _ in range(30):
        for p in params:
            p.grad = None
        loss = (base(ids) - target).pow(2).sum(-1).mean()
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= 0.2 * p.grad  # type: ignore[operator]
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.9 * losses[0]


@pytest.mark.parametrize("name", NAMES)
def test_padding_idx_outputs_zero_and_gets_no_gradient(name: str) -> None:
    base = build(name, padding_idx=3)
    out = base(torch.tensor([3, 3]))
    assert torch.equal(out, torch.zeros(2, D))
    out.sum().backward()
    for p in base.parameters():
        assert p.grad is None or bool((p.grad == 0).all())
    assert bool(base(torch.tensor([4])).abs().sum() > 0)
    assert build(name, padding_idx=-1).padding_idx == V - 1


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip_is_bit_exact(name: str, tmp_path: Any) -> None:
    base = build(name, padding_idx=0)
    path = tmp_path / f"{name}.safetensors"
    save(base, path)
    loaded = load(path)
    assert type(loaded) is type(base)
    assert loaded.get_config() == base.get_config()
    ids = torch.tensor([[0, 5, V - 1], [17, 2, 299]])
    assert torch.equal(loaded(ids), base(ids))
    if name in ANY_ID:
        big = torch.tensor([2**63 - 1, 10**15])
        assert torch.equal(loaded(big), base(big))


def test_mixed_with_counts_saves_its_rank_buffer(tmp_path: Any) -> None:
    counts = torch.rand(V, generator=torch.Generator().manual_seed(3)) * 100
    base = MixedDimEmbedding(V, D, counts=counts, num_blocks=3)
    assert base.rank_of is not None
    save(base, tmp_path / "m.safetensors")
    loaded = load(tmp_path / "m.safetensors")
    ids = torch.arange(V)
    assert torch.equal(loaded(ids), base(ids))


@pytest.mark.parametrize("name", NAMES)
def test_grow_returns_new_ids_and_keeps_old_vectors(name: str) -> None:
    base = build(name)
    old_ids = torch.arange(V)
    before = base(old_ids).detach()
    new = base.grow(5)
    assert new.tolist() == list(range(V, V + 5))
    assert base.num_embeddings == V + 5
    assert torch.equal(base(old_ids), before)
    assert base(new).shape == (5, D)
    assert base.get_config()["num_embeddings"] == V + 5


def test_grow_extends_per_id_tables() -> None:
    h = HashEmbedding(10, 4, num_buckets=5)
    h.grow(3)
    assert h.importance.num_embeddings == 13
    lr = LowRankEmbedding(10, 4, rank=2)
    lr.grow(3)
    assert lr.factor.num_embeddings == 13
    m = MixedDimEmbedding(10, 4, num_blocks=2)
    m.grow(3)
    assert sum(m.block_sizes) == 13 and m.tables[-1].num_embeddings == m.block_sizes[-1]
    with pytest.raises(ConfigError, match=r"'n' parameter of HashEmbedding.grow"):
        h.grow(-1)


# --------------------------------------------------------------------------- ids
@pytest.mark.parametrize("name", sorted(ANY_ID))
def test_hashing_bases_take_any_64_bit_id(name: str) -> None:
    base = build(name)
    ids = torch.tensor([V, 10**12, 2**62 + 7, 2**63 - 1])
    out = base(ids)
    assert out.shape == (4, D) and bool(torch.isfinite(out).all())
    assert len({tuple(r) for r in out.tolist()}) == 4


@pytest.mark.parametrize("name", ["lowrank", "mixed"])
def test_table_bases_reject_ids_out_of_range(name: str) -> None:
    base = build(name)
    with pytest.raises(InvalidIndexError, match=rf"valid range \[0, {V - 1}\].*largest {V + 2}"):
        base(torch.tensor([1, V + 2]))


@pytest.mark.parametrize("name", NAMES)
def test_negative_ids_are_rejected(name: str) -> None:
    base = build(name)
    with pytest.raises(
        InvalidIndexError, match=r"smallest offending id -4.*map unknown values to an id first"
    ) as info:
        base(torch.tensor([3, -4, -1]))
    if name in ANY_ID:  # the shared wording of check_nonnegative_ids: any 64-bit id is valid
        expected = (
            rf"^{type(base).__name__} got 2 negative id\(s\) \(smallest offending id -4\); "
            r"ids must be integers in \[0, 9223372036854775807\] \(this layer hashes them"
        )
        assert info.match(expected)
    else:  # table bases check the range like Embedding
        assert info.match(r"outside the valid range \[0, 299\].*negative ids are never valid")


@pytest.mark.parametrize("name", NAMES)
def test_non_integer_ids_are_rejected(name: str) -> None:
    base = build(name)
    with pytest.raises(ShapeError, match=r"dtype torch.float32; ids must be integers"):
        base(torch.tensor([1.0, 2.0]))
    with pytest.raises(ShapeError, match=r"boolean tensor"):
        base(torch.tensor([True]))


# --------------------------------------------------------------------------- hashing
def test_mix64_matches_the_unsigned_reference() -> None:
    gen = torch.Generator().manual_seed(0)
    xs = torch.randint(-(2**63), 2**63 - 1, (200,), generator=gen, dtype=torch.long)
    xs = torch.cat([xs, torch.tensor([0, 1, -1, 2**63 - 1, -(2**63)])])
    got = mix64(xs).tolist()
    for x, g in zip(xs.tolist(), got):
        assert g % 2**64 == reference_mix64(x)


def test_hash_ids_range_and_spread() -> None:
    ids = torch.arange(100_000)
    b = hash_ids(ids, 1000, seed=1)
    assert int(b.min()) >= 0 and int(b.max()) < 1000
    counts = torch.bincount(b, minlength=1000)
    assert int(counts.min()) > 50 and int(counts.max()) < 150  # mean 100
    assert not torch.equal(b, hash_ids(ids, 1000, seed=2))
    with pytest.raises(ConfigError, match=r"'num_buckets' parameter of hash_ids"):
        hash_ids(ids, 0)


_CHILD = """
import json, sys, torch
from synthembed.layers.compressed import HashEmbedding, QREmbedding, DHEEmbedding
ids = torch.tensor(json.loads(sys.argv[1]))
h = HashEmbedding(1000, 4, num_buckets=97, num_hashes=3, seed=5)
q = QREmbedding(1000, 4, num_buckets=31)
d = DHEEmbedding(1000, 4, num_hashes=8, hidden_dims=(4,), seed=2)
print(json.dumps({
    "hash": h.buckets(ids).tolist(),
    "rows": h.weight_rows(ids).tolist(),
    "qr": [t.tolist() for t in q.digits(ids)],
    "dhe": d.encode(ids).tolist(),
}))
"""


def test_hashing_is_identical_in_another_process() -> None:
    ids = [0, 1, 999, 1000, 123456789, 2**40 + 3, 2**63 - 1]
    env = {"PYTHONHASHSEED": "12345", "PATH": ""}
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(ids)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=120,
    )
    theirs = json.loads(child.stdout)
    t = torch.tensor(ids)
    h = HashEmbedding(1000, 4, num_buckets=97, num_hashes=3, seed=5)
    q = QREmbedding(1000, 4, num_buckets=31)
    d = DHEEmbedding(1000, 4, num_hashes=8, hidden_dims=(4,), seed=2)
    assert theirs["hash"] == h.buckets(t).tolist()
    assert theirs["rows"] == h.weight_rows(t).tolist()
    assert theirs["qr"] == [x.tolist() for x in q.digits(t)]
    assert theirs["dhe"] == d.encode(t).tolist()


# --------------------------------------------------------------------------- hash embedding
def test_hash_importance_rows_direct_then_hashed() -> None:
    h = HashEmbedding(100, 4, num_buckets=10)
    ids = torch.tensor([0, 99, 100, 2**50])
    rows = h.weight_rows(ids)
    assert rows[:2].tolist() == [0, 99]
    assert all(0 <= r < 100 for r in rows.tolist())
    small = HashEmbedding(100, 4, num_buckets=10, num_weights=16)
    assert small.importance.weight.shape == (16, 2)
    rows = small.weight_rows(torch.arange(100))
    assert int(rows.max()) < 16 and len(set(rows.tolist())) == 16  # all ids hashed


def test_hash_buckets_are_k_independent_rows_and_default_pool() -> None:
    h = HashEmbedding(16_000, 4, num_hashes=3)
    assert h.num_buckets == 1000  # ceil(V / 16)
    b = h.buckets(torch.arange(5000))
    assert b.shape == (5000, 3) and int(b.max()) < 1000
    # Two ids collide on every one of k hashes far less often than on one.
    full = len({tuple(r) for r in b.tolist()})
    assert full == 5000


def test_hash_output_is_importance_weighted_sum_of_pool_rows() -> None:
    h = HashEmbedding(50, 6, num_buckets=7, num_hashes=2)
    ids = torch.tensor([3, 41])
    b, p = h.buckets(ids), h.importance.weight[ids]
    expected = (h.pool.weight[b] * p.unsqueeze(-1)).sum(1)
    torch.testing.assert_close(h(ids), expected)


def test_hash_sparse_gradients() -> None:
    h = HashEmbedding(50, 6, num_buckets=7, sparse=True)
    h(torch.tensor([1, 2])).sum().backward()
    assert h.pool.weight.grad is not None and h.pool.weight.grad.is_sparse
    assert h.importance.weight.grad is not None and h.importance.weight.grad.is_sparse


def test_hash_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"'num_buckets' parameter of HashEmbedding .* Got 0"):
        HashEmbedding(100, 4, num_buckets=0)
    with pytest.raises(
        ConfigError,
        match=r"'num_hashes' parameter of HashEmbedding must be <= num_buckets=4.*Got 5",
    ):
        HashEmbedding(100, 4, num_buckets=4, num_hashes=5)
    with pytest.raises(ConfigError, match=r"'num_hashes' .* Got 0"):
        HashEmbedding(100, 4, num_hashes=0)
    with pytest.raises(ConfigError, match=r"'embedding_dim' .* Got 0"):
        HashEmbedding(100, 0)
    with pytest.raises(ConfigError, match=r"'num_embeddings' .* Got 0"):
        HashEmbedding(0, 4)
    with pytest.raises(ConfigError, match=r"'padding_idx' .* Got 100"):
        HashEmbedding(100, 4, padding_idx=100)
    with pytest.raises(ConfigError, match=r"'init_std'"):
        HashEmbedding(100, 4, init_std=0.0)


# --------------------------------------------------------------------------- quotient-remainder
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
    q = QREmbedding(1000, 4, num_buckets=10)
    r, quo = q.digits(torch.tensor([0, 9, 10, 999]))
    assert r.tolist() == [0, 9, 0, 9] and quo.tolist() == [0, 0, 1, 99]


def test_qr_ids_beyond_capacity_are_hashed_into_range() -> None:
    q = QREmbedding(100, 4, num_buckets=10)
    ids = torch.tensor([100, 200, 10**18, 2**63 - 1])
    digits = q.digits(ids)
    assert all(int(d.max()) < s for d, s in zip(digits, q.sizes))
    # Plain mixed radix would alias 100 and 200 onto id 0; the hash spreads them.
    assert len({tuple(int(d[i]) for d in digits) for i in range(4)}) == 4


@pytest.mark.parametrize("operation", ["product", "sum", "concat"])
def test_qr_operations(operation: str) -> None:
    q = QREmbedding(100, 7, num_buckets=10, operation=operation)  # type: ignore[arg-type]
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
    with pytest.raises(ConfigError, match=r"'num_buckets' parameter of QREmbedding .* Got 0"):
        QREmbedding(100, 4, num_buckets=0)
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
    with pytest.raises(ConfigError, match=r"num_buckets=7 but table_sizes\[0\]=5"):
        QREmbedding(100, 4, num_buckets=7, table_sizes=[5, 20])


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
    q = QREmbedding(30, 4, num_buckets=6, operation=operation)  # type: ignore[arg-type]
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
    cfg = QREmbedding(30, 4, num_buckets=6).get_config()
    cfg["_sizes"] = cfg.pop("table_sizes")
    assert QREmbedding.from_config(cfg).sizes == [6, 5]


# --------------------------------------------------------------------------- deep hash embedding
def test_dhe_codes_are_normalised() -> None:
    ids = torch.arange(2000)
    uni = DHEEmbedding(10, 4, num_hashes=64, hidden_dims=(8,)).encode(ids)
    assert uni.shape == (2000, 64)
    assert float(uni.min()) >= -1.0 and float(uni.max()) <= 1.0
    assert abs(float(uni.mean())) < 0.02
    gauss = DHEEmbedding(10, 4, num_hashes=64, hidden_dims=(8,), distribution="gaussian").encode(
        ids
    )
    assert abs(float(gauss.mean())) < 0.02 and abs(float(gauss.std()) - 1.0) < 0.02


def test_dhe_has_no_table_and_chunks_codes() -> None:
    d = DHEEmbedding(10**12, 4, num_hashes=16, hidden_dims=(8, 8))
    assert sum(p.numel() for p in d.parameters()) == 16 * 8 + 8 + 8 * 8 + 8 + 8 * 4 + 4
    d._CHUNK_ELEMENTS = 16 * 3  # 3 rows per chunk
    ids = torch.arange(10)
    chunked = d.encode(ids)
    d._CHUNK_ELEMENTS = 1 << 22
    assert torch.equal(chunked, d.encode(ids))


def test_dhe_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"num_hashes must be even. Got 3"):
        DHEEmbedding(10, 4, num_hashes=3, distribution="gaussian")
    with pytest.raises(ConfigError, match=r"'hidden_dims\[i\]' .* Got 0"):
        DHEEmbedding(10, 4, hidden_dims=(8, 0))
    with pytest.raises(ConfigError, match=r"'hash_range' .* Got 1"):
        DHEEmbedding(10, 4, hash_range=1)


# --------------------------------------------------------------------------- low rank and mixed
def test_lowrank_is_a_product_of_factors() -> None:
    lr = LowRankEmbedding(20, 6, rank=2)
    ids = torch.tensor([4, 11])
    torch.testing.assert_close(lr(ids), lr.factor.weight[ids] @ lr.projection.weight.T)
    assert LowRankEmbedding(20, 64).rank == 8
    with pytest.raises(
        ConfigError, match=r"'rank' parameter of LowRankEmbedding .* \[1, 6\]. Got 7"
    ):
        LowRankEmbedding(20, 6, rank=7)


def test_mixed_frequent_ids_get_the_widest_rows() -> None:
    counts = [1.0] * 100
    counts[57] = 1000.0
    m = MixedDimEmbedding(100, 16, counts=counts, num_blocks=3, alpha=1.0)
    assert m.block_dims[0] == 16 and m.block_dims[-1] < 16
    assert int(m.rank_of[57]) == 0  # type: ignore[index]
    # The most frequent id is served by block 0 (no projection): its row as is.
    torch.testing.assert_close(m(torch.tensor([57]))[0], m.tables[0].weight[0])
    flat = MixedDimEmbedding(100, 16, num_blocks=3, alpha=0.0)
    assert flat.block_dims == [16, 16, 16] and flat.rank_of is None


def test_mixed_explicit_blocks_and_order() -> None:
    order = list(reversed(range(10)))
    m = MixedDimEmbedding(10, 4, order=order, block_sizes=[2, 8], block_dims=[4, 1])
    assert [t.weight.shape for t in m.tables] == [(2, 4), (8, 1)]
    torch.testing.assert_close(m(torch.tensor([9]))[0], m.tables[0].weight[0])


def test_mixed_config_errors() -> None:
    with pytest.raises(ShapeError, match=r"counts must have num_embeddings=10 entries; got 3"):
        MixedDimEmbedding(10, 4, counts=[1, 2, 3])
    with pytest.raises(ConfigError, match=r"finite and non-negative"):
        MixedDimEmbedding(3, 4, counts=[1, -2, 3])
    with pytest.raises(ConfigError, match=r"permutation of range\(3\)"):
        MixedDimEmbedding(3, 4, order=[0, 0, 1])
    with pytest.raises(ConfigError, match=r"counts= or order=, not both"):
        MixedDimEmbedding(3, 4, counts=[1, 2, 3], order=[0, 1, 2])
    with pytest.raises(ConfigError, match=r"block_sizes must sum to num_embeddings=10; got 9"):
        MixedDimEmbedding(10, 4, block_sizes=[4, 5])
    with pytest.raises(ConfigError, match=r"'block_dims\[i\]' .* \[1, 4\]. Got 5"):
        MixedDimEmbedding(10, 4, block_sizes=[4, 6], block_dims=[5, 1])
    with pytest.raises(ConfigError, match=r"'num_blocks' .* \[1, 3\]. Got 4"):
        MixedDimEmbedding(3, 4, num_blocks=4)


# --------------------------------------------------------------------------- check_finite
def _poison(base: nn.Module) -> None:
    """Every floating parameter NaN: every output row is NaN."""
    with torch.no_grad():
        for p in base.parameters():
            p.fill_(float("nan"))


@pytest.mark.parametrize("name", NAMES)
def test_check_finite_names_the_layer_and_the_ids(name: str) -> None:
    base = build(name, check_finite=True)
    assert base.check_finite and base.get_config()["check_finite"] is True
    assert "check_finite=True" in repr(base)
    ids = torch.tensor([[7, 2], [7, 9]])
    finite = base(ids)  # a healthy layer passes
    assert bool(torch.isfinite(finite).all())
    _poison(base)
    cls = type(base).__name__
    with pytest.raises(NonFiniteError, match=rf"^{cls} produced NaN/inf from ids \[2, 7, 9\]\."):
        base(ids)
    silent = build(name)  # off by default: NaN flows through
    assert silent.check_finite is False
    _poison(silent)
    assert bool(torch.isnan(silent(ids)).all())


def test_check_finite_names_only_the_ids_at_fault() -> None:
    lr = LowRankEmbedding(V, D, rank=2, check_finite=True)
    with torch.no_grad():
        lr.factor.weight[5, 0] = float("inf")
    with pytest.raises(NonFiniteError, match=r"LowRankEmbedding produced NaN/inf from ids \[5\]"):
        lr(torch.tensor([1, 5, 6, 5]))
    q = QREmbedding(100, 4, num_buckets=10, check_finite=True)
    with torch.no_grad():
        q.tables[0].weight[3] = float("nan")  # the remainder row of ids 3, 13, 23, ...
    with pytest.raises(NonFiniteError, match=r"from ids \[3, 43\]\. Lower the learning rate"):
        q(torch.tensor([3, 4, 43, 44]))


@pytest.mark.parametrize("name", NAMES)
def test_check_finite_survives_save_and_load(name: str, tmp_path: Any) -> None:
    base = build(name, check_finite=True)
    save(base, tmp_path / "b.safetensors")
    loaded = load(tmp_path / "b.safetensors")
    assert loaded.check_finite is True
    _poison(loaded)
    with pytest.raises(NonFiniteError, match=r"produced NaN/inf from ids \[1\]"):
        loaded(torch.tensor([1]))
