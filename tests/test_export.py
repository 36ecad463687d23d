"""Export and deployment (issue 18): models holding synthembed.Embedding under
torch.export, torch.compile(fullgraph=True) and torch.jit.script, and the
``check_ids=False`` switch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from synthembed.errors import InvalidIndexError
from synthembed.layers.embedding import Embedding

IDS = torch.tensor([[1, 2, 0], [3, 9, 9]])
BAD = torch.tensor([[1, 12, 0], [3, 9, 9]])
IN_GRAPH = r"outside the valid range \[0, 9\] in a compiled or exported graph"


class Tower(nn.Module):
    """A small model around one table: lookup, then a linear layer."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__()
        self.emb = Embedding(10, 4, padding_idx=0, **kwargs)  # type: ignore[arg-type]
        self.out = nn.Linear(4, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.emb(ids))


@pytest.fixture
def tower() -> Tower:
    torch.manual_seed(0)
    return Tower()


def test_torch_export_runs_and_keeps_the_id_check(tower: Tower) -> None:
    program = torch.export.export(tower, (IDS,))
    exported = program.module()
    assert torch.equal(exported(IDS), tower(IDS))
    with pytest.raises(RuntimeError, match=IN_GRAPH):
        exported(BAD)
    with pytest.raises(InvalidIndexError, match="largest 12"):  # eager: the full message
        tower(BAD)


def test_torch_export_of_pooled_and_checked_layers() -> None:
    torch.manual_seed(0)
    bag = Embedding(10, 4, padding_idx=0, mode="mean", check_finite=True)
    program = torch.export.export(bag, (IDS,))
    assert torch.equal(program.module()(IDS), bag(IDS))


@pytest.mark.slow
def test_torch_compile_fullgraph_forward_and_backward(tower: Tower) -> None:
    compiled = torch.compile(tower, fullgraph=True, backend="aot_eager")
    out = compiled(IDS)
    torch.testing.assert_close(out, tower(IDS), rtol=0, atol=0)
    out.sum().backward()
    grad = tower.emb.weight.grad
    assert grad is not None
    tower.zero_grad()
    tower(IDS).sum().backward()
    eager = tower.emb.weight.grad
    assert eager is not None and torch.equal(grad, eager)
    with pytest.raises(RuntimeError, match=IN_GRAPH):
        compiled(BAD)


def test_check_ids_false_skips_our_check() -> None:
    torch.manual_seed(0)
    layer = Embedding(10, 4, check_ids=False)
    assert torch.equal(layer(IDS), nn.Embedding.forward(layer, IDS))
    with pytest.raises(IndexError) as caught:  # torch's kernel still refuses, its own way
        layer(BAD)
    assert not isinstance(caught.value, InvalidIndexError)
    program = torch.export.export(layer, (IDS,))
    assert "assert" not in program.graph_module.code
    assert "assert" in torch.export.export(Embedding(10, 4), (IDS,)).graph_module.code


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torch_jit_script_plain_lookup(tower: Tower) -> None:
    scripted = torch.jit.script(tower)
    assert torch.equal(scripted(IDS), tower(IDS))
    assert type(tower.emb) is Embedding  # scripting leaves the eager model alone
    scripted(IDS).sum().backward()  # the scripted model trains the same Parameter
    assert tower.emb.weight.grad is not None


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torch_jit_script_refuses_bags_when_run() -> None:
    scripted = torch.jit.script(Embedding(10, 4, mode="sum"))
    with pytest.raises(torch.jit.Error, match="scripted Embedding does plain lookups only"):
        scripted(IDS)
