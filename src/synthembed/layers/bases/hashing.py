"""Stable 64-bit hashing of ids: the primitive under the ``hash``, ``qr`` and ``dhe`` bases.

**Hashing is stable** across processes, machines and releases: splitmix64's
finaliser (a fixed bijective mixing function; Steele, Lea and Flood, "Fast
Splittable Pseudorandom Number Generators", OOPSLA 2014, with the Mix13
constants of Vigna's reference ``splitmix64.c``) computed on int64 tensors with two's-complement wraparound (logical right
shifts emulated with masks), salted per hash function from a ``seed``.
Python's ``hash()`` is never used.
"""

from __future__ import annotations

import torch

from synthembed._validation import check_int

__all__ = ["MASK63", "hash_ids", "mix64", "salted_buckets", "salts"]

_U64 = 1 << 64
MASK63 = (1 << 63) - 1
"""Clears the sign bit of an int64: a hashed word as a non-negative int64."""

_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


def _signed(c: int) -> int:
    """A 64-bit unsigned constant as the int64 with the same bits."""
    c %= _U64
    return c - _U64 if c >= 1 << 63 else c


def _srl(x: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 bits (torch's ``>>`` is arithmetic)."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def mix64(x: torch.Tensor) -> torch.Tensor:
    """splitmix64's finaliser on int64 bits: a fixed bijection of 64-bit words.

    Multiplications and additions wrap modulo 2**64 (two's complement), so the
    result is bit-identical to the unsigned reference on every machine.

    Shape:
        ``(*)`` int64 -> ``(*)`` int64.

    Example:
        >>> mix64(torch.tensor([0, 1])).tolist()
        [0, 6238072747940578789]
    """
    x = x ^ _srl(x, 30)
    x = x * _signed(_M1)
    x = x ^ _srl(x, 27)
    x = x * _signed(_M2)
    return x ^ _srl(x, 31)


def _mix64_int(z: int) -> int:
    """:func:`mix64` on one Python int (unsigned arithmetic)."""
    z %= _U64
    z = ((z ^ (z >> 30)) * _M1) % _U64
    z = ((z ^ (z >> 27)) * _M2) % _U64
    return z ^ (z >> 31)


def salts(seed: int, n: int) -> list[int]:
    """``n`` 64-bit salts from ``seed``: the splitmix64 sequence, as signed ints.

    Example:
        >>> len(salts(0, 3)), salts(0, 2) == salts(0, 3)[:2]
        (3, True)
    """
    state = (seed * _GOLDEN) % _U64
    out = []
    for _ in range(n):
        state = (state + _GOLDEN) % _U64
        out.append(_signed(_mix64_int(state)))
    return out


def salted_buckets(ids: torch.Tensor, salt: int | torch.Tensor, num_buckets: int) -> torch.Tensor:
    """``(mix64(ids + salt) & (2**63 - 1)) % num_buckets``: one salted hash into buckets.

    No argument checks (the callers have checked them): the inner step of
    :func:`hash_ids` and of the hashing bases.

    Shape:
        ``ids`` and ``salt`` broadcast together -> long of their broadcast shape.
    """
    return (mix64(ids + salt) & MASK63) % num_buckets


def hash_ids(ids: torch.Tensor, num_buckets: int, *, seed: int = 0) -> torch.Tensor:
    """Hash int64 ids into ``[0, num_buckets)``, identically on every machine.

    ``bucket = (mix64(id + salt(seed)) & (2**63 - 1)) % num_buckets``.

    Args:
        ids: integer ids of any shape (any int64 value, negatives included).
        num_buckets: number of buckets (>= 1).
        seed: selects an independent hash function.

    Shape:
        ``(*)`` -> ``(*)`` long.

    Example:
        >>> hash_ids(torch.tensor([0, 1, 2**62]), 10, seed=3).shape
        torch.Size([3])
    """
    check_int("hash_ids", "num_buckets", num_buckets, 1)
    check_int("hash_ids", "seed", seed, 0)
    return salted_buckets(ids.long(), salts(seed, 1)[0], num_buckets)
