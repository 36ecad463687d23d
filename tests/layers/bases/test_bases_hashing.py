"""The stable hashing primitive (layers/bases/hashing.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from synthembed.errors import ConfigError
from synthembed.layers.bases import DHEEmbedding, HashEmbedding, QREmbedding
from synthembed.layers.bases.hashing import hash_ids, mix64, salted_buckets, salts


def reference_mix64(x: int) -> int:
    """splitmix64's finaliser on Python ints (unsigned), as published by Vigna."""
    z = x % 2**64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return z ^ (z >> 31)


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


def test_salts_and_salted_buckets_agree_with_hash_ids() -> None:
    ids = torch.tensor([0, 5, 2**62])
    assert salts(7, 3)[:2] == salts(7, 2)
    assert torch.equal(hash_ids(ids, 13, seed=7), salted_buckets(ids, salts(7, 1)[0], 13))


_CHILD = """
import json, sys, torch
from synthembed.layers.bases import HashEmbedding, QREmbedding, DHEEmbedding
ids = torch.tensor(json.loads(sys.argv[1]))
h = HashEmbedding(1000, 4, num_buckets=97, num_hashes=3, seed=5)
q = QREmbedding(1000, 4, num_collisions=31)
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
    q = QREmbedding(1000, 4, num_collisions=31)
    d = DHEEmbedding(1000, 4, num_hashes=8, hidden_dims=(4,), seed=2)
    assert theirs["hash"] == h.buckets(t).tolist()
    assert theirs["rows"] == h.weight_rows(t).tolist()
    assert theirs["qr"] == [x.tolist() for x in q.digits(t)]
    assert theirs["dhe"] == d.encode(t).tolist()
