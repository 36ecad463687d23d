"""Tests for synthembed.layers.embedding: Embedding (pooling itself: test_embedding_bags.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from synthembed._kernels import use_kernels
from synthembed.errors import ConfigError, InvalidIndexError, NonFiniteError, ShapeError
from synthembed.io import save_weights
from synthembed.layers.embedding import Embedding
from synthembed.vocab import Vocabulary


def _pair(*args, **kwargs) -> tuple[nn.Embedding, Embedding]:
    """An nn.Embedding and our Embedding with the same weights and options."""
    theirs = nn.Embedding(*args, **kwargs)
    ours = Embedding(*args, **kwargs)
    ours.load_state_dict(theirs.state_dict())
    return theirs, ours


# ---------------------------------------------------------------- drop-in compatibility


def test_same_init_as_nn_embedding_under_the_same_seed() -> None:
    torch.manual_seed(123)
    theirs = nn.Embedding(40, 7, padding_idx=5)
    torch.manual_seed(123)
    ours = Embedding(40, 7, padding_idx=5)
    assert torch.equal(ours.weight, theirs.weight)
    assert ours.weight.dtype == torch.float32 and ours.weight.requires_grad
    assert torch.count_nonzero(ours.weight[5]) == 0


def test_constructor_names_and_positions_match_nn_embedding() -> None:
    ours = Embedding(10, 4, 2, 1.5, 3.0, True, True)
    assert (ours.num_embeddings, ours.embedding_dim, ours.padding_idx) == (10, 4, 2)
    assert (ours.max_norm, ours.norm_type, ours.scale_grad_by_freq, ours.sparse) == (
        1.5,
        3.0,
        True,
        True,
    )
    assert Embedding(10, 4, padding_idx=-1).padding_idx == 9
    w = torch.randn(3, 2)
    assert torch.equal(Embedding(3, 2, _weight=w).weight, w)
    assert not Embedding(3, 2, _weight=w, _freeze=True).weight.requires_grad
    assert Embedding(3, 2, dtype=torch.float64).weight.dtype == torch.float64
    assert repr(Embedding(10, 4, padding_idx=0, sparse=True)) == (
        "Embedding(10, 4, padding_idx=0, sparse=True)"
    )


def test_state_dict_loads_both_ways(tmp_path) -> None:
    theirs = nn.Embedding(30, 6, padding_idx=0)
    ours = Embedding(30, 6, padding_idx=0)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    ours.load_state_dict(theirs.state_dict())
    assert torch.equal(ours.weight, theirs.weight)
    with torch.no_grad():
        ours.weight.add_(1.0)
    back = nn.Embedding(30, 6, padding_idx=0)
    back.load_state_dict(ours.state_dict())
    assert torch.equal(back.weight, ours.weight)
    # A checkpoint file of an nn.Embedding (safetensors, no pickle) loads into ours.
    save_weights(theirs, tmp_path / "torch.safetensors")
    from synthembed.io import load_weights

    fresh = load_weights(Embedding(30, 6, padding_idx=0), tmp_path / "torch.safetensors")
    assert torch.equal(fresh.weight, theirs.weight)


@pytest.mark.parametrize("padding_idx", [None, 3])
@pytest.mark.parametrize("shape", [(17,), (4, 6), (2, 3, 5)])
def test_forward_and_dense_gradient_identical_to_torch(padding_idx, shape) -> None:
    theirs, ours = _pair(50, 8, padding_idx=padding_idx)
    ids = torch.randint(0, 50, shape)
    ids.view(-1)[0] = 3
    grad = torch.randn(*shape, 8)
    out_t, out_o = theirs(ids), ours(ids)
    assert out_o.shape == (*shape, 8) and out_o.dtype == torch.float32
    assert torch.equal(out_o, out_t)
    out_t.backward(grad)
    out_o.backward(grad)
    assert torch.equal(ours.weight.grad, theirs.weight.grad)
    if padding_idx is not None:
        assert torch.count_nonzero(ours.weight.grad[padding_idx]) == 0


@pytest.mark.parametrize("padding_idx", [None, 3])
def test_sparse_gradient_identical_to_torch(padding_idx) -> None:
    theirs, ours = _pair(50, 8, padding_idx=padding_idx, sparse=True)
    ids = torch.randint(0, 50, (9, 4))
    ids[0, :2] = 3
    grad = torch.randn(9, 4, 8)
    theirs(ids).backward(grad)
    ours(ids).backward(grad)
    g_t, g_o = theirs.weight.grad, ours.weight.grad
    assert g_o.is_sparse and g_o.shape == (50, 8)
    assert torch.equal(g_o._indices(), g_t._indices())
    assert torch.equal(g_o._values(), g_t._values())
    assert torch.equal(g_o.to_dense(), g_t.to_dense())


def test_scale_grad_by_freq_and_float64_match_torch() -> None:
    theirs, ours = _pair(20, 5, scale_grad_by_freq=True, dtype=torch.float64)
    ids = torch.tensor([1, 1, 1, 2, 7])
    grad = torch.randn(5, 5, dtype=torch.float64)
    theirs(ids).backward(grad)
    ours(ids).backward(grad)
    assert torch.equal(ours.weight.grad, theirs.weight.grad)


@pytest.mark.parametrize(("max_norm", "norm_type"), [(1.0, 2.0), (0.5, 1.0), (2.0, 3.0)])
def test_max_norm_matches_torch_bit_for_bit(max_norm, norm_type) -> None:
    theirs, ours = _pair(60, 16, max_norm=max_norm, norm_type=norm_type)
    for _ in range(2):  # the second call sees rows renormalised by the first
        ids = torch.randint(0, 60, (10, 7))
        out_t, out_o = theirs(ids), ours(ids)
        assert torch.equal(out_o, out_t)
        assert torch.equal(ours.weight, theirs.weight)
    norms = torch.linalg.vector_norm(out_o, ord=norm_type, dim=-1)
    assert bool((norms <= max_norm + 1e-5).all())
    grad = torch.randn_like(out_o)
    out_t.backward(grad)
    out_o.backward(grad)
    assert torch.equal(ours.weight.grad, theirs.weight.grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_max_norm_rescales_only_offending_rows_like_torch(dtype) -> None:
    theirs, ours = _pair(40, 128, max_norm=11.3, dtype=dtype)  # N(0, 1) rows of 128: norm ~11.3
    for _ in range(3):
        ids = torch.randint(0, 40, (25,))
        ids[:3] = ids[3]  # duplicates of one id
        before = ours.weight.detach().clone()
        out_t, out_o = theirs(ids), ours(ids)
        assert torch.equal(out_o, out_t)
        assert torch.equal(ours.weight, theirs.weight)
        changed = (ours.weight != before).any(dim=1).nonzero().squeeze(1)
        assert set(changed.tolist()) <= set(ids.tolist())  # only looked-up rows change
    # Rows all within the norm: the fast kernel writes nothing (the version counter stays).
    within = torch.tensor([0, 1, 2])
    with torch.no_grad():
        ours.weight[within] = (
            0.5 * ours.weight[within] / ours.weight[within].norm(dim=1, keepdim=True)
        )
    version = ours.weight._version
    with torch.no_grad(), use_kernels("fast"):
        assert torch.equal(ours(within), ours.weight[within])
    assert ours.weight._version == version


def test_max_norm_rescale_is_seen_by_autograd_as_an_in_place_change() -> None:
    for layer in _pair(10, 4, max_norm=0.1):
        pending = (layer.weight**2).sum()  # saves the weight for backward
        with torch.no_grad():
            layer(torch.tensor([5]))  # rescales row 5 in place
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            pending.backward()


def test_training_steps_match_torch() -> None:
    for sparse in (False, True):
        theirs, ours = _pair(100, 6, padding_idx=0, sparse=sparse)
        opt_t = torch.optim.SGD(theirs.parameters(), lr=0.5)
        opt_o = torch.optim.SGD(ours.parameters(), lr=0.5)
        for step in range(3):
            ids = torch.randint(0, 100, (32,), generator=torch.Generator().manual_seed(step))
            for layer, opt in ((theirs, opt_t), (ours, opt_o)):
                opt.zero_grad()
                layer(ids).pow(2).sum().backward()
                opt.step()
        assert torch.equal(ours.weight, theirs.weight)


def test_no_grad_and_frozen_forward() -> None:
    ours = Embedding(10, 3).freeze()
    out = ours(torch.tensor([1, 2]))
    assert not out.requires_grad
    with torch.no_grad():
        assert torch.equal(Embedding.from_pretrained(ours.weight)(torch.tensor([2])), out[1:])


# ---------------------------------------------------------------- errors


def test_bad_ids_error_names_range_extremes_and_count() -> None:
    layer = Embedding(10, 3)
    ids = torch.tensor([[0, 12, 3], [-2, 15, 12]])
    msg = (
        "Embedding got 4 id(s) outside the valid range [0, 9] "
        "(smallest offending id -2, largest 15); negative ids are never valid"
    )
    with pytest.raises(InvalidIndexError, match=re.escape(msg)):
        layer(ids)
    with pytest.raises(
        IndexError, match=re.escape("grow the table or build it with num_embeddings > 10")
    ):
        layer(torch.tensor([10]))
    with pytest.raises(InvalidIndexError, match=re.escape("none: the table has 0 rows")):
        Embedding(0, 3)(torch.tensor([0]))


def test_bad_input_types_get_clear_errors() -> None:
    layer = Embedding(10, 3)
    with pytest.raises(
        ShapeError, match=r"must have shape \(\*, 10\); got \(2,\)\. If these are ids, cast"
    ):
        layer(torch.tensor([1.0, 2.0]))
    with pytest.raises(ShapeError, match="boolean tensor of shape"):
        layer(torch.tensor([True]))
    with pytest.raises(
        ShapeError, match=r"expects ids as a torch.Tensor of dtype torch.long; got list"
    ):
        layer([1, 2])
    with pytest.raises(NonFiniteError, match="1 NaN and 1 infinite"):
        layer(torch.tensor([[float("nan"), float("inf")] + [0.0] * 8]))
    with pytest.raises(ShapeError, match=r"got \(\)"):
        layer(torch.tensor(1.0))
    assert layer(torch.tensor([3], dtype=torch.int32)).shape == (1, 3)
    assert layer(torch.tensor([3], dtype=torch.uint8)).shape == (1, 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_embeddings": -1, "embedding_dim": 3}, r"'num_embeddings' parameter .* Got -1"),
        ({"num_embeddings": 5, "embedding_dim": -1}, r"'embedding_dim' parameter .* \[0, inf\)"),
        ({"num_embeddings": 5, "embedding_dim": 2, "padding_idx": 5}, r"\[-5, 4\]\. Got 5"),
        ({"num_embeddings": 5, "embedding_dim": 2, "max_norm": 0.0}, r"'max_norm' .* \(0, inf\)"),
        ({"num_embeddings": 5, "embedding_dim": 2, "mode": "median"}, "'sum', 'mean', 'max'"),
        ({"embedding_dim": 2}, "needs num_embeddings"),
        ({"num_embeddings": 5, "embedding_dim": 2, "_weight": torch.zeros(4, 2)}, r"\(5, 2\)"),
        ({"num_embeddings": 5, "embedding_dim": 2, "vocab": ["a"]}, "synthembed.Vocabulary"),
    ],
)
def test_bad_constructor_arguments(kwargs, message) -> None:
    with pytest.raises((ConfigError, ShapeError), match=message):
        Embedding(**kwargs)


def test_check_finite_names_the_ids() -> None:
    layer = Embedding(5, 2, check_finite=True)
    with torch.no_grad():
        layer.weight[3, 1] = float("nan")
    assert layer(torch.tensor([1, 2])).shape == (2, 2)
    with pytest.raises(NonFiniteError, match=r"rows of ids \[3\]"):
        layer(torch.tensor([1, 3, 3]))


# ---------------------------------------------------------------- empty inputs


@pytest.mark.parametrize("shape", [(0,), (0, 5), (3, 0), (2, 0, 4)])
def test_empty_ids_give_empty_outputs(shape) -> None:
    layer = Embedding(10, 3)
    out = layer(torch.zeros(shape, dtype=torch.long))
    assert out.shape == (*shape, 3)
    out.sum().backward()
    assert torch.count_nonzero(layer.weight.grad) == 0


def test_empty_soft_lookup_and_empty_bags() -> None:
    assert Embedding(10, 3)(torch.zeros(0, 10)).shape == (0, 3)
    bag = Embedding(10, 3, mode="mean")
    assert torch.equal(bag(torch.zeros(4, 0, dtype=torch.long)), torch.zeros(4, 3))
    assert bag(torch.zeros(0, 6, dtype=torch.long)).shape == (0, 3)


# ---------------------------------------------------------------- soft lookup


def test_soft_lookup_is_x_at_w_and_one_hot_equals_lookup() -> None:
    layer = Embedding(6, 4)
    x = torch.rand(3, 2, 6)
    assert torch.allclose(layer(x), x @ layer.weight)
    one_hot = torch.nn.functional.one_hot(torch.tensor([4, 0]), 6).float()
    assert torch.allclose(layer(one_hot), layer(torch.tensor([4, 0])))
    layer(x).sum().backward()
    assert torch.allclose(layer.weight.grad, x.reshape(-1, 6).sum(0).unsqueeze(1).expand(6, 4))
    assert layer(x.double()).dtype == torch.float32
    with pytest.raises(ConfigError, match="does not combine with mode='sum'"):
        Embedding(6, 4, mode="sum")(x)


# ---------------------------------------------------------------- pooling


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_pooling_matches_embedding_bag(mode) -> None:
    bag = nn.EmbeddingBag(40, 5, mode=mode, padding_idx=0)
    ours = Embedding(40, 5, padding_idx=0, mode=mode)
    ours.load_state_dict(bag.state_dict())
    ids = torch.randint(1, 40, (6, 7))
    ids[0, 3:] = 0
    ids[1] = 0  # an all-padding bag pools to zeros
    out_b, out_o = bag(ids), ours(ids)
    assert torch.allclose(out_o, out_b, atol=1e-6)
    assert torch.equal(out_o[1], torch.zeros(5))
    grad = torch.randn(6, 5)
    out_b.backward(grad)
    out_o.backward(grad)
    assert torch.allclose(ours.weight.grad, bag.weight.grad, atol=1e-6)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_mask_equals_padding_the_masked_entries(mode) -> None:
    ours = Embedding(30, 4, padding_idx=0, mode=mode)
    ids = torch.randint(1, 30, (5, 2, 6))
    mask = torch.rand(5, 2, 6) > 0.4
    mask[0, 0] = False
    expected = ours(torch.where(mask, ids, torch.zeros_like(ids)))
    got = ours(ids, mask=mask)
    assert got.shape == (5, 2, 4)
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.equal(got[0, 0], torch.zeros(4))


def test_per_sample_weights_match_embedding_bag_and_weighted_mean() -> None:
    bag = nn.EmbeddingBag(40, 5, mode="sum", padding_idx=0)
    ours = Embedding(40, 5, padding_idx=0, mode="sum")
    ours.load_state_dict(bag.state_dict())
    ids = torch.randint(0, 40, (4, 6))
    w = torch.rand(4, 6)
    out_o = ours(ids, per_sample_weights=w)
    assert torch.allclose(out_o, bag(ids, per_sample_weights=w), atol=1e-6)
    out_o.sum().backward()
    bag(ids, per_sample_weights=w).sum().backward()
    assert torch.allclose(ours.weight.grad, bag.weight.grad, atol=1e-6)
    mean = Embedding(40, 5, padding_idx=0, mode="mean")
    mean.load_state_dict(bag.state_dict())
    valid = (ids != 0).float()
    expected = (bag.weight[ids] * (w * valid).unsqueeze(-1)).sum(1) / valid.sum(1).clamp(
        min=1
    ).unsqueeze(-1)
    assert torch.allclose(mean(ids, per_sample_weights=w), expected, atol=1e-6)


def test_pooling_errors() -> None:
    layer = Embedding(10, 3, mode="sum")
    ids = torch.tensor([[1, 2]])
    with pytest.raises(ShapeError, match=r"mask must have the ids' shape \(1, 2\); got \(2,\)"):
        layer(ids, mask=torch.tensor([True, False]))
    with pytest.raises(ShapeError, match=r"mask must be a bool tensor; got dtype torch.int64"):
        layer(ids, mask=torch.ones(1, 2, dtype=torch.long))
    with pytest.raises(ShapeError, match="pools over the last dimension; got a 0-d id"):
        layer(torch.tensor(1))
    with pytest.raises(NonFiniteError, match="per_sample_weights contains 1 NaN"):
        layer(ids, per_sample_weights=torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(ConfigError, match="not 'max'"):
        Embedding(10, 3, mode="max")(ids, per_sample_weights=torch.ones(1, 2))
    with pytest.raises(ConfigError, match="has mode=None"):
        Embedding(10, 3)(ids, mask=torch.ones(1, 2, dtype=torch.bool))


# ---------------------------------------------------------------- vocabulary binding


def test_bound_vocabulary_lookup_end_to_end() -> None:
    vocab = Vocabulary.build(["cat", "dog", "cat", "emu"])
    layer = Embedding(vocab=vocab, embedding_dim=4)
    assert layer.num_embeddings == len(vocab) == 5 and layer.padding_idx == vocab.pad_id == 0
    out = layer.lookup(["cat", "dog"])
    assert torch.equal(out, layer.weight[[2, 3]])
    assert torch.equal(layer.lookup("emu"), layer.weight[4])
    assert torch.equal(layer.lookup("zebra"), layer.weight[1])  # unk
    batch = layer.lookup([["cat"], ["dog", "emu", "cat"]], max_length=2)
    assert batch.shape == (2, 2, 4)
    pooled = Embedding(vocab=vocab, embedding_dim=4, mode="mean")
    got = pooled.lookup([["cat"], ["dog", "emu"]])
    assert torch.allclose(got[1], pooled.weight[[3, 4]].mean(0))
    with pytest.raises(ShapeError, match="pass a sequence of tokens"):
        pooled.lookup("cat")
    with pytest.raises(ConfigError, match="needs a bound vocabulary"):
        Embedding(3, 2).lookup(["a"])
    with pytest.raises(ConfigError, match="num_embeddings must be >= 5"):
        Embedding(4, 2, vocab=vocab)


# ---------------------------------------------------------------- pretrained, freeze, grow


def test_from_pretrained_tensor_numpy_and_freeze() -> None:
    vectors = torch.randn(5, 3)
    layer = Embedding.from_pretrained(vectors)
    assert torch.equal(layer.weight, vectors) and not layer.weight.requires_grad
    assert layer.weight.data_ptr() == vectors.data_ptr()  # shared, as torch.nn.Embedding does
    copied = Embedding.from_pretrained(vectors, copy=True)
    assert torch.equal(copied.weight, vectors) and copied.weight.data_ptr() != vectors.data_ptr()
    assert torch.equal(layer(torch.tensor([4])), vectors[4:])
    trainable = Embedding.from_pretrained(vectors.numpy(), freeze=False, padding_idx=0)
    assert trainable.weight.requires_grad and trainable.padding_idx == 0
    assert torch.equal(trainable.weight[0], vectors[0])  # pretrained pad row is kept, as in torch
    assert layer.unfreeze() is layer and layer.weight.requires_grad
    assert layer.freeze() is layer and not layer.weight.requires_grad
    vocab = Vocabulary(["a", "b", "c"])
    bound = Embedding.from_pretrained(vectors, vocab=vocab)
    assert torch.equal(bound.lookup("c"), vectors[4])
    with pytest.raises(ShapeError, match="vocabulary has 5 ids but the embeddings have 4 rows"):
        Embedding.from_pretrained(vectors[:4], vocab=vocab)
    with pytest.raises(ShapeError, match=r"2-d \(V, D\) floating-point tensor; got shape \(5,\)"):
        Embedding.from_pretrained(torch.randn(5))
    bad = vectors.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="pretrained embeddings contains 1 NaN"):
        Embedding.from_pretrained(bad)


def test_from_pretrained_safetensors_path(tmp_path) -> None:
    source = Embedding(7, 3)
    save_weights(source, tmp_path / "w.safetensors")
    layer = Embedding.from_pretrained(tmp_path / "w.safetensors", freeze=False)
    assert torch.equal(layer.weight, source.weight) and layer.weight.requires_grad


def test_grow_appends_rows_and_keeps_old_ones() -> None:
    layer = Embedding(4, 3, padding_idx=0)
    old = layer.weight.detach().clone()
    new_ids = layer.grow(2)
    assert new_ids.tolist() == [4, 5] and layer.num_embeddings == 6
    assert torch.equal(layer.weight[:4], old) and layer.weight.shape == (6, 3)
    assert layer(torch.tensor([5])).shape == (1, 3)
    init = torch.ones(1, 3)
    assert layer.grow(1, init).tolist() == [6]
    assert torch.equal(layer.weight[6], init[0])
    assert layer.grow(0).tolist() == []
    layer(torch.tensor([6])).sum().backward()
    assert layer.weight.grad[6].tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ShapeError, match=r"init must have shape \(2, 3\); got \(1, 3\)"):
        layer.grow(2, init)
    with pytest.raises(ConfigError, match=r"'n' parameter of Embedding.grow .* Got -1"):
        layer.grow(-1)
    assert layer.num_embeddings == 7
    frozen = Embedding(2, 2).freeze()
    frozen.grow(1)
    assert not frozen.weight.requires_grad


def test_config_round_trip() -> None:
    vocab = Vocabulary.build(["x", "y"])
    layer = Embedding(6, 3, max_norm=2.0, mode="max", vocab=vocab, dtype=torch.float64).freeze()
    config = layer.get_config()
    rebuilt = Embedding.from_config(config)
    assert rebuilt.get_config() == config
    assert rebuilt.weight.dtype == torch.float64 and not rebuilt.weight.requires_grad
    assert rebuilt.vocab == vocab
    with pytest.raises(ConfigError, match="Unknown dtype 'float7'"):
        Embedding.from_config({**config, "dtype": "float7"})


# ---------------------------------------------------------------- fuzzing


@given(
    shape=st.lists(st.integers(0, 4), min_size=1, max_size=3),
    rows=st.integers(1, 30),
    dim=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    padding=st.booleans(),
    sparse=st.booleans(),
)
def test_fuzz_random_shapes_match_torch(shape, rows, dim, seed, padding, sparse) -> None:
    gen = torch.Generator().manual_seed(seed)
    pad = 0 if padding else None
    theirs, ours = _pair(rows, dim, padding_idx=pad, sparse=sparse)
    ids = torch.randint(0, rows, tuple(shape), generator=gen)
    out_t, out_o = theirs(ids), ours(ids)
    assert out_o.shape == (*shape, dim)
    assert torch.equal(out_o, out_t)
    grad = torch.randn(*shape, dim, generator=gen)
    out_t.backward(grad)
    out_o.backward(grad)
    g_t, g_o = theirs.weight.grad, ours.weight.grad
    if sparse:
        g_t, g_o = g_t.to_dense(), g_o.to_dense()
    assert torch.equal(g_o, g_t)


@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    rows=st.integers(0, 20),
    bad=st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=5),
    seed=st.integers(0, 2**16),
)
def test_fuzz_bad_ids_always_raise_the_exact_message(shape, rows, bad, seed) -> None:
    layer = Embedding(rows, 2)
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, max(rows, 1), tuple(shape), generator=gen).view(-1)
    bad = [b for b in bad if not 0 <= b < rows] or [rows]
    positions = torch.randperm(ids.numel(), generator=gen)[: len(bad)]
    ids[positions] = torch.tensor(bad[: len(positions)])
    if rows == 0:
        ids[:] = torch.tensor(bad[0])
    offending = ids[(ids < 0) | (ids >= rows)]
    expected = (
        f"got {offending.numel()} id(s) outside the valid range "
        f"{'[0, ' + str(rows - 1) + ']' if rows else 'none: the table has 0 rows'} "
        f"(smallest offending id {int(offending.min())}, largest {int(offending.max())})"
    )
    before = layer.weight.detach().clone()
    with pytest.raises(InvalidIndexError, match=re.escape(expected)):
        layer(ids.view(tuple(shape)))
    assert torch.equal(layer.weight, before)


@given(rows=st.integers(1, 12), dim=st.integers(1, 5), lead=st.integers(0, 4))
def test_fuzz_soft_lookup_shapes(rows, dim, lead) -> None:
    layer = Embedding(rows, dim)
    x = torch.rand(lead, rows)
    assert layer(x).shape == (lead, dim)
    with pytest.raises(ShapeError, match=rf"must have shape \(\*, {rows}\)"):
        layer(torch.rand(lead, rows + 1))


def test_numpy_backed_weight_survives_optimizers_and_pickle_free_copy() -> None:
    layer = Embedding(8, 2)
    opt = torch.optim.Adam(layer.parameters(), lr=0.1)
    layer(torch.tensor([1, 2])).sum().backward()
    opt.step()
    assert np.isfinite(layer.weight.detach().numpy()).all()


def test_per_sample_gradients_with_torch_func_match_nn_embedding() -> None:
    from torch.func import functional_call, grad, vmap

    theirs, ours = _pair(20, 3, padding_idx=0)
    params = {"weight": ours.weight.detach()}
    ids = torch.randint(0, 20, (4, 5))

    def per_sample(layer: nn.Module) -> torch.Tensor:
        def loss(p: dict, x: torch.Tensor) -> torch.Tensor:
            return functional_call(layer, p, (x,)).pow(2).sum()

        return vmap(grad(loss), in_dims=(None, 0))(params, ids)["weight"]

    got = per_sample(ours)
    assert got.shape == (4, 20, 3)
    assert torch.equal(got, per_sample(theirs))


@pytest.mark.parametrize("set_to_none", [True, False])
def test_reused_gradient_buffers_keep_training_identical_to_torch(set_to_none) -> None:
    theirs, ours = _pair(100, 6, padding_idx=0)
    opt_t = torch.optim.SGD(theirs.parameters(), lr=0.3, momentum=0.9)
    opt_o = torch.optim.SGD(ours.parameters(), lr=0.3, momentum=0.9)
    held = []
    for step in range(5):
        ids = torch.randint(0, 100, (40,), generator=torch.Generator().manual_seed(step))
        for layer, opt in ((theirs, opt_t), (ours, opt_o)):
            opt.zero_grad(set_to_none=set_to_none)
            layer(ids).pow(2).sum().backward()
            opt.step()
        assert torch.equal(ours.weight, theirs.weight)
        if step == 1:  # a gradient the user keeps is never handed out again
            held.append((ours.weight.grad, ours.weight.grad.clone()))
    kept, copy = held[0]
    if set_to_none:
        assert torch.equal(kept, copy)


def test_double_backward_matches_torch() -> None:
    theirs, ours = _pair(10, 8)
    ids = torch.tensor([1, 2, 2, 5])
    for layer in (theirs, ours):
        (g,) = torch.autograd.grad(layer(ids).pow(3).sum(), layer.weight, create_graph=True)
        g.pow(2).sum().backward()
    assert torch.equal(ours.weight.grad, theirs.weight.grad)


def test_half_precision_and_inference_mode() -> None:
    layer = Embedding(100, 8, dtype=torch.float16)
    layer(torch.tensor([1, 2, 2])).float().sum().backward()
    assert layer.weight.grad.dtype == torch.float16
    assert layer.weight.grad[2].tolist() == [2.0] * 8
    big = Embedding(5000, 128)
    ids = torch.randint(0, 5000, (4096,))
    with torch.inference_mode():
        assert torch.equal(big(ids), big.weight[ids])
    big(ids).sum().backward()
    assert float(big.weight.grad.sum()) == 4096 * 128


def test_large_sparse_padding_gradients_match_torch_and_survive_buffer_reuse() -> None:
    # 4096 x 64 = 2**18 gradient values: the kept rows go to a pooled buffer.
    theirs, ours = _pair(3000, 64, padding_idx=7, sparse=True)
    opt_t = torch.optim.SGD(theirs.parameters(), lr=0.1)
    opt_o = torch.optim.SGD(ours.parameters(), lr=0.1)
    held = None
    for step in range(3):
        gen = torch.Generator().manual_seed(step)
        ids = torch.randint(0, 3000, (64, 64), generator=gen)
        ids[torch.rand(64, 64, generator=gen) < 0.2] = 7
        grad = torch.randn(64, 64, 64, generator=gen)
        for layer, opt in ((theirs, opt_t), (ours, opt_o)):
            opt.zero_grad(set_to_none=True)
            layer(ids).backward(grad)
        g_t, g_o = theirs.weight.grad, ours.weight.grad
        assert torch.equal(g_o._indices(), g_t._indices())
        assert torch.equal(g_o._values(), g_t._values())
        if step == 0:  # a gradient the user keeps is never overwritten by later steps
            held = (g_o, g_o._values().clone())
        opt_t.step()
        opt_o.step()
        assert torch.equal(ours.weight, theirs.weight)
    assert torch.equal(held[0]._values(), held[1])
    # An upstream gradient with stride 0 (from .sum()) gives torch's values too.
    theirs.weight.grad = ours.weight.grad = None
    theirs(ids).sum().backward()
    ours(ids).sum().backward()
    assert torch.equal(ours.weight.grad._values(), theirs.weight.grad._values())


@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")
def test_max_norm_on_a_weight_over_a_read_only_numpy_array_matches_torch() -> None:
    array = np.random.default_rng(0).standard_normal((50, 16)).astype(np.float32)
    array.setflags(write=False)
    ours = Embedding(50, 16, max_norm=1.0, _weight=torch.from_numpy(array))
    theirs = nn.Embedding(50, 16, max_norm=1.0, _weight=torch.from_numpy(array.copy()))
    ids = torch.randint(0, 50, (30,))
    assert torch.equal(ours(ids), theirs(ids))
    assert torch.equal(ours.weight, theirs.weight)


def test_an_encoded_batch_goes_in_as_it_is() -> None:
    vocab = Vocabulary.build([["a", "b"], ["c"]])
    batch = vocab.encode([["a", "b"], ["c"]])
    plain = Embedding(vocab=vocab, embedding_dim=4)
    torch.testing.assert_close(plain(batch), plain(batch.ids))
    pooled = Embedding(vocab=vocab, embedding_dim=4, mode="mean")
    torch.testing.assert_close(pooled(batch), pooled(batch.ids, mask=batch.mask))
    torch.testing.assert_close(pooled(batch)[1], pooled.weight[vocab["c"]])
    with pytest.raises(ConfigError, match="got an EncodedBatch and mask=; the batch has its mask"):
        pooled(batch, mask=batch.mask)
