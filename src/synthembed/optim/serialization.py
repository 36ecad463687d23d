"""Save and load an optimizer's state as safetensors + JSON (no pickle)."""

from __future__ import annotations

import json
import os
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from synthembed.errors import ConfigError, FileFormatError
from synthembed.io import atomic_write, check_readable

__all__ = ["load_optimizer", "save_optimizer"]

_FORMAT = "synthembed.optim/1"


def save_optimizer(opt: torch.optim.Optimizer, path: str | os.PathLike[str]) -> None:
    """Write ``opt.state_dict()`` to one ``.safetensors`` file: tensors, plus JSON metadata.

    Raises:
        ConfigError: the state holds a value that is neither a tensor nor JSON.
        PathError: ``path`` cannot be written.
    """
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for index, entry in sd["state"].items():
        plain[str(index)] = {}
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain[str(index)][key] = value
    try:
        meta = json.dumps({"state": plain, "param_groups": sd["param_groups"]})
    except TypeError as exc:
        raise ConfigError(
            f"save_optimizer cannot write the state of {type(opt).__name__}: {exc}; "
            "only tensors and plain numbers can be saved."
        ) from None
    blob = st_save(tensors, metadata={"format": _FORMAT, "optimizer": meta})
    with atomic_write(path, "wb") as f:
        f.write(blob)


def load_optimizer(
    opt: torch.optim.Optimizer, path: str | os.PathLike[str]
) -> torch.optim.Optimizer:
    """Restore a state written by :func:`save_optimizer` into ``opt``; returns ``opt``.

    Raises:
        PathError: ``path`` cannot be read.
        FileFormatError: the file is not a saved optimizer state.
    """
    target = check_readable(path, "saved optimizer state")
    data = target.read_bytes()
    try:
        tensors = st_load(data)
        with_meta = _read_metadata(data)
    except (SafetensorError, ValueError, KeyError) as exc:
        raise FileFormatError(
            f"{os.fspath(path)!r} is not a saved optimizer state: {exc}"
        ) from None
    if with_meta.get("format") != _FORMAT or "optimizer" not in with_meta:
        raise FileFormatError(
            f"{os.fspath(path)!r} is not a saved optimizer state (format "
            f"{with_meta.get('format')!r}, expected {_FORMAT!r})."
        )
    meta = json.loads(with_meta["optimizer"])
    state: dict[int, dict[str, Any]] = {
        int(index): dict(entry) for index, entry in meta["state"].items()
    }
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    groups = meta["param_groups"]
    for group in groups:
        if "betas" in group and isinstance(group["betas"], list):
            group["betas"] = tuple(group["betas"])
    opt.load_state_dict({"state": state, "param_groups": groups})
    return opt


def _read_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors blob (its header is JSON after an 8-byte length)."""
    if len(data) < 8:
        raise ValueError("file shorter than a safetensors header")
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise ValueError("malformed safetensors metadata")
    return {str(k): str(v) for k, v in meta.items()}
