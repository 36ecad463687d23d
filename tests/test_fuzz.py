"""Property-based fuzzing of the public API (hypothesis).

Bounded by the ``ci`` profile of ``tests/conftest.py`` (a few dozen examples,
derandomized); ``SYNTHEMBED_FUZZ=long`` selects the ``long`` profile for a
much longer search. Properties:

- Vocabulary: encode/decode and save/load round trips with arbitrary Unicode
  tokens (lone surrogates included) and ints; unknown tokens land in range.
- Every layer accepts any valid id tensor shape (0-sized dims included) and
  gives ``(*, D)``; every invalid id tensor raises one of our error types.
- save/load is bit-exact for random configurations of every savable layer.
- Readers of files from the internet (vector files, saved layers, vocabulary
  JSON) raise nothing but our documented errors on random and mutated bytes.
"""

from __future__ import annotations

import functools
import gzip
import json
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from torch import nn

from synthembed import io as sio
from synthembed.errors import FileFormatError, SynthembedError
from synthembed.layers.compressed import (
    DHEEmbedding,
    HashEmbedding,
    LowRankEmbedding,
    MixedDimEmbedding,
    QREmbedding,
)
from synthembed.layers.embedding import Embedding
from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer
from synthembed.pretrained import load_vectors
from synthembed.vocab import Vocabulary

V, D = 12, 4

# ---------------------------------------------------------------- strategies

# Every code point, surrogates included (hypothesis leaves category Cs out by default).
any_char = st.characters(codec=None, exclude_categories=())
SPECIALS = ("<pad>", "<unk>")
tokens = st.one_of(
    st.text(any_char, min_size=0, max_size=12).filter(lambda t: t not in SPECIALS),
    st.integers(-(2**62), 2**62),
)
shapes = st.lists(st.integers(0, 3), min_size=0, max_size=4).map(tuple)


def _bytes(t: torch.Tensor) -> tuple[str, tuple[int, ...], bytes]:
    c = t.detach().cpu().contiguous().reshape(-1)
    return str(t.dtype), tuple(t.shape), c.view(torch.uint8).numpy().tobytes() if c.numel() else b""


def _state(module: nn.Module) -> dict[str, Any]:
    return {k: _bytes(v) for k, v in module.state_dict().items()}


# ---------------------------------------------------------------- Vocabulary


@given(st.lists(tokens, max_size=30, unique=True), st.sampled_from(["error", "unk", "hash"]))
def test_vocabulary_round_trips_arbitrary_unicode(items: list[Any], oov: str) -> None:
    vocab = Vocabulary(items, oov=oov, num_oov_buckets=3 if oov == "hash" else None)  # type: ignore[arg-type]
    ids = vocab.encode(items)
    assert ids.dtype == torch.long and ids.shape == (len(items),)
    assert vocab.decode(ids, strip_padding=False) == items
    assert Vocabulary.from_dict(json.loads(json.dumps(vocab.to_dict()))) == vocab
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.json"
        vocab.save(path)
        loaded = Vocabulary.load(path)
    assert loaded == vocab
    assert loaded.encode(items).tolist() == ids.tolist()


@given(st.lists(tokens, max_size=10, unique=True), st.lists(tokens, max_size=10))
def test_vocabulary_unknown_tokens_follow_policy(known: list[Any], queries: list[Any]) -> None:
    hashed = Vocabulary(known, oov="hash", num_oov_buckets=4)
    unk = Vocabulary(known, oov="unk")
    strict = Vocabulary(known, oov="error")
    for q in queries:
        if q in known:
            continue
        assert hashed.num_specials <= hashed.encode(q) < hashed.first_token_id
        assert unk.encode(q) == unk.unk_id
        with pytest.raises(SynthembedError):
            strict.encode(q)


@given(st.lists(st.lists(tokens, max_size=5), max_size=5))
def test_vocabulary_batches_pad_and_mask(sequences: list[list[Any]]) -> None:
    vocab = Vocabulary(oov="unk")
    batch = vocab.encode_batch(sequences)
    width = max((len(s) for s in sequences), default=0)
    assert batch.ids.shape == (len(sequences), width)
    assert batch.lengths.tolist() == [len(s) for s in sequences]
    assert batch.mask.sum().item() == sum(len(s) for s in sequences)
    assert bool((batch.ids[~batch.mask] == vocab.pad_id).all())


# ---------------------------------------------------------------- layers and ids


@functools.cache
def _layers() -> dict[str, tuple[nn.Module, bool]]:
    """name -> (layer of V ids and dimension D, whether any non-negative id is valid)."""
    torch.manual_seed(0)
    side = torch.rand(V, 3)
    layers: dict[str, tuple[nn.Module, bool]] = {
        "embedding": (Embedding(V, D), False),
        "embedding-padding": (Embedding(V, D, padding_idx=0, max_norm=1.0), False),
        "hash": (HashEmbedding(V, D), True),
        "qr": (QREmbedding(V, D), True),
        "dhe": (DHEEmbedding(V, D, num_hashes=8, hidden_dims=(8,)), True),
        "lowrank": (LowRankEmbedding(V, D, rank=2), False),
        "mixed": (MixedDimEmbedding(V, D), False),
    }
    for technique in ("combination", "autoencoder", "gan", "manifold"):
        layer = SyntheticEmbeddingLayer(
            V,
            D,
            synthesis_rate=0.5,
            technique=technique,
            side_features=side,
            train_synthetic_fraction=0.2,
        )
        layers[f"synthetic-{technique}"] = (layer, False)
    layers["synthetic-qr"] = (SyntheticEmbeddingLayer(V, D, synthesis_rate=0.5, base="qr"), True)
    return layers


LAYER_NAMES = [
    "embedding",
    "embedding-padding",
    "hash",
    "qr",
    "dhe",
    "lowrank",
    "mixed",
    "synthetic-combination",
    "synthetic-autoencoder",
    "synthetic-gan",
    "synthetic-manifold",
    "synthetic-qr",
]


@pytest.mark.parametrize("name", LAYER_NAMES)
@given(
    shape=shapes,
    seed=st.integers(0, 2**31 - 1),
    dtype=st.sampled_from([torch.long, torch.int32, torch.int16, torch.uint8]),
    training=st.booleans(),
)
def test_layers_accept_any_valid_id_shape(
    name: str, shape: tuple[int, ...], seed: int, dtype: torch.dtype, training: bool
) -> None:
    layer, _ = _layers()[name]
    layer.train(training)
    ids = torch.randint(0, V, shape, generator=torch.Generator().manual_seed(seed)).to(dtype)
    out = layer(ids)
    assert out.shape == (*shape, D)
    assert out.dtype == torch.float32
    assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize("name", LAYER_NAMES)
@given(
    shape=shapes.filter(lambda s: all(s)),
    seed=st.integers(0, 2**31 - 1),
    bad=st.one_of(st.integers(-(2**62), -1), st.integers(V, 2**62)),
    kind=st.sampled_from(["value", "bool", "float", "list"]),
)
def test_layers_reject_invalid_ids_with_our_errors(
    name: str, shape: tuple[int, ...], seed: int, bad: int, kind: str
) -> None:
    layer, any_id = _layers()[name]
    layer.eval()
    ids = torch.randint(0, V, shape, generator=torch.Generator().manual_seed(seed))
    if kind == "value":
        assume(not (any_id and bad >= 0))  # hashing bases take any non-negative id
        flat = ids.reshape(-1)
        flat[seed % max(flat.numel(), 1)] = bad
        bad_input: Any = flat.reshape(shape)
        expected: type[Exception] = IndexError
    elif kind == "bool":
        bad_input, expected = ids > V // 2, ValueError
    elif kind == "float":
        # Float ids whose last dimension is not V: never a valid soft lookup.
        bad_input, expected = ids.float().reshape(*shape, 1), ValueError
    else:
        bad_input, expected = ids.tolist(), ValueError
    before = _state(layer)
    with pytest.raises(SynthembedError) as info:
        layer(bad_input)
    assert isinstance(info.value, expected)
    assert _state(layer) == before


@given(
    rows=st.integers(1, 4),
    seed=st.integers(0, 2**31 - 1),
    bad=st.sampled_from([float("nan"), float("inf"), -float("inf")]),
)
def test_soft_lookup_rejects_nonfinite_input(rows: int, seed: int, bad: float) -> None:
    for name in ("embedding", "synthetic-combination"):
        layer, _ = _layers()[name]
        x = torch.rand(rows, V, generator=torch.Generator().manual_seed(seed))
        x[seed % rows, seed % V] = bad
        with pytest.raises(SynthembedError) as info:
            layer(x)
        assert isinstance(info.value, ValueError)


# ---------------------------------------------------------------- save/load bit-exact


def _round_trip(layer: nn.Module) -> nn.Module:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "layer.safetensors"
        sio.save(layer, path)
        loaded = sio.load(path)
    assert type(loaded) is type(layer)
    assert _state(loaded) == _state(layer)
    assert json.dumps(loaded.get_config(), sort_keys=True, default=repr) == json.dumps(  # type: ignore[operator]
        layer.get_config(),  # type: ignore[operator]
        sort_keys=True,
        default=repr,
    )
    return loaded


def _same_outputs(a: nn.Module, b: nn.Module, ids: torch.Tensor) -> None:
    a.eval()
    b.eval()
    with torch.no_grad():
        assert _bytes(a(ids)) == _bytes(b(ids))


@st.composite
def embedding_configs(draw: Callable[..., Any]) -> Embedding:
    n = draw(st.integers(0, 20))
    dim = draw(st.integers(1, 6))
    with_vocab = draw(st.booleans()) and n >= 2
    vocab = None
    if with_vocab:
        words = draw(
            st.lists(st.text(any_char, max_size=6), min_size=0, max_size=n - 2, unique=True)
        )
        vocab = Vocabulary(words)
        n = max(n, len(vocab))
    padding = draw(st.one_of(st.none(), st.integers(0, n - 1))) if n else None
    layer = Embedding(
        n,
        dim,
        padding_idx=padding,
        max_norm=draw(st.one_of(st.none(), st.floats(0.1, 5.0))),
        dtype=draw(st.sampled_from([torch.float32, torch.float64])),
        vocab=vocab,
        mode=draw(st.sampled_from([None, "sum", "mean", "max"])),
        check_finite=draw(st.booleans()),
    )
    torch.manual_seed(draw(st.integers(0, 2**31 - 1)))
    with torch.no_grad():
        layer.weight.normal_()
    if draw(st.booleans()):
        layer.freeze()
    return layer


@given(embedding_configs())
def test_embedding_save_load_bit_exact(layer: Embedding) -> None:
    loaded = _round_trip(layer)
    assert loaded.weight.requires_grad == layer.weight.requires_grad
    if layer.num_embeddings:
        ids = torch.arange(layer.num_embeddings).reshape(1, -1)
        _same_outputs(layer, loaded, ids)


@st.composite
def compressed_configs(draw: Callable[..., Any]) -> nn.Module:
    kind = draw(st.sampled_from(["hash", "qr", "dhe", "lowrank", "mixed"]))
    n = draw(st.integers(2, 40))
    dim = draw(st.integers(2, 8))
    padding = draw(st.one_of(st.none(), st.integers(0, n - 1)))
    torch.manual_seed(draw(st.integers(0, 2**31 - 1)))
    if kind == "hash":
        buckets = draw(st.integers(2, 16))
        return HashEmbedding(
            n,
            dim,
            padding,
            num_buckets=buckets,
            num_hashes=draw(st.integers(1, buckets)),
            seed=draw(st.integers(0, 1000)),
        )
    if kind == "qr":
        return QREmbedding(
            n,
            dim,
            padding,
            num_partitions=draw(st.integers(2, 3)),
            operation=draw(st.sampled_from(["product", "sum", "concat"])),
            seed=draw(st.integers(0, 1000)),
        )
    if kind == "dhe":
        return DHEEmbedding(
            n,
            dim,
            padding,
            num_hashes=2 * draw(st.integers(1, 6)),
            hidden_dims=(8,),
            distribution=draw(st.sampled_from(["uniform", "gaussian"])),
            seed=draw(st.integers(0, 1000)),
        )
    if kind == "lowrank":
        return LowRankEmbedding(n, dim, padding, rank=draw(st.integers(1, dim)))
    return MixedDimEmbedding(n, dim, padding, num_blocks=draw(st.integers(1, 3)))


@given(compressed_configs())
def test_compressed_save_load_bit_exact(layer: nn.Module) -> None:
    loaded = _round_trip(layer)
    n = int(layer.num_embeddings)  # type: ignore[arg-type]
    _same_outputs(layer, loaded, torch.arange(n - n % 2).reshape(2, -1))


@st.composite
def synthetic_configs(draw: Callable[..., Any]) -> SyntheticEmbeddingLayer:
    n = draw(st.integers(2, 16))
    dim = draw(st.integers(1, 6))
    technique = draw(st.sampled_from(["combination", "autoencoder", "gan"]))
    side = (
        torch.rand(n, draw(st.integers(1, 4)))
        if draw(st.booleans()) or technique == "gan"
        else None
    )
    torch.manual_seed(draw(st.integers(0, 2**31 - 1)))
    adaptive = draw(st.booleans())
    # An adaptive rate is sigmoid(logit): it starts strictly inside (0, 1).
    rate = draw(st.floats(0.01, 0.99) if adaptive else st.floats(0.0, 1.0))
    layer = SyntheticEmbeddingLayer(
        n,
        dim,
        synthesis_rate=rate,
        technique=technique,
        side_features=side,
        padding_idx=draw(st.one_of(st.none(), st.integers(0, n - 1))),
        base=draw(st.sampled_from(["full", "qr", "hash"])),
        adaptive=adaptive,
        schedule=draw(st.one_of(st.none(), st.tuples(st.just("linear"), st.integers(0, 10)))),
        cold_threshold=draw(st.integers(0, 3)),
        train_synthetic_fraction=draw(st.floats(0.0, 1.0)),
    )
    # Train-mode forwards move the counts, the step and (through the loss) nothing else.
    for _ in range(draw(st.integers(0, 3))):
        layer.train()(torch.randint(0, n, (4,)))
    return layer


@given(synthetic_configs())
def test_synthetic_save_load_bit_exact(layer: SyntheticEmbeddingLayer) -> None:
    loaded = _round_trip(layer)
    _same_outputs(layer, loaded, torch.arange(layer.input_dim))


def test_synthetic_manifold_save_load_bit_exact() -> None:
    layer, _ = _layers()["synthetic-manifold"]
    loaded = _round_trip(layer)
    _same_outputs(layer, loaded, torch.arange(V))


# ---------------------------------------------------------------- readers of untrusted bytes

VALID_VECTORS = b"the 0.1 0.2 0.3\ncat -1 2.5 1e-3\ndog 4 5 6\n"
VALID_W2V = b"3 3\n" + VALID_VECTORS


def _mutations(seed_content: bytes) -> st.SearchStrategy[bytes]:
    def mutate(data: tuple[int, int, bytes, bool]) -> bytes:
        position, cut, insert, gz = data
        body = bytearray(seed_content)
        pos = position % (len(body) + 1)
        out = bytes(body[:pos]) + insert + bytes(body[pos + cut :])
        return gzip.compress(out)[: max(1, len(out))] if gz else out

    return st.tuples(
        st.integers(0, 200), st.integers(0, 8), st.binary(max_size=6), st.booleans()
    ).map(mutate)


VALID_TABS = b"2\t3\nthe\t0.1\t0.2\t0.3\ncat\t-1\t2.5\t1e-3\n"

untrusted_vectors = st.one_of(
    st.binary(max_size=200),
    _mutations(VALID_VECTORS),
    _mutations(VALID_W2V),
    _mutations(VALID_TABS),  # tab-separated
    _mutations(b"3 4\n" + VALID_VECTORS),  # a header that disagrees with its rows
    st.binary(max_size=60).map(lambda b: b"\x80\x02cgensim.models\n" + b),  # a gensim pickle
    st.binary(max_size=60).map(lambda b: b"\x93NUMPY" + b),  # a NumPy array
    st.binary(max_size=60).map(lambda b: b"\x1f\x8b" + b),  # claims gzip
    st.binary(max_size=60).map(lambda b: b"2 3\n" + b),  # claims word2vec (text or binary)
)


@given(untrusted_vectors, st.sampled_from(["auto", "glove", "word2vec", "word2vec-binary"]))
def test_vector_reader_raises_only_documented_errors(data: bytes, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vectors.txt"
        path.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                vectors = load_vectors(path, fmt, cache=False)  # type: ignore[arg-type]
            except FileFormatError as exc:
                assert "vectors.txt" in str(exc)
                return
    assert vectors.vectors.dim() == 2
    assert bool(torch.isfinite(vectors.vectors).all())


@functools.cache
def _saved_layer_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "l.safetensors"
        torch.manual_seed(0)
        sio.save(Embedding(4, 2, vocab=Vocabulary(["a", "b"])), path)
        return path.read_bytes()


@given(st.data())
def test_layer_loader_raises_only_documented_errors(data: st.DataObject) -> None:
    raw = bytearray(_saved_layer_bytes())
    choice = data.draw(st.sampled_from(["flip", "cut", "random"]))
    if choice == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            index = data.draw(st.integers(0, len(raw) - 1))
            raw[index] ^= data.draw(st.integers(1, 255))
    elif choice == "cut":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        raw = bytearray(data.draw(st.binary(max_size=300)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "l.safetensors"
        path.write_bytes(bytes(raw))
        try:
            sio.load(path)
        except FileFormatError as exc:
            assert "l.safetensors" in str(exc)


@functools.cache
def _saved_layers() -> dict[str, bytes]:
    """A saved file of each layer family whose configuration the fuzzer edits."""
    torch.manual_seed(0)
    layers: dict[str, nn.Module] = {
        "embedding": Embedding(4, 2, vocab=Vocabulary(["a", "b"])),
        "hash": HashEmbedding(100, 4, num_buckets=8),
        "qr": QREmbedding(100, 4),
        "dhe": DHEEmbedding(100, 4),
        "lowrank": LowRankEmbedding(10, 4, rank=2),
        "mixed": MixedDimEmbedding(10, 4),
        "synthetic": SyntheticEmbeddingLayer(10, 4),
    }
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, layer in layers.items():
            path = Path(tmp) / f"{name}.safetensors"
            sio.save(layer, path)
            out[name] = path.read_bytes()
    return out


def _config_paths(config: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(config, dict):
        return [p for k, v in config.items() for p in _config_paths(v, (*prefix, k))] + [prefix]
    if isinstance(config, list):
        return [p for i, v in enumerate(config) for p in _config_paths(v, (*prefix, i))] + [prefix]
    return [prefix]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)  # huge sizes included: they must never be allocated
    | st.sampled_from([0, 1, 2**31, 4_000_000_000, 2**40])
    | st.floats()
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@given(st.data())
def test_layer_loader_checks_the_config_before_building(data: st.DataObject) -> None:
    """Any configuration value replaced by any JSON value (the tensors and checksum intact):
    only FileFormatError naming the file, or a layer whose tensors are the file's."""
    from safetensors.torch import load as st_load
    from safetensors.torch import save as st_save

    name = data.draw(st.sampled_from(sorted(_saved_layers())))
    raw = _saved_layers()[name]
    header = json.loads(
        json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])["__metadata__"]["synthembed"]
    )
    where = data.draw(st.sampled_from(_config_paths(header["config"])))
    value = data.draw(json_values)
    if not where:
        header["config"] = value
    else:
        node = header["config"]
        for key in where[:-1]:
            node = node[key]
        node[where[-1]] = value
    edited = st_save(st_load(raw), metadata={"synthembed": json.dumps(header)})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cfg.safetensors"
        path.write_bytes(edited)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                layer = sio.load(path)
        except FileFormatError as exc:
            assert "cfg.safetensors" in str(exc)
            return
    assert sum(t.numel() for t in layer.state_dict().values()) < 10**6


@given(st.data())
def test_vocabulary_loader_raises_only_documented_errors(data: st.DataObject) -> None:
    payload = Vocabulary(["a", "b"]).to_dict()
    choice = data.draw(st.sampled_from(["field", "drop-checksum-field", "random"]))
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=6,
    )
    if choice == "random":
        raw = data.draw(st.binary(max_size=200))
    else:
        key = data.draw(st.sampled_from(sorted(payload)))
        payload[key] = data.draw(json_values)
        if choice == "drop-checksum-field":
            payload.pop("checksum", None)
        raw = json.dumps(payload).encode()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.json"
        path.write_bytes(raw)
        try:
            Vocabulary.load(path)
        except FileFormatError as exc:
            assert "v.json" in str(exc)
