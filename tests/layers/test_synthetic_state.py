"""The synthetic layer's per-id state under ordinary PyTorch workflows (issue 13, item 1)."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer

V, D, F = 30, 8, 4


def _layer(**kwargs: object) -> SyntheticEmbeddingLayer:
    torch.manual_seed(0)
    return SyntheticEmbeddingLayer(
        V, D, side_features=torch.rand(V, F), synthesis_rate=0.3, **kwargs
    )


# ---------------------------------------------------------------------- cold status
def test_forward_without_gradients_does_not_warm_added_items() -> None:
    layer = _layer()
    new = layer.add_items(torch.rand(2, F))
    with torch.no_grad():  # a scoring pass that forgot .eval()
        layer(new)
    with torch.inference_mode():
        layer(new)
    layer.eval()(new)
    assert layer.is_cold(new).all()
    assert int(layer.counts.sum()) == 0 and int(layer.step) == 0
    layer.train()(new).sum().backward()  # a pass that trains the rows warms them
    assert not layer.is_cold(new).any() and int(layer.step) == 1


def test_frozen_base_counts_nothing() -> None:
    layer = _layer(cold_threshold=1)
    layer.base.requires_grad_(False)
    layer(torch.tensor([1, 2])).sum().backward()
    assert int(layer.counts.sum()) == 0 and layer.is_cold(torch.tensor([1, 2])).all()
    layer.base.requires_grad_(True)
    layer(torch.tensor([1, 2, 2]))
    assert layer.counts[[1, 2]].tolist() == [1, 2]


# ---------------------------------------------------------------------- get_loss
def test_get_loss_covers_every_training_forward_since_read() -> None:
    layer = _layer(technique="autoencoder")
    pos, neg = torch.tensor([1, 2, 2]), torch.tensor([3, 4])
    layer(pos)
    one = layer.get_loss()
    layer(neg)
    two = layer.get_loss()
    layer(pos)
    layer(neg)
    both = layer.get_loss()
    torch.testing.assert_close(both, one + two)
    assert layer.get_loss().item() == 0.0  # reading it reset the sum
    with torch.no_grad():
        layer(pos)
    layer.eval()(pos)
    assert layer.get_loss().item() == 0.0  # no training forward since


def test_get_loss_drops_unread_losses_after_an_optimizer_step() -> None:
    layer = _layer(technique="autoencoder")
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    layer(torch.tensor([1, 2])).sum().backward()  # loss never read
    opt.step()
    with pytest.warns(
        UserWarning,
        match=r"never read: the technique's own terms .* train only "
        r"through get_loss\(\)\. Add layer\.get_loss\(\) to the loss each step",
    ):
        layer(torch.tensor([3]))
    alone = layer.get_loss()
    layer(torch.tensor([3]))
    torch.testing.assert_close(alone, layer.get_loss())


def test_no_unread_loss_warning_when_there_is_no_loss_or_it_is_read() -> None:
    tower = _layer(technique="combination")  # no loss of its own: nothing to read
    reader = _layer(technique="autoencoder")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for layer, read in ((tower, False), (reader, True)):
            opt = torch.optim.SGD(layer.parameters(), lr=0.1)
            for _ in range(3):
                loss = layer(torch.tensor([1, 2])).sum()
                (loss + layer.get_loss() if read else loss).backward()
                opt.step()


def test_get_loss_keeps_a_bounded_number_of_unread_forwards() -> None:
    layer = _layer(technique="autoencoder")
    layer.synthesizer.requires_grad_(False)  # nothing steps: only the bound drops records
    with pytest.warns(UserWarning, match="oldest auxiliary losses are dropped"):
        for _ in range(70):
            layer(torch.tensor([1]))
    assert len(layer._pending.records) == 64
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer(torch.tensor([1]))  # warned once


def test_copies_start_without_pending_losses() -> None:
    layer = _layer(technique="autoencoder")
    layer(torch.tensor([1, 2]))
    clone = copy.deepcopy(layer)
    assert clone.get_loss().item() == 0.0 and layer.get_loss().item() != 0.0


def test_new_technique_drops_the_old_ones_pending_losses() -> None:
    layer = _layer(technique="autoencoder")
    layer(torch.tensor([1, 2]))
    layer.configure_synthesis(technique="combination")
    assert layer.get_loss().item() == 0.0


# ---------------------------------------------------------------------- side features
def test_side_features_as_dataframe_numpy_or_list(tmp_path) -> None:
    pd = pytest.importorskip("pandas")
    from synthembed.errors import ShapeError
    from synthembed.io import load, save

    values = torch.rand(V, 3).double()
    frame = pd.DataFrame(values.numpy(), columns=["year", "drama", "comedy"])
    layer = SyntheticEmbeddingLayer(V, D, side_features=frame, technique="autoencoder")
    assert layer.side_feature_names == ["year", "drama", "comedy"]
    torch.testing.assert_close(layer.side_features, values.float())
    assert torch.equal(
        SyntheticEmbeddingLayer(V, D, side_features=values.numpy()).side_features,
        SyntheticEmbeddingLayer(V, D, side_features=values.tolist()).side_features,
    )
    new = frame.iloc[:2][["comedy", "year", "drama"]]  # other order: matched by name
    ids = layer.add_items(new)
    torch.testing.assert_close(layer.side_features[ids], values[:2].float())
    layer.add_items(values[:1].numpy())  # no names: by position
    layer.add_items(values[:1].tolist())
    with pytest.raises(ShapeError, match=r"missing \['drama'\], unexpected \['x'\]"):
        layer.add_items(frame.iloc[:1].rename(columns={"drama": "x"}))
    with pytest.raises(ShapeError, match="numbers only"):
        layer.add_items(pd.DataFrame({"year": ["a"], "drama": [1.0], "comedy": [0.0]}))
    int_frame = pd.DataFrame(values.numpy())  # integer column labels
    assert SyntheticEmbeddingLayer(V, D, side_features=int_frame).side_feature_names == [
        "0",
        "1",
        "2",
    ]
    save(layer, tmp_path / "layer.safetensors")
    assert load(tmp_path / "layer.safetensors").side_feature_names == layer.side_feature_names


# ---------------------------------------------------------------------- load_state_dict
def test_state_of_a_grown_layer_says_how_to_load_it() -> None:
    from synthembed.errors import ShapeError

    grown = _layer()
    grown.add_items(torch.rand(3, F))
    fresh = _layer()
    with pytest.raises(
        ShapeError,
        match=r"with 33 ids \(3 of them added by add_items\); this layer has 30: call "
        r"layer.add_items\(\.\.\.\) with the 3 added items' side features .* num_embeddings=33",
    ):
        fresh.load_state_dict(grown.state_dict())
    fresh.add_items(torch.rand(3, F))
    fresh.load_state_dict(grown.state_dict())
    ids = torch.arange(V + 3)
    torch.testing.assert_close(fresh.eval()(ids), grown.eval()(ids))
    assert fresh.is_cold(ids[V:]).all()
