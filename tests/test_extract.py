"""Tests for synthembed.extract: reading the output of a trained model's layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from synthembed.errors import ConfigError, ShapeError
from synthembed.extract import extract


class SmallCNN(nn.Module):
    """The founding document's CNN, sized for 8x8 inputs; returns (logits, embedding)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc1 = nn.Linear(4 * 4 * 4, 16)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(F.relu(self.bn(self.conv1(x))), 2)  # (B, 4, 4, 4)
        emb = F.relu(self.fc1(x.flatten(1)))  # (B, 16)
        return self.fc2(self.drop(emb)), emb


def manual_fc1(model: SmallCNN, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        model.eval()
        h = F.max_pool2d(F.relu(model.bn(model.conv1(x))), 2)
        return model.fc1(h.flatten(1))


@pytest.fixture
def cnn() -> SmallCNN:
    torch.manual_seed(0)
    model = SmallCNN()
    # Non-trivial running statistics, so train/eval mode changes the output.
    with torch.no_grad():
        model.bn.running_mean.uniform_(-1, 1)
        model.bn.running_var.uniform_(0.5, 2)
    return model


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(37, 1, 8, 8, generator=torch.Generator().manual_seed(1))


# --------------------------------------------------------------------------- values


def test_extract_equals_manual_forward_in_eval_mode(cnn: SmallCNN, images: torch.Tensor) -> None:
    cnn.train()
    got = extract(cnn, images, "fc1", batch_size=8, progress=False)
    expected = manual_fc1(cnn, images)
    assert got.shape == (37, 16)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    assert not got.is_inference()
    assert not got.requires_grad


def test_mode_restored_and_hook_removed_after_success(cnn: SmallCNN, images: torch.Tensor) -> None:
    cnn.train()
    cnn.drop.eval()  # a mixed state must come back exactly
    extract(cnn, images, "fc1", progress=False)
    assert cnn.training and cnn.fc1.training and cnn.bn.training
    assert not cnn.drop.training
    assert len(cnn.fc1._forward_hooks) == 0


class Exploding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(3, 2)
        self.head = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("boom in batch 2")
        return self.head(h)


def test_mode_restored_and_hook_removed_on_error(tmp_path) -> None:
    model = Exploding()
    model.train()
    model.head[1].eval()
    with pytest.raises(RuntimeError, match="boom in batch 2"):
        extract(model, torch.randn(10, 3), "fc1", batch_size=4, progress=False)
    assert model.training and model.fc1.training and model.head.training
    assert not model.head[1].training
    assert len(model.fc1._forward_hooks) == 0
    assert all(len(m._forward_hooks) == 0 for m in model.modules())
    # With out=, a failed run leaves neither the target nor a temporary file.
    model.calls = 0
    with pytest.raises(RuntimeError, match="boom"):
        extract(
            model, torch.randn(10, 3), "fc1", batch_size=4, out=tmp_path / "e.npy", progress=False
        )
    assert list(tmp_path.iterdir()) == []
    assert len(model.fc1._forward_hooks) == 0


def test_numpy_dataset_and_dataloader_inputs_agree(cnn: SmallCNN, images: torch.Tensor) -> None:
    expected = manual_fc1(cnn, images)
    from_numpy = extract(cnn, images.double().numpy(), "fc1", batch_size=10, progress=False)
    labels = torch.arange(37)
    dataset = TensorDataset(images, labels)  # batches are (x, y): x feeds the model
    from_dataset = extract(cnn, dataset, "fc1", batch_size=5, progress=False)
    loader = DataLoader(dataset, batch_size=7)
    from_loader = extract(cnn, loader, "fc1", progress=False)
    for got in (from_numpy, from_dataset, from_loader):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        assert got.dtype == torch.float32


def test_shuffled_loader_warns(cnn: SmallCNN, images: torch.Tensor) -> None:
    loader = DataLoader(TensorDataset(images), batch_size=8, shuffle=True)
    with pytest.warns(UserWarning, match="shuffle=True"):
        extract(cnn, loader, "fc1", progress=False)


def test_inplace_relu_after_layer_does_not_change_captured_values() -> None:
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("fc1", nn.Linear(4, 6))
    model.add_module("act", nn.ReLU(inplace=True))
    x = torch.randn(20, 4)
    got = extract(model, x, "fc1", progress=False)
    with torch.no_grad():
        expected = model.fc1(x)
    assert (expected < 0).any()
    torch.testing.assert_close(got, expected)


def test_dotted_names_and_whole_model_output() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Sequential(nn.Tanh(), nn.Linear(5, 3)))
    x = torch.randn(9, 4)
    with torch.no_grad():
        inner = torch.tanh(model[0](x))
        full = model(x)
    torch.testing.assert_close(extract(model, x, "1.0", progress=False), inner)
    torch.testing.assert_close(extract(model, x, None, progress=False), full)


class TupleDictModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 4)
        self.rnn = nn.GRU(4, 3, batch_first=True)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        h, _ = self.rnn(self.emb(input_ids))
        return {"last_hidden_state": h, "pooler_output": h[:, -1]}


class DictDataset(Dataset):
    """Hugging Face style rows: a dict of input_ids and attention_mask."""

    def __init__(self, ids: torch.Tensor, mask: torch.Tensor) -> None:
        self.ids, self.mask = ids, mask

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "attention_mask": self.mask[i]}


def test_tuple_and_dict_outputs_with_pooling_and_mask() -> None:
    torch.manual_seed(0)
    model = TupleDictModel()
    ids = torch.randint(0, 20, (6, 5))
    mask = torch.ones(6, 5, dtype=torch.long)
    mask[:, 3:] = 0
    data = DictDataset(ids, mask)
    with torch.no_grad():
        h, _ = model.rnn(model.emb(ids))  # (6, 5, 3)
    # GRU returns (output, h_n): the tuple's first item is taken by default;
    # mean/max pooling honours the batch's attention mask (positions 3, 4 dropped).
    got = extract(model, data, "rnn", mode="mean", batch_size=4, progress=False)
    torch.testing.assert_close(got, h[:, :3].mean(1))
    got_max = extract(model, data, "rnn", mode="max", batch_size=4, progress=False)
    torch.testing.assert_close(got_max, h[:, :3].amax(1))
    unpooled = extract(model, data, "rnn", batch_size=4, progress=False)
    torch.testing.assert_close(unpooled, h)
    # The model's own dict output: last_hidden_state by default, or a chosen key.
    first = extract(model, data, None, mode="first", progress=False)
    torch.testing.assert_close(first, h[:, 0])
    pooled = extract(model, data, None, select="pooler_output", progress=False)
    torch.testing.assert_close(pooled, h[:, -1])
    with pytest.raises(
        ConfigError, match=r"select='nope'.*keys \['last_hidden_state', 'pooler_output'\]"
    ):
        extract(model, data, None, select="nope", progress=False)
    # h_n is (num_layers, B, H): not batch-first, which extract refuses to stack.
    with pytest.raises(ShapeError, match=r"returned shape \(1, 4, 3\) for a batch of 4 rows"):
        extract(model, data, "rnn", select=1, batch_size=4, progress=False)
    with pytest.raises(
        ConfigError, match=r"select=2.*tuple of length 2; pass an int in the range \[0, 1\]"
    ):
        extract(model, data, "rnn", select=2, progress=False)


def test_conv_output_pooling(cnn: SmallCNN, images: torch.Tensor) -> None:
    with torch.no_grad():
        cnn.eval()
        maps = cnn.conv1(images)  # (37, 4, 8, 8)
    torch.testing.assert_close(
        extract(cnn, images, "conv1", mode="mean", progress=False), maps.mean((2, 3))
    )
    torch.testing.assert_close(
        extract(cnn, images, "conv1", mode="max", progress=False), maps.amax((2, 3))
    )
    torch.testing.assert_close(
        extract(cnn, images, "conv1", mode="flatten", progress=False), maps.flatten(1)
    )
    assert extract(cnn, images, "conv1", progress=False).shape == (37, 4, 8, 8)
    norms = extract(
        cnn, images, "conv1", mode=lambda t: t.flatten(1).norm(dim=1, keepdim=True), progress=False
    )
    torch.testing.assert_close(norms, maps.flatten(1).norm(dim=1, keepdim=True))


def test_variable_length_outputs_need_pooling() -> None:
    model = TupleDictModel()
    loader = [torch.randint(0, 20, (2, 5)), torch.randint(0, 20, (2, 7))]

    class Seq(Dataset):
        def __len__(self) -> int:
            return 2

        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            ids = loader[i][0]
            return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    with pytest.raises(ShapeError, match=r"per-row shape \(7, 3\).*\(5, 3\).*mode='mean'"):
        extract(model, Seq(), "rnn", batch_size=1, progress=False)


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize("suffix", [".npy", ".safetensors"])
def test_out_file_equals_in_memory(
    cnn: SmallCNN, images: torch.Tensor, tmp_path, suffix: str
) -> None:
    in_memory = extract(cnn, images, "fc1", batch_size=8, progress=False)
    target = tmp_path / f"emb{suffix}"
    mapped = extract(cnn, images, "fc1", batch_size=8, out=target, progress=False)
    assert torch.equal(mapped, in_memory)
    if suffix == ".npy":
        on_disk = np.load(target, mmap_mode="r")
        assert isinstance(on_disk, np.memmap)
        assert on_disk.dtype == np.float32 and on_disk.shape == (37, 16)
        assert np.array_equal(np.asarray(on_disk), in_memory.numpy())
    else:
        loaded = load_file(target)
        assert list(loaded) == ["embeddings"]
        assert torch.equal(loaded["embeddings"], in_memory)
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no temp files left


def test_out_file_streams_unknown_length_and_multi_dim(tmp_path) -> None:
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(1, 2, 3))
    x = torch.randn(5, 1, 6, 6)

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield from x

    # An IterableDataset has no len: the .npy header is written once the rows are counted.
    got = extract(conv, Stream(), "0", batch_size=2, out=tmp_path / "maps.npy", progress=False)
    with torch.no_grad():
        expected = conv(x)
    assert got.shape == (5, 2, 4, 4)
    torch.testing.assert_close(got, expected)
    assert np.load(tmp_path / "maps.npy").shape == (5, 2, 4, 4)


# --------------------------------------------------------------------------- errors


def test_missing_layer_lists_close_names(cnn: SmallCNN, images: torch.Tensor) -> None:
    with pytest.raises(
        ConfigError,
        match=r"layer='fc3', which is not a submodule of SmallCNN\. Close names: 'fc\d', 'fc\d'",
    ):
        extract(cnn, images, "fc3")
    with pytest.raises(
        ConfigError, match=r"layer='zzz'.*Its submodules are: 'conv1', 'bn', 'fc1', 'drop', 'fc2'"
    ):
        extract(cnn, images, "zzz")


def test_layer_that_never_runs() -> None:
    holder = nn.Module()
    holder.body = nn.Linear(3, 3)
    holder.spare = nn.Linear(3, 3)
    holder.forward = lambda x: holder.body(x)  # type: ignore[method-assign]
    with pytest.raises(
        ConfigError, match=r"Layer 'spare' of Module did not run during the forward pass"
    ):
        extract(holder, torch.randn(4, 3), "spare", progress=False)
    assert len(holder.spare._forward_hooks) == 0


def test_argument_errors(cnn: SmallCNN, images: torch.Tensor, tmp_path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"'batch_size' parameter of extract must be an int in the range \[1, inf\)\. Got 0",
    ):
        extract(cnn, images, batch_size=0)
    with pytest.raises(
        ConfigError,
        match=r"'mode' parameter of extract must be one of 'mean', 'max', 'first', 'flatten'\. Got 'avg'",
    ):
        extract(cnn, images, mode="avg")  # type: ignore[arg-type]
    with pytest.raises(
        ConfigError, match=r"'out' parameter of extract must end in \.npy or \.safetensors"
    ):
        extract(cnn, images, out=tmp_path / "x.csv")
    with pytest.raises(ShapeError, match="data of type list"):
        extract(cnn, [images], "fc1")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"needs a torch\.nn\.Module"):
        extract(lambda x: x, images)  # type: ignore[arg-type]


def test_warns_when_layer_runs_twice() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc1(torch.relu(self.fc1(x)))

    model = Twice()
    x = torch.randn(4, 3)
    with pytest.warns(UserWarning, match="ran 2 times in one forward pass"):
        got = extract(model, x, "fc1", progress=False)
    with torch.no_grad():
        torch.testing.assert_close(got, model(x))  # the last call's output


def test_pool_is_the_deprecated_name_of_mode() -> None:
    model = nn.Sequential()
    model.add_module("rnn", nn.Linear(3, 2))
    data = torch.randn(4, 5, 3)
    with pytest.warns(
        DeprecationWarning,
        match=r"extract\(pool=\.\.\.\) is deprecated; use extract\(mode=\.\.\.\)",
    ):
        old = extract(model, data, "rnn", pool="mean", progress=False)
    assert torch.equal(old, extract(model, data, "rnn", mode="mean", progress=False))
