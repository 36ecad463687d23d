"""synthembed.Embedding as a drop-in for torch.nn.Embedding (issue 19).

Each test checks one fact that PyTorch's own ``test/nn/test_embedding.py`` checks
for its layer, or a deliberate difference listed in docs/torch_differences.md.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from synthembed import use_kernels
from synthembed._kernels import KernelSet
from synthembed.errors import ConfigError, ShapeError
from synthembed.layers.embedding import Embedding, PaddingIdxError, TableShapeError

KERNEL_SETS: tuple[KernelSet, ...] = ("fast", "reference")
INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


# ---------------------------------------------------------------- the class itself


def test_is_a_torch_embedding_with_torch_attributes() -> None:
    layer = Embedding(10, 3, padding_idx=-1, max_norm=2.0, sparse=True)
    assert isinstance(layer, nn.Embedding)
    mro = type(layer).__mro__
    assert mro.index(nn.Embedding) < mro.index(nn.Module)
    assert list(layer.state_dict()) == ["weight"]
    assert layer.__constants__ == nn.Embedding.__constants__
    assert (layer.num_embeddings, layer.embedding_dim, layer.padding_idx) == (10, 3, 9)
    assert (layer.max_norm, layer.norm_type, layer.sparse) == (2.0, 2.0, True)
    assert not layer.scale_grad_by_freq
    # torch's repr for the same arguments
    torch_layer = nn.Embedding(10, 3, padding_idx=-1, max_norm=2.0, sparse=True)
    assert repr(layer) == repr(torch_layer)
    # torch's own forward, run on our module, gives our output
    ids = torch.tensor([[1, 9], [3, 3]])
    assert torch.equal(nn.Embedding.forward(layer, ids), layer(ids))


def test_reset_parameters_draws_normal_and_zeroes_padding() -> None:
    layer = Embedding(50, 4, padding_idx=3)
    with torch.no_grad():
        layer.weight.fill_(7.0)
    torch.manual_seed(0)
    layer.reset_parameters()
    torch.manual_seed(0)
    theirs = nn.Embedding(50, 4, padding_idx=3)
    assert torch.equal(layer.weight[3], torch.zeros(4))
    assert torch.equal(layer.weight, theirs.weight)


def test_from_pretrained_takes_torch_positional_signature() -> None:
    table = torch.randn(6, 3)
    # (embeddings, freeze, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse)
    ours = Embedding.from_pretrained(table.clone(), False, 1, 10.0, 3.0, True, True)
    theirs = nn.Embedding.from_pretrained(table.clone(), False, 1, 10.0, 3.0, True, True)
    for name in ("padding_idx", "max_norm", "norm_type", "scale_grad_by_freq", "sparse"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.weight.requires_grad and isinstance(ours, Embedding)


def test_checkpoints_load_both_ways() -> None:
    theirs = nn.Embedding(7, 2, padding_idx=0)
    ours = Embedding(7, 2, padding_idx=0)
    ours.load_state_dict(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict())
    assert torch.equal(ours.weight, theirs.weight)


# ---------------------------------------------------------------- integer tables


@pytest.mark.parametrize("kernels", KERNEL_SETS)
@pytest.mark.parametrize("dtype", INTEGER_DTYPES, ids=str)
def test_integer_pretrained_table_is_a_frozen_lookup_table(dtype, kernels) -> None:
    table = torch.arange(12).reshape(4, 3).to(dtype)
    ids = torch.tensor([[3, 0], [1, 1]])
    with use_kernels(kernels):
        ours = Embedding.from_pretrained(table)
        out = ours(ids)
    assert out.dtype == dtype and not ours.weight.requires_grad
    assert torch.equal(out, nn.Embedding.from_pretrained(table)(ids))
    with pytest.raises(ConfigError, match=rf"integer table \(dtype {dtype}\) cannot be trained"):
        Embedding.from_pretrained(table, freeze=False)


def test_complex_and_bool_tables_are_refused() -> None:
    with pytest.raises(ShapeError, match=r"floating-point or integer.*torch\.bool"):
        Embedding.from_pretrained(torch.ones(3, 2, dtype=torch.bool))


# ---------------------------------------------------------------- sharing the caller's tensor


@pytest.mark.parametrize("kernels", KERNEL_SETS)
def test_from_pretrained_shares_and_max_norm_renormalises_the_callers_tensor(kernels) -> None:
    table = torch.full((5, 4), 3.0)
    theirs_table = table.clone()
    with use_kernels(kernels):
        ours = Embedding.from_pretrained(table, max_norm=1.0)
        out = ours(torch.tensor([2]))
    nn.Embedding.from_pretrained(theirs_table, max_norm=1.0)(torch.tensor([2]))
    assert ours.weight.data_ptr() == table.data_ptr()
    assert torch.equal(table, theirs_table)  # row 2 rescaled in the caller's tensor, as torch
    assert torch.allclose(table[2].norm(), torch.tensor(1.0)) and table[0, 0] == 3.0
    assert torch.equal(out[0], table[2])


def test_tied_weights_stay_tied() -> None:
    decoder = nn.Linear(4, 10, bias=False)  # weight (10, 4), the usual tied LM head
    layer = Embedding.from_pretrained(decoder.weight, freeze=False)
    assert layer.weight.data_ptr() == decoder.weight.data_ptr()
    with torch.no_grad():
        decoder.weight[3].fill_(0.5)
    assert torch.equal(layer(torch.tensor([3])), torch.full((1, 4), 0.5))


def test_copy_keeps_the_callers_tensor_apart() -> None:
    table = torch.full((5, 4), 3.0)
    layer = Embedding.from_pretrained(table, max_norm=1.0, copy=True)
    layer(torch.tensor([2]))
    assert torch.equal(table, torch.full((5, 4), 3.0))
    assert layer.weight.data_ptr() != table.data_ptr()


# ---------------------------------------------------------------- zero-width and empty tables


@pytest.mark.parametrize("kernels", KERNEL_SETS)
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize(
    ("rows", "ids"),
    [(10, torch.tensor([[0, 2, 4, 5], [4, 3, 0, 9]])), (0, torch.tensor([], dtype=torch.long))],
)
def test_zero_width_tables_match_torch(rows, ids, sparse, kernels) -> None:
    theirs = nn.Embedding(rows, 0, sparse=sparse)
    with use_kernels(kernels):
        ours = Embedding(rows, 0, sparse=sparse)
        out = ours(ids)
        out.sum().backward()
    want = theirs(ids)
    want.sum().backward()
    assert out.shape == want.shape == (*ids.shape, 0)
    got, expected = ours.weight.grad, theirs.weight.grad
    assert got is not None and expected is not None
    assert got.layout == expected.layout and got.shape == expected.shape == (rows, 0)
    if sparse:
        assert torch.equal(got._indices(), expected._indices())
        assert torch.equal(got._values(), expected._values())
        assert got._indices().shape == (1, 0)
    else:
        assert torch.equal(got, expected)


# ---------------------------------------------------------------- error types


@pytest.mark.parametrize("padding_idx", [10, -11, 25])
def test_padding_idx_out_of_range_is_config_and_assertion_error(padding_idx) -> None:
    message = rf"'padding_idx' parameter of Embedding .* \[-10, 9\]\. Got {padding_idx} instead"
    with pytest.raises(AssertionError, match=message):
        Embedding(10, 3, padding_idx=padding_idx)
    with pytest.raises(ConfigError, match=message) as caught:
        Embedding(10, 3, padding_idx=padding_idx)
    assert isinstance(caught.value, PaddingIdxError) and isinstance(caught.value, ValueError)
    with pytest.raises(AssertionError):  # torch raises the same built-in type
        nn.Embedding(10, 3, padding_idx=padding_idx)


def test_table_shape_errors_are_assertion_errors_too() -> None:
    with pytest.raises(AssertionError, match=r"_weight must have shape \(5, 2\); got \(4, 2\)"):
        Embedding(5, 2, _weight=torch.zeros(4, 2))
    with pytest.raises(TableShapeError, match=r"2-d \(V, D\).*got shape \(5,\)"):
        Embedding.from_pretrained(torch.randn(5))
    with pytest.raises(AssertionError):
        nn.Embedding.from_pretrained(torch.randn(5))


# ---------------------------------------------------------------- half-precision gradients

HALF = (torch.bfloat16, torch.float16)


def _dense_grad(layer: nn.Embedding, ids: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    layer.zero_grad(set_to_none=True)
    layer(ids).backward(grad)
    out = layer.weight.grad
    assert out is not None
    return out


@pytest.mark.parametrize("kernels", KERNEL_SETS)
@pytest.mark.parametrize("id_dtype", [torch.int64, torch.int32], ids=str)
@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_half_precision_dense_gradient_is_bit_equal_to_torch(dtype, id_dtype, kernels) -> None:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 10, (5_000,), generator=gen).to(id_dtype)  # many repeats per row
    grad = torch.randn(5_000, 4, generator=gen).to(dtype)
    theirs = nn.Embedding(10, 4, padding_idx=3, dtype=dtype)
    with use_kernels(kernels):
        ours = Embedding(10, 4, padding_idx=3, dtype=dtype)
        ours.load_state_dict(theirs.state_dict())
        got = _dense_grad(ours, ids, grad)
    assert torch.equal(got, _dense_grad(theirs, ids, grad))


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_float32_accumulation_is_more_accurate_and_the_same_in_both_kernel_sets(dtype) -> None:
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 10, (5_000,), generator=gen)
    grad = torch.randn(5_000, 4, generator=gen).to(dtype)
    exact = torch.zeros(10, 4, dtype=torch.float64).index_add_(0, ids, grad.double())
    exact[3] = 0
    grads = {}
    for kernels in KERNEL_SETS:
        with use_kernels(kernels):
            layer = Embedding(10, 4, padding_idx=3, dtype=dtype, grad_accumulation="float32")
            grads[kernels] = _dense_grad(layer, ids, grad)
            assert layer(ids[:3]).dtype == dtype
    assert torch.equal(grads["fast"], grads["reference"])
    torch_like = _dense_grad(nn.Embedding(10, 4, padding_idx=3, dtype=dtype), ids, grad)
    wide_error = (grads["fast"].double() - exact).abs().max()
    torch_error = (torch_like.double() - exact).abs().max()
    assert wide_error < torch_error / 4
    # one rounding of the exact float32 sum
    assert torch.equal(grads["fast"], exact.float().to(dtype))


def test_float32_accumulation_leaves_float32_tables_and_sparse_gradients_alone() -> None:
    ids = torch.tensor([1, 1, 2])
    for kwargs in ({}, {"dtype": torch.bfloat16, "sparse": True}):
        theirs = nn.Embedding(4, 2, **kwargs)  # type: ignore[arg-type]
        ours = Embedding(4, 2, grad_accumulation="float32", **kwargs)  # type: ignore[arg-type]
        ours.load_state_dict(theirs.state_dict())
        ours(ids).sum().backward()
        theirs(ids).sum().backward()
        assert ours.weight.grad is not None and theirs.weight.grad is not None
        assert torch.equal(ours.weight.grad.to_dense(), theirs.weight.grad.to_dense())


def test_grad_accumulation_is_checked_and_saved() -> None:
    with pytest.raises(ConfigError, match=r"'grad_accumulation' .* 'torch', 'float32'"):
        Embedding(4, 2, grad_accumulation="float64")  # type: ignore[arg-type]
    layer = Embedding(4, 2, grad_accumulation="float32", check_ids=False)
    config = layer.get_config()
    assert config["grad_accumulation"] == "float32" and config["check_ids"] is False
    again = Embedding.from_config(config)
    assert again.grad_accumulation == "float32" and not again.check_ids
    assert "grad_accumulation='float32'" in repr(layer)


def test_functional_lookup_of_our_weight_matches() -> None:
    layer = Embedding(6, 3, padding_idx=0)
    ids = torch.tensor([0, 5, 5])
    assert torch.equal(layer(ids), F.embedding(ids, layer.weight, padding_idx=0))
