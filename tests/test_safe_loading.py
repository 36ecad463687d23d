"""Safe loading: no load path runs code from a file, checksums name the file, ties survive.

Each malicious file here is a real exploit: a pickle whose unpickling runs
``os.system("touch <marker>")``. A control test unpickles one copy on purpose
and sees the marker appear, so the refusal tests below cannot pass because the
payload was inert.
"""

from __future__ import annotations

import ast
import io as _io
import json
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from synthembed import io as sio
from synthembed.errors import FileFormatError
from synthembed.layers.embedding import Embedding
from synthembed.pretrained import load_vectors
from synthembed.vocab import Vocabulary

SRC = Path(__file__).resolve().parents[1] / "src" / "synthembed"


class _Exploit:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch '{self.marker}'",))


def _pickle_payload(marker: Path) -> bytes:
    return pickle.dumps({"weight": _Exploit(marker)}, protocol=2)


def _torch_zip_payload(marker: Path) -> bytes:
    """A torch.save-style zip archive whose data.pkl is the exploit."""
    buffer = _io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", _pickle_payload(marker))
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()


def _safetensors_prefixed_payload(marker: Path) -> bytes:
    """A plausible safetensors header whose tensor bytes are a pickle."""
    body = _pickle_payload(marker)
    header = json.dumps(
        {"weight": {"dtype": "U8", "shape": [len(body)], "data_offsets": [0, len(body)]}}
    ).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + body


PAYLOADS = {
    "raw_pickle": _pickle_payload,
    "torch_zip": _torch_zip_payload,
    "safetensors_wrapping_pickle": _safetensors_prefixed_payload,
}


def test_control_the_payload_is_live(tmp_path: Path) -> None:
    """Unpickling the payload really does create the marker (so refusals below mean something)."""
    marker = tmp_path / "control-marker"
    pickle.loads(_pickle_payload(marker))
    assert marker.exists()


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_synthembed_load_refuses_pickle_without_executing(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "pwned"
    planted = tmp_path / "model.safetensors"
    planted.write_bytes(PAYLOADS[kind](marker))
    with pytest.raises(FileFormatError, match=r"model\.safetensors"):
        sio.load(planted)
    assert not marker.exists()


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_load_weights_refuses_pickle_without_executing(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "pwned"
    planted = tmp_path / "weights.safetensors"
    planted.write_bytes(PAYLOADS[kind](marker))
    layer = Embedding(4, 2)
    before = layer.weight.detach().clone()
    with pytest.raises(FileFormatError, match=r"weights\.safetensors"):
        sio.load_weights(layer, planted)
    assert not marker.exists()
    assert torch.equal(layer.weight, before)


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_vocabulary_load_refuses_pickle_without_executing(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "pwned"
    planted = tmp_path / "vocab.json"
    planted.write_bytes(PAYLOADS[kind](marker))
    with pytest.raises(FileFormatError, match=r"vocab\.json"):
        Vocabulary.load(planted)
    assert not marker.exists()


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
@pytest.mark.parametrize("fmt", ["auto", "glove", "word2vec-binary"])
def test_load_vectors_refuses_pickle_without_executing(tmp_path: Path, kind: str, fmt: str) -> None:
    marker = tmp_path / "pwned"
    planted = tmp_path / "vectors.txt"
    planted.write_bytes(PAYLOADS[kind](marker))
    with pytest.raises(FileFormatError, match=r"vectors\.txt"):
        load_vectors(planted, fmt, cache=False)  # type: ignore[arg-type]
    assert not marker.exists()


def test_load_vectors_cache_with_pickled_array_is_not_unpickled(tmp_path: Path) -> None:
    """A cache .npy replaced by an object array (which np.load would unpickle) is ignored."""
    np = pytest.importorskip("numpy")
    source = tmp_path / "vectors.txt"
    source.write_text("cat 1 0\ndog 0 1\n", encoding="utf-8")
    cache_dir = tmp_path / "cache"
    load_vectors(source, cache=True, cache_dir=cache_dir)
    (npy,) = cache_dir.glob("*.npy")
    marker = tmp_path / "pwned"
    evil = np.empty((2, 2), dtype=object)
    evil[0, 0] = _Exploit(marker)
    with open(npy, "wb") as handle:
        np.save(handle, evil, allow_pickle=True)
    vectors = load_vectors(source, cache=True, cache_dir=cache_dir)
    assert not marker.exists()
    assert vectors["dog"].tolist() == [0.0, 1.0]


def test_no_pickle_on_any_load_path() -> None:
    """Static guard over every module (present and future) in src/synthembed.

    No module imports pickle-based loaders, every ``torch.load`` passes
    ``weights_only=True``, and no ``numpy.load`` passes ``allow_pickle=True``.
    """
    banned_modules = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
    problems: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            else:
                names = []
            for name in names:
                if name in banned_modules:
                    problems.append(f"{path.name}:{node.lineno} imports {name}")
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            attr = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            keywords = {kw.arg: kw.value for kw in node.keywords}
            if attr == "load" and isinstance(func, ast.Attribute):
                owner = ast.unparse(func.value)
                if owner == "torch":
                    value = keywords.get("weights_only")
                    if not (isinstance(value, ast.Constant) and value.value is True):
                        problems.append(
                            f"{path.name}:{node.lineno} torch.load without weights_only=True"
                        )
                if owner in {"np", "numpy"}:
                    value = keywords.get("allow_pickle")
                    if value is not None and not (
                        isinstance(value, ast.Constant) and value.value is False
                    ):
                        problems.append(f"{path.name}:{node.lineno} numpy.load may unpickle")
            if attr in {"read_pickle", "loads"} and isinstance(func, ast.Attribute):
                owner = ast.unparse(func.value)
                if attr == "read_pickle" or owner in banned_modules:
                    problems.append(f"{path.name}:{node.lineno} {owner}.{attr}")
    assert problems == []


# ---------------------------------------------------------------- checksums


def _flip_last_tensor_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # the last byte belongs to the tensor payload, not the header
    path.write_bytes(bytes(data))


def test_load_checksum_names_the_file(tmp_path: Path) -> None:
    layer = Embedding(6, 4)
    path = tmp_path / "layer-a.safetensors"
    sio.save(layer, path)
    _flip_last_tensor_byte(path)
    with pytest.raises(FileFormatError, match=r"'.*layer-a\.safetensors' failed its checksum"):
        sio.load(path)


def test_load_weights_checksum_names_the_file(tmp_path: Path) -> None:
    layer = Embedding(6, 4)
    path = tmp_path / "weights-b.safetensors"
    sio.save_weights(layer, path)
    _flip_last_tensor_byte(path)
    target = Embedding(6, 4)
    before = target.weight.detach().clone()
    with pytest.raises(FileFormatError, match=r"'.*weights-b\.safetensors' failed its checksum"):
        sio.load_weights(target, path)
    assert torch.equal(target.weight, before)


def test_vocabulary_checksum_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "vocab-c.json"
    Vocabulary.build(["alpha", "beta", "gamma"]).save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["tokens"][0] = "tampered"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(FileFormatError, match=r"'.*vocab-c\.json' failed its checksum"):
        Vocabulary.load(path)


# ---------------------------------------------------------------- tied weights


class _TinyLM(nn.Module):
    """A language model whose output projection is tied to its input embedding."""

    def __init__(self, vocab_size: int = 11, dim: int = 4) -> None:
        super().__init__()
        self.embed = Embedding(vocab_size, dim)
        self.mix = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, vocab_size, bias=False)
        self.out.weight = self.embed.weight  # the tie

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.mix(self.embed(ids))))


def test_tied_weights_save_once_and_reload_tied(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _TinyLM()
    path = tmp_path / "lm.safetensors"
    sio.save_weights(model, path)

    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        stored = set(handle.keys())
    assert len([k for k in stored if k.endswith("weight") and k != "mix.weight"]) == 1

    fresh = _TinyLM()
    fresh.out.weight = nn.Parameter(torch.zeros(11, 4))  # untie the target on purpose
    sio.load_weights(fresh, path)
    assert fresh.out.weight is fresh.embed.weight
    assert torch.equal(fresh.embed.weight, model.embed.weight)
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    assert torch.equal(fresh(ids), model(ids))

    # The tie is real: one optimizer step moves both "layers" together.
    opt = torch.optim.SGD(fresh.parameters(), lr=0.1)
    fresh(ids).sum().backward()
    opt.step()
    assert fresh.out.weight is fresh.embed.weight
    assert not torch.equal(fresh.embed.weight, model.embed.weight)


def test_tied_weights_survive_a_second_round_trip(tmp_path: Path) -> None:
    model = _TinyLM()
    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    sio.save_weights(model, first)
    middle = _TinyLM()
    sio.load_weights(middle, first)
    sio.save_weights(middle, second)
    last = _TinyLM()
    sio.load_weights(last, second)
    assert last.out.weight is last.embed.weight
    assert torch.equal(last.embed.weight, model.embed.weight)
