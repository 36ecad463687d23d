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

from synthembed.errors import FileFormatError, PathError

__all__ = [
    "FORMAT_VERSION",
    "atomic_write",
    "check_readable",
    "check_writable",
    "load",
    "load_weights",
    "read_tensors",
    "rebuild",
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


def rebuild(cls_name: str, config: Any, **extra: Any) -> Any:
    """Build a registered class from its saved configuration (tensors fresh).

    What :func:`load` does before filling the tensors; containers of layers (an
    ensemble) call it for their members.

    Raises:
        FileFormatError: ``cls_name`` is not a registered class.
    """
    if not isinstance(cls_name, str) or cls_name not in _REGISTRY:
        raise FileFormatError(
            f"Unknown saved class {cls_name!r}; known classes: {sorted(_REGISTRY)}."
        )
    return _REGISTRY[cls_name](config, **extra)  # type: ignore[call-arg]


def _tensors_of(obj: Any) -> dict[str, torch.Tensor]:
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    get = getattr(obj, "state_tensors", None)
    return dict(get()) if get is not None else {}


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Check, before any write or long work, that a file can be written at ``path``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        PathError: ``path`` is a directory, its directory does not exist, a
            parent of it is a file, or its directory is not writable; the
            message names ``path`` and what is wrong with it.

    Example:
        >>> import tempfile, os
        >>> check_writable(os.path.join(tempfile.mkdtemp(), "model.safetensors")).suffix
        '.safetensors'
    """
    target = Path(path)
    if target.is_dir():
        raise PathError(
            f"Cannot write '{target}': it is a directory; pass a file path inside it, "
            f"e.g. '{target / 'model.safetensors'}'."
        )
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        ancestor = directory
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if ancestor.exists() and not ancestor.is_dir():
            raise PathError(
                f"Cannot write '{target}': '{ancestor}' is a file, not a directory; "
                "choose a path whose parents are directories."
            )
        raise PathError(
            f"Cannot write '{target}': the directory '{directory}' does not exist; create it "
            "first (os.makedirs(..., exist_ok=True)) or choose another path."
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PathError(
            f"Cannot write '{target}': the directory '{directory}' is not writable "
            "(permission denied or a read-only file system); choose a writable directory."
        )
    return target


def check_readable(path: str | os.PathLike[str], what: str = "saved synthembed file") -> Path:
    """Check that ``path`` is an existing regular file before reading it.

    Raises:
        FileNotFoundError: nothing exists at ``path``.
        PathError: ``path`` is a directory (the message lists files inside it
            that look like what was asked for).
    """
    p = Path(path)
    if p.is_dir():
        inside = sorted(q.name for q in p.glob("*.safetensors"))[:5]
        hint = f"; files here that could be it: {inside}" if inside else ""
        raise PathError(
            f"'{p}' is a directory, not a {what}; pass the path of the file itself{hint}."
        )
    if not p.exists():
        raise FileNotFoundError(f"No {what} at '{p}' (nothing exists at that path).")
    if not p.is_file():
        raise PathError(f"'{p}' is not a regular file, so it cannot be a {what}.")
    return p


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    The path is checked first (:func:`check_writable`); if the block raises,
    the temporary file is removed and ``path`` is untouched. Errors of the
    file system name ``path``, never the temporary file.

    Raises:
        PathError: ``path`` cannot be written (see :func:`check_writable`), or
            the file system refused the write (disk full, read-only).

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> with atomic_write(os.path.join(d, "a.txt"), "w") as f:
        ...     _ = f.write("hello")
        >>> open(os.path.join(d, "a.txt")).read()
        'hello'
    """
    target = check_writable(path)
    directory = target.parent if str(target.parent) else Path(".")
    encoding = None if "b" in mode else "utf-8"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise _path_error(target, exc) from None
    try:
        # mkstemp creates the file private (0600); give it the usual permissions instead.
        os.chmod(tmp, stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o644)
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            try:
                handle.flush()
                os.fsync(handle.fileno())
            except OSError as exc:
                raise _path_error(target, exc) from None
        try:
            os.replace(tmp, target)
        except OSError as exc:
            raise _path_error(target, exc) from None
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


def _path_error(target: Path, exc: OSError) -> PathError:
    """The file system's refusal, worded with the user's path (not our temporary file)."""
    reason = exc.strerror or type(exc).__name__
    error = PathError(f"Cannot write '{target}': {reason} (errno {exc.errno}).")
    error.errno = exc.errno
    return error


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

    p = check_readable(path)
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
    check_writable(path)
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
    _check_config_against_tensors(path, cls_name, header.get("config"), tensors)
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


def _config_sizes(config: Any, prefix: str = "") -> Iterator[tuple[str, int]]:
    """Every integer of a JSON config with its dotted key; seeds, hash ranges and
    vocabularies (whose int tokens and counts are data, not sizes) left out."""
    if isinstance(config, dict):
        for key, value in config.items():
            if not any(part in str(key) for part in ("vocab", "tokens", "counts")):
                yield from _config_sizes(value, f"{prefix}{key}.")
    elif isinstance(config, list):
        for i, value in enumerate(config):
            yield from _config_sizes(value, f"{prefix}{i}.")
    elif isinstance(config, int) and not isinstance(config, bool):
        name = prefix.rstrip(".")
        if "seed" not in name and "range" not in name:
            yield name, config


def _refuse_oversized(
    path: Any, cls_name: str, config: Any, tensors: dict[str, torch.Tensor], exempt: tuple[str, ...]
) -> None:
    """A size in the config far beyond anything the file stores is refused before building."""
    stored = sum(t.numel() for t in tensors.values())
    bound = max(2**24, 16 * stored)
    for name, value in _config_sizes(config):
        if value > bound and name.rsplit(".", 1)[-1] not in exempt:
            raise FileFormatError(
                f"'{path}': its {cls_name} configuration gives {name}={value}, but the file "
                f"stores only {stored} values in all (bound {bound}); the configuration was "
                "edited or the file is corrupt. Nothing was built."
            )


def _check_config_against_tensors(
    path: Any, cls_name: str, config: Any, tensors: dict[str, torch.Tensor]
) -> None:
    """Compare the shapes the JSON config implies with the stored tensors, allocating nothing.

    The config is trusted last: an edited ``num_embeddings: 4000000000`` must be
    answered with the disagreement, not with an attempt to allocate the table.
    The class is built on the ``meta`` device (shapes without memory) and its
    tensors' shapes compared with the file's. Sizes other than ``num_embeddings``
    (which a hashed table may legally exceed) are first bounded by what the file
    stores, so that no loop or allocation runs on an absurd size; a class that
    cannot be built on ``meta`` has ``num_embeddings`` bounded too.
    """
    factory = _REGISTRY[cls_name]
    owner = getattr(factory, "__self__", None)
    if not (isinstance(owner, type) and issubclass(owner, nn.Module)):
        return  # vocabularies, vectors, fitted encoders: their tensors are checked after
    _refuse_oversized(path, cls_name, config, tensors, exempt=("num_embeddings",))
    try:
        with torch.device("meta"):
            probe = factory(config, device="meta")  # type: ignore[call-arg]
    except (MemoryError, OverflowError) as exc:
        raise FileFormatError(
            f"'{path}': its {cls_name} configuration implies sizes that cannot be allocated "
            f"({type(exc).__name__}); the configuration was edited or the file is corrupt."
        ) from None
    except Exception:  # no meta build: bound every size, then build for real
        _refuse_oversized(path, cls_name, config, tensors, exempt=())
        return
    if not isinstance(probe, nn.Module):
        return
    expected = {name: tuple(t.shape) for name, t in probe.state_dict().items()}
    for name, shape in expected.items():
        got = tensors.get(name)
        if got is not None and tuple(got.shape) != shape:
            sizes = {
                k: v
                for k, v in (config or {}).items()
                if isinstance(v, int) and not isinstance(v, bool)
            }
            raise FileFormatError(
                f"'{path}': tensor '{name}' has shape {tuple(got.shape)} in the file, but its "
                f"{cls_name} configuration {sizes} expects shape {shape}; the configuration "
                "was edited or the file is corrupt. Nothing was built."
            )


def save_weights(module: nn.Module, path: str | os.PathLike[str]) -> None:
    """Save any module's ``state_dict`` (tied weights kept tied) to a safetensors file."""
    check_writable(path)
    _write(path, module.state_dict(), {"class": None, "config": None})


def load_weights(module: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load weights saved by :func:`save_weights` into ``module``, checking every tensor first."""
    tensors, _ = _read(path)
    _load_into(module, tensors, path)
    return module
