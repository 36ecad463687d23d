"""Tests for synthembed.io: atomic writes, save/load, save_weights/load_weights."""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from synthembed import io as sio
from synthembed.errors import FileFormatError
from synthembed.layers.embedding import Embedding
from synthembed.vocab import Vocabulary


def _rewrite_metadata(path, edit) -> None:
    """Rewrite the synthembed header of a saved file through ``edit(header)``."""
    tensors = sio.read_tensors(path)
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(json.loads(raw[8 : 8 + n])["__metadata__"]["synthembed"])
    edit(header)
    save_file(tensors, path, metadata={"synthembed": json.dumps(header)})


# ---------------------------------------------------------------- atomic_write


def test_atomic_write_replaces_only_on_success(tmp_path) -> None:
    target = tmp_path / "out.txt"
    with sio.atomic_write(target, "w") as handle:
        handle.write("first")
    assert target.read_text() == "first"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    with pytest.raises(RuntimeError, match="mid-write"), sio.atomic_write(target, "w") as handle:
        handle.write("second, half")
        raise RuntimeError("mid-write")
    assert target.read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]  # no temp file left
    os.chmod(target, 0o600)
    with sio.atomic_write(target, "wb") as handle:
        handle.write(b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # existing permissions kept


# ---------------------------------------------------------------- save / load


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"padding_idx": 0, "max_norm": 3.0, "norm_type": 1.0, "sparse": True},
        {"mode": "mean", "dtype": torch.float64},
        {"scale_grad_by_freq": True, "check_finite": True},
    ],
)
def test_save_load_round_trip_is_bit_exact(tmp_path, kwargs) -> None:
    layer = Embedding(50, 6, **kwargs)
    path = tmp_path / "emb.safetensors"
    sio.save(layer, path)
    loaded = sio.load(path)
    assert isinstance(loaded, Embedding)
    assert loaded.get_config() == layer.get_config()
    assert torch.equal(loaded.weight, layer.weight)
    assert loaded.weight.dtype == layer.weight.dtype
    ids = torch.randint(0, 50, (4, 5))
    assert torch.equal(loaded(ids), layer(ids))


def test_save_load_keeps_vocab_frozen_state_and_growth(tmp_path) -> None:
    vocab = Vocabulary.build(["a", "b", "a"], oov="hash", num_oov_buckets=2)
    layer = Embedding.from_pretrained(torch.randn(len(vocab), 3), vocab=vocab)
    vocab.add("c")
    layer.grow(1)
    sio.save(layer, tmp_path / "e.safetensors")
    loaded = sio.load(tmp_path / "e.safetensors")
    assert loaded.vocab == vocab and loaded.vocab.oov == "hash"
    assert not loaded.weight.requires_grad and loaded.num_embeddings == len(vocab)
    assert torch.equal(loaded.lookup(["c", "zzz"]), layer.lookup(["c", "zzz"]))


def test_save_refuses_non_synthembed_modules(tmp_path) -> None:
    with pytest.raises(TypeError, match=r"got Linear\. Save any other model's weights with"):
        sio.save(nn.Linear(2, 2), tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_load_truncated_file(tmp_path) -> None:
    path = tmp_path / "e.safetensors"
    sio.save(Embedding(100, 8), path)
    data = path.read_bytes()
    for cut in (len(data) - 10, len(data) // 2, 20, 4, 0):
        path.write_bytes(data[:cut])
        with pytest.raises(FileFormatError, match=r"not a readable safetensors file.*truncated"):
            sio.load(path)


def test_load_detects_changed_tensor_bytes(tmp_path) -> None:
    path = tmp_path / "e.safetensors"
    sio.save(Embedding(10, 4), path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match="failed its checksum"):
        sio.load(path)


def test_load_rejects_newer_version_unknown_class_and_bad_config(tmp_path) -> None:
    path = tmp_path / "e.safetensors"
    sio.save(Embedding(10, 4), path)
    _rewrite_metadata(path, lambda h: h.update(format_version=2))
    with pytest.raises(
        FileFormatError, match="format version 2; this synthembed reads versions 1 to 1"
    ):
        sio.load(path)
    sio.save(Embedding(10, 4), path)
    _rewrite_metadata(path, lambda h: h.update({"class": "os.system"}))
    with pytest.raises(
        FileFormatError, match=r"holds a 'os.system'.*known classes: \[.*'Embedding'"
    ):
        sio.load(path)
    sio.save(Embedding(10, 4), path)
    _rewrite_metadata(path, lambda h: h["config"].update(embedding_dim=0))
    # Refused by the layer (invalid configuration) or by the shape check against the file.
    with pytest.raises(FileFormatError, match=r"Embedding configuration.*'embedding_dim'"):
        sio.load(path)
    sio.save(Embedding(10, 4), path)
    _rewrite_metadata(path, lambda h: h["config"].update(bogus=1))
    with pytest.raises(FileFormatError, match=r"invalid Embedding configuration.*bogus"):
        sio.load(path)


def test_load_rejects_tensors_that_do_not_match_the_config(tmp_path) -> None:
    path = tmp_path / "e.safetensors"
    sio.save(Embedding(10, 4), path)
    _rewrite_metadata(path, lambda h: h["config"].update(num_embeddings=12))
    with pytest.raises(
        FileFormatError, match=r"tensor 'weight' has shape \(10, 4\).*expects shape \(12, 4\)"
    ):
        sio.load(path)


def test_load_rejects_plain_and_weights_only_files(tmp_path) -> None:
    plain = tmp_path / "plain.safetensors"
    save_file({"weight": torch.zeros(2, 2)}, plain)
    with pytest.raises(FileFormatError, match=r"without synthembed metadata.*load_weights"):
        sio.load(plain)
    weights = tmp_path / "w.safetensors"
    sio.save_weights(Embedding(3, 2), weights)
    with pytest.raises(FileFormatError, match=r"holds weights only.*load_weights"):
        sio.load(weights)
    with pytest.raises(FileNotFoundError, match="No saved synthembed file"):
        sio.load(tmp_path / "absent.safetensors")
    # read_tensors reads plain safetensors files from other libraries as they are.
    assert torch.equal(sio.read_tensors(plain)["weight"], torch.zeros(2, 2))


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch) -> None:
    path = tmp_path / "e.safetensors"
    first = Embedding(5, 2)
    sio.save(first, path)
    before = path.read_bytes()

    def broken(self: Embedding) -> dict:
        return {"not json": object()}

    monkeypatch.setattr(Embedding, "get_config", broken)
    with pytest.raises(TypeError):
        sio.save(Embedding(5, 2), path)
    assert path.read_bytes() == before


# ---------------------------------------------------------------- save_weights / load_weights


class _Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = Embedding(20, 4)
        self.out = nn.Linear(4, 20, bias=False)
        self.out.weight = self.emb.weight  # tied input/output embedding


def test_tied_weights_saved_once_and_reloaded_tied(tmp_path) -> None:
    model = _Tied()
    path = tmp_path / "tied.safetensors"
    sio.save_weights(model, path)
    stored = sio.read_tensors(path)
    assert set(stored) == {"emb.weight", "out.weight"}
    assert stored["emb.weight"].data_ptr() == stored["out.weight"].data_ptr()
    fresh = sio.load_weights(_Tied(), path)
    assert fresh.out.weight is fresh.emb.weight
    assert torch.equal(fresh.emb.weight, model.emb.weight)


def test_load_weights_checks_every_tensor_before_copying(tmp_path) -> None:
    path = tmp_path / "w.safetensors"
    sio.save_weights(nn.Sequential(Embedding(10, 4), nn.Linear(4, 2)), path)
    target = nn.Sequential(Embedding(10, 4), nn.Linear(4, 3))
    before = target[0].weight.detach().clone()
    with pytest.raises(
        FileFormatError, match=r"'1.weight' has shape \(2, 4\).*expects shape \(3, 4\)"
    ):
        sio.load_weights(target, path)
    assert torch.equal(target[0].weight, before)  # nothing was copied
    with pytest.raises(
        FileFormatError, match=r"missing tensors \[\], unexpected tensors \['1.bias', '1.weight'\]"
    ):
        sio.load_weights(nn.Sequential(Embedding(10, 4)), path)
    half = nn.Sequential(Embedding(10, 4), nn.Linear(4, 2)).double()
    with pytest.raises(FileFormatError, match=r"dtype torch.float32.*dtype torch.float64"):
        sio.load_weights(half, path)


def test_weights_of_views_sharing_one_storage_are_saved(tmp_path) -> None:
    class Views(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            base = torch.arange(12.0)
            self.register_buffer("a", base[:6].view(2, 3))
            self.register_buffer("b", base[6:].view(2, 3))

    path = tmp_path / "v.safetensors"
    sio.save_weights(Views(), path)
    loaded = sio.read_tensors(path)
    assert loaded["b"].tolist() == [[6.0, 7.0, 8.0], [9.0, 10.0, 11.0]]
