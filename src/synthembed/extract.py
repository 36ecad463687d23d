"""Embeddings from trained models: the output of any layer of any ``nn.Module``.

:func:`extract` reads the output of one named layer (the "before last" layer of
a classifier, a transformer's hidden states) through a forward hook, batch by
batch, in eval and inference mode, and leaves the model exactly as it found it.
With ``out=`` the rows stream to a file (:mod:`synthembed.row_stream`) instead of
memory.

The founding documents' other way, an autoencoder's bottleneck, is
:class:`~synthembed.autoencoder_embedder.AutoencoderEmbedder`, re-exported here.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler
from tqdm.auto import tqdm

from synthembed._deprecation import renamed
from synthembed._validation import check_choice, check_int
from synthembed.autoencoder_embedder import AutoencoderEmbedder
from synthembed.errors import ConfigError, ShapeError
from synthembed.row_stream import (
    ROW_FILE_SUFFIXES,
    RowWriter,
    mismatch_message,
    open_rows,
    stream_rows,
)

__all__ = ["AutoencoderEmbedder", "PoolName", "extract"]

PoolName = Literal["mean", "max", "first", "flatten"]
_POOLS = ("mean", "max", "first", "flatten")


# --------------------------------------------------------------------------- extract


def _resolve_layer(model: nn.Module, layer: str | None) -> nn.Module:
    """Return the submodule called ``layer`` or raise an error listing close names."""
    if layer is None or layer == "":
        return model
    names = [name for name, _ in model.named_modules() if name]
    modules = dict(model.named_modules())
    if layer in modules:
        return modules[layer]
    close = difflib.get_close_matches(layer, names, n=5, cutoff=0.4)
    if close:
        hint = "Close names: " + ", ".join(repr(n) for n in close) + "."
    elif names:
        shown = ", ".join(repr(n) for n in names[:12])
        more = f" (and {len(names) - 12} more)" if len(names) > 12 else ""
        hint = f"Its submodules are: {shown}{more}."
    else:
        hint = "It has no submodules; pass layer=None to take the model's own output."
    raise ConfigError(
        f"extract got layer={layer!r}, which is not a submodule of {type(model).__name__}. "
        f"{hint} Pass a dotted name from model.named_modules()."
    )


def _select(output: Any, select: int | str | None, layer: str) -> torch.Tensor:
    """Pick the tensor out of a layer's output (a tensor, tuple, dict or model output)."""
    if isinstance(output, torch.Tensor):
        if select is not None:
            raise ConfigError(
                f"extract got select={select!r}, but layer {layer!r} returns a single tensor; "
                "pass select=None."
            )
        return output
    if isinstance(output, Mapping):
        keys = list(output.keys())
        if select is None:
            key: Any = "last_hidden_state" if "last_hidden_state" in output else None
            if key is None:
                tensors = [k for k in keys if isinstance(output[k], torch.Tensor)]
                if not tensors:
                    raise ShapeError(
                        f"Layer {layer!r} returned a mapping without tensors (keys {keys})."
                    )
                key = tensors[0]
        elif isinstance(select, str) and select in output:
            key = select
        else:
            raise ConfigError(
                f"extract got select={select!r}, but layer {layer!r} returns a mapping with "
                f"keys {keys}; pass one of them."
            )
        return _select(output[key], None, f"{layer}[{key!r}]")
    if isinstance(output, (tuple, list)):
        index = 0 if select is None else select
        if not isinstance(index, int) or not -len(output) <= index < len(output):
            raise ConfigError(
                f"extract got select={select!r}, but layer {layer!r} returns a "
                f"{type(output).__name__} of length {len(output)}; pass an int in the range "
                f"[0, {len(output) - 1}]."
            )
        return _select(output[index], None, f"{layer}[{index}]")
    raise ShapeError(
        f"Layer {layer!r} returned a {type(output).__name__}, not a tensor, tuple or mapping "
        "of tensors; extract cannot read it."
    )


def _pool(
    x: torch.Tensor,
    pool: PoolName | Callable[[torch.Tensor], torch.Tensor] | None,
    mask: torch.Tensor | None,
) -> torch.Tensor:
    """Reduce one batch of layer output ``(B, ...)`` to ``(B, D)``.

    ``(B, T, D)`` outputs (sequences, channels last) pool over ``T``, honouring
    an attention mask ``(B, T)`` when the batch carried one; ``(B, C, *spatial)``
    outputs with 4 or more dims (convolutions, channels first) pool over the
    spatial dims, as global average / max pooling does.
    """
    if pool is None:
        return x
    if callable(pool):
        return pool(x)
    if pool == "flatten":
        return x.flatten(1)
    if x.dim() < 3:
        return x
    if pool == "first":
        return x[:, 0]
    if x.dim() == 3:  # (B, T, D): pool over T
        if mask is not None and mask.shape == x.shape[:2]:
            m = mask.to(x.dtype).unsqueeze(-1)  # (B, T, 1)
            if pool == "mean":
                return (x * m).sum(1) / m.sum(1).clamp_min(1.0)
            return x.masked_fill(m == 0, -math.inf).amax(1)
        return x.mean(1) if pool == "mean" else x.amax(1)
    dims = tuple(range(2, x.dim()))  # (B, C, H, W, ...): pool over the spatial dims
    return x.mean(dims) if pool == "mean" else x.amax(dims)


def _to_device(batch: Any, device: torch.device, dtype: torch.dtype | None) -> Any:
    if isinstance(batch, torch.Tensor):
        if dtype is not None and batch.is_floating_point() and batch.dtype != dtype:
            batch = batch.to(dtype)
        return batch.to(device)
    if isinstance(batch, np.ndarray):
        return _to_device(torch.from_numpy(batch), device, dtype)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device, dtype) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(v, device, dtype) for v in batch)
    return batch


def _batch_rows(inputs: Any) -> int | None:
    """The number of rows in a batch of model inputs, when it can be read off."""
    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0]) if inputs.dim() else None
    if isinstance(inputs, Mapping):
        for value in inputs.values():
            if isinstance(value, torch.Tensor) and value.dim():
                return int(value.shape[0])
    return None


def _batches(data: Any, batch_size: int) -> tuple[Iterable[Any], int | None]:
    """Return ``(batches, number of batches or None)`` for any supported data."""
    if isinstance(data, np.ndarray):
        if data.dtype == object:
            raise ShapeError(
                "extract got a numpy array of dtype object; pass a numeric array, a tensor, "
                "a Dataset or a DataLoader."
            )
        data = torch.from_numpy(np.ascontiguousarray(data))
    if isinstance(data, torch.Tensor):
        if data.dim() == 0:
            raise ShapeError("extract got a 0-d tensor; data needs a leading batch dimension.")
        n = int(data.shape[0])
        tensor = data
        return (
            (tensor[i : i + batch_size] for i in range(0, n, batch_size)),
            math.ceil(n / batch_size),
        )
    if isinstance(data, DataLoader):
        if isinstance(data.sampler, RandomSampler):
            warnings.warn(
                "extract got a DataLoader with shuffle=True: the rows of the result follow "
                "the shuffled order, not the dataset's. Pass a loader with shuffle=False to "
                "keep them aligned with your labels.",
                stacklevel=3,
            )
        try:
            total: int | None = len(data)
        except TypeError:
            total = None
        return data, total
    if isinstance(data, Dataset):
        loader: DataLoader[Any] = DataLoader(data, batch_size=batch_size, shuffle=False)
        try:
            total = len(loader)
        except TypeError:
            total = None
        return loader, total
    raise ShapeError(
        f"extract got data of type {type(data).__name__}; pass a torch.Tensor, a numpy "
        "array, a torch Dataset or a DataLoader."
    )


def _model_inputs(batch: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Split a batch into the model's call arguments: ``x``, ``(x, y)`` or ``{**kwargs}``."""
    if isinstance(batch, Mapping):
        return (), dict(batch)
    if isinstance(batch, (tuple, list)):
        if not batch:
            raise ShapeError("extract got an empty batch from the data.")
        return (batch[0],), {}
    return (batch,), {}


def _model_device(model: nn.Module) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _model_float_dtype(model: nn.Module) -> torch.dtype | None:
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return None


@renamed(pool="mode")
def extract(
    model: nn.Module,
    data: torch.Tensor | np.ndarray | Dataset[Any] | DataLoader[Any],
    layer: str | None = "fc1",
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    mode: PoolName | Callable[[torch.Tensor], torch.Tensor] | None = None,
    select: int | str | None = None,
    out: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Run ``model`` over ``data`` and return the output of one of its layers, row by row.

    A forward hook on the named submodule records its output for every batch;
    the model runs in eval mode under :func:`torch.inference_mode`. Whatever
    happens (including an error mid-way), the hook is removed and every
    submodule's train/eval mode and the model's device are restored.

    Args:
        model: any ``nn.Module``.
        data: a tensor or numpy array whose first dim is the rows (sliced into
            batches of ``batch_size``), a ``Dataset`` (batched with
            ``batch_size``, in order) or a ``DataLoader`` (used as is). A batch
            that is a tuple or list feeds its first item to the model (the
            ``(x, y)`` convention); a dict batch is passed as keyword
            arguments (``model(**batch)``, the Hugging Face convention).
            Floating inputs are cast to the model's floating dtype, so numpy's
            float64 arrays feed a float32 model.
        layer: dotted name of the submodule, as in ``model.named_modules()``
            (``"fc1"``, ``"encoder.layer.5"``); ``None`` takes the model's own output.
        batch_size: rows per forward pass for tensors, arrays and Datasets.
        device: where the forward pass runs; defaults to the model's device.
            The model is moved there for the call and moved back afterwards.
        mode: how to pool a layer output with more than 2 dims to one vector
            per row: ``None`` keeps it as is; ``"mean"`` / ``"max"`` pool over
            the sequence of a ``(B, T, D)`` output (respecting an
            ``attention_mask`` in dict batches) and over the spatial dims of a
            ``(B, C, H, W)`` convolution output; ``"first"`` takes position 0
            (a [CLS] token); ``"flatten"`` flattens; or a callable on the batch.
        select: which item of a tuple/list output (an int; default 0) or key of
            a dict output (default ``"last_hidden_state"`` when present, else
            the first tensor) holds the embedding.
        out: optional ``.npy`` or ``.safetensors`` path. Rows are streamed to
            the file batch by batch (never all held in memory), the file
            appears atomically when complete, and the returned tensor is a
            memory map of it. The safetensors tensor is named ``"embeddings"``.
        progress: show a tqdm progress bar.

    Shape:
        - data: ``(N, *)``
        - Output: ``(N, *F)`` where ``F`` is the layer's per-row output shape
          after pooling, typically ``(N, D)``.

    Returns:
        A CPU tensor of the layer's outputs (a normal tensor, not an inference
        tensor), memory-mapped from ``out`` when given.

    Raises:
        ConfigError: ``layer`` is not a submodule (the message lists close
            names), it never ran during the forward pass, or a bad argument.
        ShapeError: unsupported data, or outputs whose shapes differ between
            batches (pass ``mode=``).

    Example:
        >>> model = nn.Sequential()
        >>> model.add_module("fc1", nn.Linear(5, 3))
        >>> model.add_module("fc2", nn.Linear(3, 2))
        >>> extract(model, torch.randn(10, 5), "fc1", progress=False).shape
        torch.Size([10, 3])
    """
    owner = "extract"
    check_int(owner, "batch_size", batch_size, 1)
    if mode is not None and not callable(mode):
        check_choice(owner, "mode", mode, _POOLS)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"extract needs a torch.nn.Module as model; got {type(model).__name__}.")
    out_path = Path(out) if out is not None else None
    if out_path is not None:
        if out_path.suffix not in ROW_FILE_SUFFIXES:
            raise ConfigError(
                f"The 'out' parameter of extract must end in .npy or .safetensors. "
                f"Got {str(out)!r} instead."
            )
        if not out_path.parent.is_dir():
            raise FileNotFoundError(f"extract cannot write {str(out_path)!r}: no such directory.")
    layer_name = layer or ""
    target = _resolve_layer(model, layer)
    batches, total = _batches(data, batch_size)

    run_device = torch.device(device) if device is not None else _model_device(model)
    home_device = _model_device(model)
    float_dtype = _model_float_dtype(model)
    modes = {module: module.training for module in model.modules()}

    state: dict[str, Any] = {"output": None, "calls": 0, "mask": None}

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        tensor = _select(output, select, layer_name or type(model).__name__)
        tensor = _pool(tensor, mode, state["mask"])
        # Copy now: a later in-place op (ReLU(inplace=True)) would change it otherwise.
        state["output"] = tensor.detach().to("cpu", copy=True)
        state["calls"] += 1

    # The rows go to a crash-safe stream (a temporary file renamed into place when complete,
    # removed if anything fails) when out= is given, else into memory.
    stream: contextlib.AbstractContextManager[RowWriter | None] = (
        stream_rows(out_path, {"layer": layer_name})
        if out_path is not None
        else contextlib.nullcontext()
    )
    writer: RowWriter | None = None
    chunks: list[torch.Tensor] = []
    first_tail: tuple[int, ...] | None = None
    warned_calls = False
    handle = target.register_forward_hook(hook)
    bar: tqdm[Any] | None = None
    try:
        if run_device != home_device:
            model.to(run_device)
        model.eval()
        bar = tqdm(
            batches,
            total=total,
            desc=f"extract {layer_name or 'output'}",
            unit="batch",
            disable=not progress,
        )
        with stream as writer, torch.inference_mode():
            for batch in bar:
                args, kwargs = _model_inputs(batch)
                args = _to_device(args, run_device, float_dtype)
                kwargs = _to_device(kwargs, run_device, float_dtype)
                mask = kwargs.get("attention_mask")
                state.update(output=None, calls=0, mask=mask)
                model(*args, **kwargs)
                if state["calls"] == 0:
                    raise ConfigError(
                        f"Layer {layer_name!r} of {type(model).__name__} did not run during the "
                        "forward pass; pick a layer the forward pass uses (see "
                        "model.named_modules())."
                    )
                if state["calls"] > 1 and not warned_calls:
                    warnings.warn(
                        f"Layer {layer_name!r} ran {state['calls']} times in one forward pass "
                        "(a shared or recurrent module); extract keeps its last output.",
                        stacklevel=2,
                    )
                    warned_calls = True
                result: torch.Tensor = state["output"]
                rows = _batch_rows(args[0] if args else kwargs)
                if rows is not None and (result.dim() == 0 or result.shape[0] != rows):
                    raise ShapeError(
                        f"Layer {layer_name!r} returned shape {tuple(result.shape)} for a batch "
                        f"of {rows} rows; extract needs the batch in the first dim (for "
                        "sequence-first modules, hook a batch-first layer or pass mode= a "
                        "callable that moves the batch dim first)."
                    )
                tail = tuple(result.shape[1:])
                if first_tail is None:
                    first_tail = tail
                elif tail != first_tail:
                    raise ShapeError(mismatch_message(first_tail, tail))
                if writer is not None:
                    writer.write(result)
                else:
                    chunks.append(result)
    finally:
        if bar is not None:
            bar.close()
        handle.remove()
        for module, training in modes.items():
            module.train(training)
        if run_device != home_device:
            model.to(home_device)

    if out_path is not None and writer is not None:
        return open_rows(out_path, writer)
    if not chunks:
        raise ShapeError("extract got no rows from the data; nothing to return.")
    # Concatenating outside inference mode gives a normal tensor the caller can
    # use in autograd later.
    return torch.cat(chunks)
