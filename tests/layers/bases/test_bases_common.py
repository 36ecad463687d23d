"""The behaviour every compressed base shares (layers/bases/_common.py), over the registry."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from synthembed.errors import ConfigError, InvalidIndexError, NonFiniteError, ShapeError
from synthembed.io import load, save
from synthembed.layers.bases import (
    HashEmbedding,
    LowRankEmbedding,
    MixedDimEmbedding,
    QREmbedding,
    make_base,
)
from synthembed.layers.bases._common import grow_table

V, D = 300, 8
NAMES = ["hash", "qr", "dhe", "lowrank", "mixed"]
SMALL: dict[str, dict[str, Any]] = {
    "hash": {"num_buckets": 40, "num_hashes": 3},
    "qr": {"num_collisions": 20},
    "dhe": {"num_hashes": 32, "hidden_dims": (16,)},
    "lowrank": {"rank": 3},
    "mixed": {"num_blocks": 3, "alpha": 0.5},
}
ANY_ID = {"hash", "qr", "dhe"}


def build(name: str, **extra: Any) -> nn.Module:
    torch.manual_seed(0)
    return make_base(name, V, D, **{**SMALL[name], **extra})


# --------------------------------------------------------------------------- shapes and training
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


def test_grow_table_keeps_rows_and_refuses_int8_tables() -> None:
    old = nn.Embedding(4, 3)
    weight, rows = old.weight, old.weight.detach().clone()
    new = grow_table(old, 2)
    # In place: the same module and Parameter, so optimizers built before keep training it.
    assert new is old and new.weight is weight and new.num_embeddings == 6
    assert new.weight.shape == (6, 3) and torch.equal(new.weight[:4], rows)
    with pytest.raises(ConfigError, match=r"Cannot grow an int8-quantized table"):
        grow_table(nn.Linear(3, 3), 2)


def test_compressed_bases_rebuild_from_config_and_reject_unknown_dtypes() -> None:
    for cls, kwargs in [
        (HashEmbedding, {"num_buckets": 5}),
        (QREmbedding, {"num_collisions": 5}),
        (LowRankEmbedding, {"rank": 2}),
        (MixedDimEmbedding, {"num_blocks": 2}),
    ]:
        layer = cls(20, 4, **kwargs)
        assert cls.from_config(layer.get_config()).get_config() == layer.get_config()
        with pytest.raises(ConfigError, match=r"Unknown dtype 'float7' in the "):
            cls.from_config({**layer.get_config(), "dtype": "float7"})


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
    q = QREmbedding(100, 4, num_collisions=10, check_finite=True)
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


def test_compressed_bases_keep_their_config_keys() -> None:
    # The JSON each base writes is what it wrote before config_options (saved files load),
    # plus "fused_optimizer" on the bases with tables (absent in older files: None).
    common = {
        "num_embeddings",
        "embedding_dim",
        "padding_idx",
        "check_finite",
        "dtype",
        "quantized",
    }
    extra = {
        HashEmbedding: {"num_buckets", "num_hashes", "num_weights", "seed", "sparse", "init_std"},
        QREmbedding: {
            "num_collisions",
            "num_partitions",
            "table_sizes",
            "operation",
            "seed",
            "sparse",
            "init_std",
        },
        LowRankEmbedding: {"rank", "sparse", "init_std"},
        MixedDimEmbedding: {
            "alpha",
            "block_sizes",
            "block_dims",
            "sparse",
            "init_std",
            "reordered",
        },
    }
    for cls, keys in extra.items():
        assert set(cls(20, 4).get_config()) == common | keys | {"fused_optimizer"}
        assert cls(20, 4).get_config()["fused_optimizer"] is None
    assert "padding_idx=3" in repr(HashEmbedding(20, 4, 3))
