"""The cache of parsed vector files: a ``.npy`` array (memory-mapped on reload) and a JSON
word list. It records the source's size, modification time and a fingerprint of its first
and last bytes, so a changed source is parsed again."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from synthembed.formats.streams import PEEK
from synthembed.io import atomic_write

__all__ = [
    "CachedFile",
    "cache_paths",
    "default_cache_dir",
    "file_fingerprint",
    "read_cache",
    "write_cache",
]

_CACHE_FORMAT = "synthembed.vectors-cache"
_CACHE_VERSION = 1

#: ``(words, rows, source format, skip counts)`` as cached.
CachedFile = tuple[list[str], np.ndarray, Any, dict[str, int]]


def default_cache_dir() -> Path:
    """Where parsed vector files are cached: ``$SYNTHEMBED_CACHE_DIR``, else ``~/.cache/synthembed/vectors``."""
    env = os.environ.get("SYNTHEMBED_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "synthembed" / "vectors"


def file_fingerprint(path: Path) -> dict[str, Any]:
    """Identity of a source file: path, size, modification time, hash of its ends."""
    st = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(PEEK))
        if st.st_size > 2 * PEEK:
            handle.seek(st.st_size - PEEK)
            digest.update(handle.read(PEEK))
    return {
        "path": str(path.resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "sha256_ends": digest.hexdigest(),
    }


def cache_paths(path: Path, cache_dir: Path, options: dict[str, Any]) -> tuple[Path, Path]:
    """The ``.npy`` and ``.json`` cache files of ``path`` read with ``options``."""
    ident = json.dumps({"path": str(path.resolve()), **options}, sort_keys=True)
    key = hashlib.sha256(ident.encode("utf-8")).hexdigest()[:32]
    stem = f"{path.name[:40]}.{key}"
    return cache_dir / f"{stem}.npy", cache_dir / f"{stem}.json"


def read_cache(npy: Path, meta_path: Path, fingerprint: dict[str, Any]) -> CachedFile | None:
    """The cached file when its fingerprint matches ``fingerprint``, else None."""
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(meta, dict)
        or meta.get("format") != _CACHE_FORMAT
        or meta.get("version") != _CACHE_VERSION
        or meta.get("fingerprint") != fingerprint
    ):
        return None
    try:
        # Copy-on-write map: pages load on demand, writes stay private to this process.
        array = np.load(npy, mmap_mode="c", allow_pickle=False)
    except (OSError, ValueError):
        return None
    words = meta.get("words")
    if not isinstance(words, list) or array.ndim != 2 or array.shape[0] != len(words):
        return None
    return words, array, meta.get("source_format"), dict(meta.get("skipped") or {})


def write_cache(
    npy: Path,
    meta_path: Path,
    fingerprint: dict[str, Any],
    words: list[str],
    values: np.ndarray,
    source_format: str,
    skipped: dict[str, int],
) -> None:
    """Write the cache files atomically; a failure only warns (the load still succeeds)."""
    try:
        npy.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(npy, "wb") as handle:
            np.save(handle, np.ascontiguousarray(values), allow_pickle=False)
        meta = {
            "format": _CACHE_FORMAT,
            "version": _CACHE_VERSION,
            "fingerprint": fingerprint,
            "source_format": source_format,
            "skipped": skipped,
            "words": words,
        }
        with atomic_write(meta_path, "w") as handle:
            handle.write(json.dumps(meta, ensure_ascii=False))
    except OSError as exc:
        warnings.warn(f"Could not write the vector cache in '{npy.parent}': {exc}.", stacklevel=4)
