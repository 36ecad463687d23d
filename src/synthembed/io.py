"""Save and load without pickle: tensors in safetensors, everything else in JSON.

A saved module is one ``.safetensors`` file. Its header metadata holds the
format version, the class name, the JSON configuration that rebuilds the
module, the names of tied (shared) tensors, and a SHA-256 checksum of the
tensor bytes. Writes are atomic: a temporary file in the same directory,
fsync, then rename, so a crash mid-save leaves the previous file intact.

Loading never runs code from the file: the class is looked up in a registry of
synthembed classes, the configuration is plain JSON, and tensors are checked
for missing, extra, mis-shaped and mis-typed entries before anything is
copied into the module.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar, runtime_checkable

import torch
from torch import nn

from synthembed.errors import FileFormatError

__all__ = [
    "FORMAT_VERSION",
    "atomic_write",
    "load",
    "load_weights",
    "read_tensors",
    "register_savable",
    "save",
    "save_weights",
]

FORMAT_VERSION = 1
_KEY = "synthembed"


@runtime_checkable
class Savable(Protocol):
    """What :func:`save` needs of an object: a JSON config that rebuilds it.

    Modules save their ``state_dict``; other objects (a vocabulary, a fitted
    scaler, an estimator) may hold tensors too, by defining
    ``state_tensors() -> dict[str, Tensor]`` and ``load_state_tensors(tensors)``.
    """

    def get_config(self) -> dict[str, Any]: ...


_REGISTRY: dict[str, Callable[[dict[str, Any]], Any]] = {}
T = TypeVar("T", bound=type)


def register_savable(cls: T) -> T:
    """Class decorator: allow :func:`load` to rebuild ``cls`` via ``cls.from_config``."""
    _REGISTRY[cls.__name__] = cls.from_config  # type: ignore[attr-defined]
    return cls


def _tensors_of(obj: Any) -> dict[str, torch.Tensor]:
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    get = getattr(obj, "state_tensors", None)
    return dict(get()) if get is not None else {}


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    If the block raises, the temporary file is removed and ``path`` is untouched.

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> with atomic_write(os.path.join(d, "a.txt"), "w") as f:
        ...     _ = f.write("hello")
        >>> open(os.path.join(d, "a.txt")).read()
        'hello'
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    encoding = None if "b" in mode else "utf-8"
    try:
        # mkstemp creates the file private (0600); give it the usual permissions instead.
        os.chmod(tmp, stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o644)
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable.
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _checksum(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        digest.update(name.encode())
        digest.update(str(t.dtype).encode())
        digest.update(str(tuple(t.shape)).encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _dedupe(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Keep one copy of tensors that share storage (tied weights); map aliases to it."""
    unique: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[Any, ...], str] = {}
    storages: set[int] = set()
    for name, tensor in state.items():
        t = tensor.detach()
        if t.numel() == 0:
            unique[name] = t.contiguous().clone()
            continue
        key = (
            t.untyped_storage().data_ptr(),
            t.storage_offset(),
            tuple(t.shape),
            tuple(t.stride()),
            t.dtype,
        )
        if key in seen:
            aliases[name] = seen[key]
        else:
            seen[key] = name
            ptr = key[0]
            # safetensors refuses distinct tensors that overlap one storage (views): copy those.
            unique[name] = t.contiguous().cpu() if ptr not in storages else t.clone().cpu()
            storages.add(ptr)
    return unique, aliases


def _write(
    path: str | os.PathLike[str], state: dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
    from safetensors.torch import save as st_save

    tensors, aliases = _dedupe(state)
    header = {
        "format_version": FORMAT_VERSION,
        "aliases": aliases,
        "checksum": _checksum(tensors),
        **meta,
    }
    payload = st_save(tensors, metadata={_KEY: json.dumps(header, sort_keys=True)})
    with atomic_write(path, "wb") as handle:
        handle.write(payload)


def _read(
    path: str | os.PathLike[str], *, require_metadata: bool = True
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"No saved synthembed file at '{p}'.")
    data = p.read_bytes()
    try:
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        raw_meta = json.loads(data[8 : 8 + header_len]).get("__metadata__") or {}
    except (SafetensorError, ValueError, UnicodeDecodeError, AttributeError) as exc:
        raise FileFormatError(
            f"'{p}' is not a readable safetensors file ({exc}); it may be truncated or not "
            "written by synthembed.save."
        ) from exc
    if _KEY not in raw_meta:
        if not require_metadata:
            return tensors, {}
        raise FileFormatError(
            f"'{p}' is a safetensors file without synthembed metadata; load plain weights "
            "with synthembed.load_weights(module, path) instead."
        )
    try:
        header = json.loads(raw_meta[_KEY])
    except (json.JSONDecodeError, TypeError) as exc:
        raise FileFormatError(f"'{p}' has corrupt synthembed metadata: {exc}.") from exc
    if not isinstance(header, dict):
        raise FileFormatError(f"'{p}' has corrupt synthembed metadata: not a JSON object.")
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise FileFormatError(
            f"'{p}' has format version {version!r}; this synthembed reads versions "
            f"1 to {FORMAT_VERSION}. Upgrade synthembed to load files from newer releases."
        )
    if _checksum(tensors) != header.get("checksum"):
        raise FileFormatError(
            f"'{p}' failed its checksum: the tensor data does not match what was saved "
            "(the file was modified or corrupted)."
        )
    aliases = header.get("aliases", {})
    if not isinstance(aliases, dict):
        raise FileFormatError(f"'{p}' has corrupt synthembed metadata: 'aliases' is not a map.")
    for alias, source in aliases.items():
        if not isinstance(source, str) or source not in tensors:
            raise FileFormatError(f"'{p}' ties '{alias}' to missing tensor '{source}'.")
        tensors[alias] = tensors[source]
    return tensors, header


def read_tensors(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read every tensor of a safetensors file, tied names included, without building a module.

    Files written by :func:`save` / :func:`save_weights` have their checksum
    verified; plain safetensors files (from other libraries) are read as they are.

    Raises:
        FileNotFoundError: no file at ``path``.
        FileFormatError: the file is truncated, tampered with or of a newer version.
    """
    tensors, _ = _read(path, require_metadata=False)
    return tensors


def _load_into(module: nn.Module, tensors: dict[str, torch.Tensor], path: Any) -> None:
    """Check names, shapes and dtypes against ``module`` before copying anything."""
    expected = module.state_dict(keep_vars=True)
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise FileFormatError(
            f"'{path}' does not match {type(module).__name__}: missing tensors {missing}, "
            f"unexpected tensors {extra}."
        )
    for name, ref in expected.items():
        got = tensors[name]
        if tuple(got.shape) != tuple(ref.shape) or got.dtype != ref.dtype:
            raise FileFormatError(
                f"'{path}': tensor '{name}' has shape {tuple(got.shape)} and dtype {got.dtype}; "
                f"{type(module).__name__} expects shape {tuple(ref.shape)} and dtype {ref.dtype}."
            )
    module.load_state_dict(tensors, strict=True)
    # Restore ties: parameters that were one tensor when saved stay one tensor.
    _retie(module, tensors)


def _retie(module: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    by_ptr: dict[int, str] = {}
    for name in tensors:
        ptr = tensors[name].data_ptr()
        if ptr in by_ptr and tensors[name].numel():
            source = by_ptr[ptr]
            src_owner, src_attr = _resolve(module, source)
            dst_owner, dst_attr = _resolve(module, name)
            setattr(dst_owner, dst_attr, getattr(src_owner, src_attr))
        else:
            by_ptr[ptr] = name


def _resolve(module: nn.Module, dotted: str) -> tuple[nn.Module, str]:
    *path, attr = dotted.split(".")
    owner = module
    for part in path:
        owner = getattr(owner, part)
    return owner, attr


def save(module: Any, path: str | os.PathLike[str]) -> None:
    """Save a synthembed object (configuration and tensors) to one safetensors file.

    Args:
        module: a synthembed layer, or anything else synthembed trains or fits
            (a :class:`~synthembed.Vocabulary`, vectors, fitted encoders and
            scalers, an ``AutoencoderEmbedder``): anything with ``get_config()``
            whose class is registered. For arbitrary models use :func:`save_weights`.
        path: target file, conventionally ending in ``.safetensors``.

    Raises:
        TypeError: the module cannot describe its own configuration.

    Example:
        >>> import tempfile, os, synthembed
        >>> layer = synthembed.Embedding(10, 4)
        >>> p = os.path.join(tempfile.mkdtemp(), "emb.safetensors")
        >>> synthembed.save(layer, p)
        >>> torch.equal(synthembed.load(p).weight, layer.weight)
        True
    """
    name = type(module).__name__
    if not isinstance(module, Savable) or name not in _REGISTRY:
        raise TypeError(
            f"synthembed.save needs a synthembed layer or fitted object; got {name}. Save any "
            "other model's weights with synthembed.save_weights(model, path)."
        )
    config = module.get_config()
    _write(path, _tensors_of(module), {"class": name, "config": config})


def load(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> Any:
    """Load an object written by :func:`save`; no code in the file is ever executed.

    Raises:
        FileNotFoundError: no file at ``path``.
        FileFormatError: the file is truncated, tampered with, of a newer format
            version, or its tensors do not match the saved configuration.
    """
    tensors, header = _read(path)
    cls_name = header.get("class")
    if cls_name is None:
        raise FileFormatError(
            f"'{path}' holds weights only (written by save_weights); load them into a module "
            "with synthembed.load_weights(module, path)."
        )
    if not isinstance(cls_name, str) or cls_name not in _REGISTRY:
        raise FileFormatError(
            f"'{path}' holds a {cls_name!r}, which this synthembed does not know; "
            f"known classes: {sorted(_REGISTRY)}."
        )
    try:
        module = _REGISTRY[cls_name](header["config"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise FileFormatError(f"'{path}' has an invalid {cls_name} configuration: {exc}") from exc
    if not isinstance(module, nn.Module):
        expected = set(_tensors_of(module))
        if set(tensors) != expected:
            raise FileFormatError(
                f"'{path}' does not match {cls_name}: tensors {sorted(tensors)}, "
                f"expected {sorted(expected)}."
            )
        if tensors:
            module.load_state_tensors({k: t.to(map_location) for k, t in tensors.items()})
        return module
    _load_into(module, tensors, path)
    return module.to(map_location)


def save_weights(module: nn.Module, path: str | os.PathLike[str]) -> None:
    """Save any module's ``state_dict`` (tied weights kept tied) to a safetensors file."""
    _write(path, module.state_dict(), {"class": None, "config": None})


def load_weights(module: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load weights saved by :func:`save_weights` into ``module``, checking every tensor first."""
    tensors, _ = _read(path)
    _load_into(module, tensors, path)
    return module
