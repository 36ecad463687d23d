"""SyntheticEnsemble: several techniques over the same ids, combined, saved like any layer."""

from __future__ import annotations

import copy

import pytest
import torch

import synthembed as se
from synthembed.errors import ConfigError
from synthembed.layers.ensemble import SyntheticEnsemble

FEATS = torch.rand(40, 5, generator=torch.Generator().manual_seed(0))


def _members(dims: tuple[int, int] = (8, 8)) -> list[se.SyntheticEmbeddingLayer]:
    torch.manual_seed(0)
    techniques = ("combination", "autoencoder")
    return [
        se.SyntheticEmbeddingLayer(40, d, technique=t, side_features=FEATS, synthesis_rate=0.5)
        for t, d in zip(techniques, dims, strict=True)
    ]


def test_mean_is_the_mean_of_members() -> None:
    ens = SyntheticEnsemble(_members(), combine="mean").eval()
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    expected = (ens.members[0](ids) + ens.members[1](ids)) / 2
    torch.testing.assert_close(ens(ids), expected)
    assert ens.embedding_dim == 8


def test_concat_takes_any_sizes() -> None:
    ens = SyntheticEnsemble(_members((8, 4)), combine="concat").eval()
    ids = torch.tensor([7, 8])
    out = ens(ids)
    assert out.shape == (2, 12) and ens.embedding_dim == 12
    torch.testing.assert_close(out[:, 8:], ens.members[1](ids))


def test_gate_starts_as_the_mean_and_learns() -> None:
    ens = SyntheticEnsemble(_members(), combine="gate")
    mean = SyntheticEnsemble(copy.deepcopy(list(ens.members)), combine="mean")
    ids = torch.tensor([1, 2, 3])
    torch.testing.assert_close(ens.eval()(ids), mean.eval()(ids))
    ens.train()
    ens(ids).sum().backward()
    assert ens.gate is not None and ens.gate.weight.grad is not None
    assert float(ens.gate.weight.grad.abs().sum()) > 0


def test_get_loss_sums_members() -> None:
    ens = SyntheticEnsemble(_members(), combine="mean").train()
    ens(torch.tensor([1, 2, 3]))
    loss = ens.get_loss()
    assert loss.dim() == 0 and loss.requires_grad
    assert float(ens.get_loss()) == 0.0  # read: nothing pending


@pytest.mark.parametrize("combine", ["mean", "concat", "gate"])
def test_save_and_load_round_trip(tmp_path, combine: str) -> None:
    ens = SyntheticEnsemble(_members(), combine=combine).eval()
    path = tmp_path / "ens.safetensors"
    se.save(ens, path)
    loaded = se.load(path).eval()
    assert isinstance(loaded, SyntheticEnsemble) and loaded.combine == combine
    ids = torch.arange(40)
    assert torch.equal(loaded(ids), ens(ids))


def test_add_items_grows_every_member() -> None:
    ens = SyntheticEnsemble(_members(), combine="mean")
    ids = ens.add_items(torch.rand(3, 5))
    assert ids.tolist() == [40, 41, 42]
    assert [m.num_embeddings for m in ens.members] == [43, 43]
    assert ens.num_embeddings == 43
    assert ens.eval()(ids).shape == (3, 8)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SyntheticEnsemble(_members()[:1]), "at least 2 members; got 1"),
        (
            lambda: SyntheticEnsemble([*_members()[:1], torch.nn.Embedding(40, 8)]),
            "member 1 must be a SyntheticEmbeddingLayer; got Embedding",
        ),
        (lambda: SyntheticEnsemble(_members(), combine="max"), "one of .*; got 'max'"),
        (
            lambda: SyntheticEnsemble(_members((8, 4)), combine="mean"),
            r"needs members of one embedding_dim; got \[8, 4\]",
        ),
        (
            lambda: SyntheticEnsemble(
                [_members()[0], se.SyntheticEmbeddingLayer(10, 8)], combine="mean"
            ),
            r"same ids; num_embeddings \[40, 10\]",
        ),
    ],
)
def test_bad_members_are_named(build, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build()


def test_the_same_seed_builds_the_same_ensemble() -> None:
    one = SyntheticEnsemble(_members(), combine="gate").eval()
    two = SyntheticEnsemble(_members(), combine="gate").eval()
    ids = torch.arange(40)
    assert torch.equal(one(ids), two(ids))
