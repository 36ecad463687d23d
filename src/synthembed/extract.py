"""Embeddings from trained models: any layer's output, or an autoencoder's bottleneck.

Two ways the founding documents get embeddings out of a model:

* :func:`extract` reads the output of one named layer of any ``nn.Module``
  (the "before last" layer of a classifier, a transformer's hidden states)
  through a forward hook, batch by batch, in eval and inference mode, and
  leaves the model exactly as it found it.
* :class:`AutoencoderEmbedder` learns an embedding without labels: an MLP
  autoencoder whose bottleneck is the embedding, with a scikit-learn style
  ``fit`` / ``transform`` / ``inverse_transform``.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import inspect
import itertools
import json
import logging
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler
from tqdm.auto import tqdm

from synthembed._validation import check_choice, check_finite, check_float, check_int
from synthembed.errors import ConfigError, NotFittedError, ShapeError

__all__ = ["AutoencoderEmbedder", "extract"]

logger = logging.getLogger(__name__)

PoolName = Literal["mean", "max", "first", "flatten"]
_POOLS = ("mean", "max", "first", "flatten")
_OUT_SUFFIXES = (".npy", ".safetensors")


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


_SAFETENSORS_DTYPES = {
    np.dtype("float64"): "F64",
    np.dtype("float32"): "F32",
    np.dtype("float16"): "F16",
    np.dtype("int64"): "I64",
    np.dtype("int32"): "I32",
    np.dtype("int16"): "I16",
    np.dtype("int8"): "I8",
    np.dtype("uint8"): "U8",
    np.dtype("bool"): "BOOL",
}
# Room reserved at the start of the file for the header, written once the row
# count is known; both formats allow space padding inside their header.
_HEADER_BYTES = 512


class _StreamWriter:
    """Stream row batches into a ``.npy`` or ``.safetensors`` file without holding them.

    Rows go to a temporary file beside the target after a reserved header
    block; :meth:`close` writes the header for the final shape, fsyncs and
    renames, so an interrupted extraction never leaves a half-written target.
    """

    def __init__(self, path: Path, metadata: dict[str, str]) -> None:
        self.path = path
        self.metadata = metadata
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        self.tmp = Path(tmp)
        self.handle = os.fdopen(fd, "w+b")
        self.handle.seek(_HEADER_BYTES)
        self.rows = 0
        self.tail: tuple[int, ...] | None = None
        self.dtype: np.dtype[Any] | None = None

    def write(self, batch: torch.Tensor) -> None:
        if batch.dtype == torch.bfloat16:  # numpy has no bfloat16
            batch = batch.float()
        array = np.ascontiguousarray(batch.numpy()).astype(
            batch.numpy().dtype.newbyteorder("<"), copy=False
        )
        if self.tail is None:
            self.tail, self.dtype = tuple(array.shape[1:]), array.dtype
            if self.path.suffix == ".safetensors" and array.dtype not in _SAFETENSORS_DTYPES:
                raise ShapeError(f"safetensors cannot store dtype {array.dtype}.")
        elif tuple(array.shape[1:]) != self.tail or array.dtype != self.dtype:
            raise ShapeError(_mismatch_message(self.tail, tuple(array.shape[1:])))
        self.handle.write(array.tobytes())
        self.rows += int(array.shape[0])

    def _header(self, dtype: np.dtype[Any], tail: tuple[int, ...]) -> bytes:
        shape = (self.rows, *tail)
        if self.path.suffix == ".npy":
            text = repr(
                {
                    "descr": np.lib.format.dtype_to_descr(dtype),
                    "fortran_order": False,
                    "shape": shape,
                }
            )
            prefix = b"\x93NUMPY\x01\x00"
            body_len = _HEADER_BYTES - len(prefix) - 2
            body = text.encode("latin1").ljust(body_len - 1) + b"\n"
            if len(body) != body_len:
                raise ShapeError(f"Shape {shape} is too long for the .npy header.")
            return prefix + body_len.to_bytes(2, "little") + body
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        header = {
            "embeddings": {
                "dtype": _SAFETENSORS_DTYPES[dtype],
                "shape": list(shape),
                "data_offsets": [0, nbytes],
            },
            "__metadata__": self.metadata,
        }
        body_len = _HEADER_BYTES - 8
        body = json.dumps(header).encode().ljust(body_len)
        if len(body) != body_len:
            raise ShapeError("The safetensors header is too long; shorten the metadata.")
        return body_len.to_bytes(8, "little") + body

    def close(self) -> None:
        if self.tail is None or self.dtype is None:
            raise ShapeError("extract got no rows from the data; nothing to write.")
        self.handle.seek(0)
        self.handle.write(self._header(self.dtype, self.tail))
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.handle.close()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()

    def open_result(self) -> torch.Tensor:
        """Map the finished file back as a tensor without reading it into memory."""
        if self.tail is None or self.dtype is None:
            raise ShapeError("extract got no rows from the data; nothing was written.")
        # mode "c" (copy-on-write) gives a writable view, so torch does not warn,
        # while the file itself stays untouched.
        mapped = np.memmap(
            self.path,
            dtype=self.dtype,
            mode="c",
            offset=_HEADER_BYTES,
            shape=(self.rows, *self.tail),
        )
        return torch.from_numpy(mapped)  # type: ignore[arg-type]


def _mismatch_message(first: tuple[int, ...], now: tuple[int, ...]) -> str:
    return (
        f"The layer's output has per-row shape {now} in a later batch but {first} in the "
        "first; outputs of varying length cannot be stacked. Pass pool='mean' (or 'max', "
        "'first', a callable) to reduce them to one vector per row."
    )


def _model_device(model: nn.Module) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _model_float_dtype(model: nn.Module) -> torch.dtype | None:
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return None


def extract(
    model: nn.Module,
    data: torch.Tensor | np.ndarray | Dataset[Any] | DataLoader[Any],
    layer: str | None = "fc1",
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    pool: PoolName | Callable[[torch.Tensor], torch.Tensor] | None = None,
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
        pool: how to reduce a layer output with more than 2 dims to one vector
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
            batches (pass ``pool=``).

    Example:
        >>> model = nn.Sequential()
        >>> model.add_module("fc1", nn.Linear(5, 3))
        >>> model.add_module("fc2", nn.Linear(3, 2))
        >>> extract(model, torch.randn(10, 5), "fc1", progress=False).shape
        torch.Size([10, 3])
    """
    owner = "extract"
    check_int(owner, "batch_size", batch_size, 1)
    if pool is not None and not callable(pool):
        check_choice(owner, "pool", pool, _POOLS)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"extract needs a torch.nn.Module as model; got {type(model).__name__}.")
    out_path = Path(out) if out is not None else None
    if out_path is not None:
        if out_path.suffix not in _OUT_SUFFIXES:
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
        tensor = _pool(tensor, pool, state["mask"])
        # Copy now: a later in-place op (ReLU(inplace=True)) would change it otherwise.
        state["output"] = tensor.detach().to("cpu", copy=True)
        state["calls"] += 1

    writer = _StreamWriter(out_path, {"layer": layer_name}) if out_path is not None else None
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
        with torch.inference_mode():
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
                        "sequence-first modules, hook a batch-first layer or pass pool= a "
                        "callable that moves the batch dim first)."
                    )
                tail = tuple(result.shape[1:])
                if first_tail is None:
                    first_tail = tail
                elif tail != first_tail:
                    raise ShapeError(_mismatch_message(first_tail, tail))
                if writer is not None:
                    writer.write(result)
                else:
                    chunks.append(result)
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
        handle.remove()
        for module, training in modes.items():
            module.train(training)
        if run_device != home_device:
            model.to(home_device)

    if writer is not None:
        return writer.open_result()
    if not chunks:
        raise ShapeError("extract got no rows from the data; nothing to return.")
    # Concatenating outside inference mode gives a normal tensor the caller can
    # use in autograd later.
    return torch.cat(chunks)


# --------------------------------------------------------------------------- autoencoder

ArrayLike = torch.Tensor | np.ndarray


def _as_2d_float(X: Any, owner: str, what: str = "X") -> torch.Tensor:
    if isinstance(X, np.ndarray):
        if not np.issubdtype(X.dtype, np.number) and X.dtype != np.bool_:
            raise ShapeError(f"{owner} needs a numeric {what}; got an array of dtype {X.dtype}.")
        tensor = torch.from_numpy(np.asarray(X, dtype=np.float32))
    elif isinstance(X, torch.Tensor):
        tensor = X.detach().to("cpu", torch.float32)
    else:
        raise ShapeError(
            f"{owner} needs {what} as a numpy array or a torch.Tensor; got {type(X).__name__}."
        )
    if tensor.dim() != 2:
        raise ShapeError(
            f"{owner} needs {what} of shape (n_samples, n_features); got {tuple(tensor.shape)}."
        )
    check_finite(tensor, f"{owner}: {what}")
    return tensor


def _like_input(result: torch.Tensor, reference: Any) -> ArrayLike:
    """numpy in, numpy out; tensor in, tensor out (on the input's device)."""
    if isinstance(reference, np.ndarray):
        return result.numpy()
    return result.to(reference.device)


class AutoencoderEmbedder:
    """Learn ``embedding_dim``-d embeddings of feature vectors with an MLP autoencoder.

    The encoder maps standardized features through ``hidden`` layers (ReLU) to
    a linear bottleneck of ``embedding_dim`` units, the embedding; a mirrored
    decoder reconstructs the features, trained with mean squared error and
    Adam. A seeded random ``validation_fraction`` of the rows is held out;
    training stops once the validation error has not improved for
    ``patience`` epochs and the best weights are kept. No labels are used.

    The interface is scikit-learn's: parameters are stored as given by
    ``__init__``, ``fit`` returns ``self``, fitted state ends in ``_``, and
    ``get_params`` / ``set_params`` make it work with ``sklearn.clone`` and
    pipelines.

    Args:
        embedding_dim: size of the bottleneck, the embedding dimension.
        hidden: widths of the encoder's hidden layers, outermost first; the
            decoder mirrors them. ``()`` gives a linear autoencoder (like PCA).
        epochs: maximum passes over the training rows.
        batch_size: rows per optimisation step.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        validation_fraction: share of rows held out for early stopping and the
            reported reconstruction error, in ``[0, 1)``; ``0`` trains all
            ``epochs`` on every row.
        patience: epochs without validation improvement before stopping.
        standardize: scale each feature to zero mean and unit variance before
            encoding (constant features are only centred).
        seed: seeds initialisation, the split and the shuffling; equal seeds
            give bit-identical models on the same machine. The global torch RNG
            is left untouched.
        device: where training runs.

    Attributes:
        encoder_, decoder_: the trained ``nn.Sequential`` halves.
        n_features_in_: number of input features.
        mean_, scale_: the standardization, ``(n_features,)`` tensors.
        history_: one ``{"epoch", "train_loss", "val_loss"}`` dict per epoch
            (losses in standardized units; ``val_loss`` is None without a split).
        best_epoch_: the epoch whose weights were kept (1-based).
        reconstruction_error_: mean squared reconstruction error on the held
            out rows (on the training rows when ``validation_fraction=0``), in
            the original feature units.
        baseline_error_: the same error for the mean predictor (every row
            reconstructed as the training mean), to compare against.

    Shape:
        - X: ``(N, F)`` -> transform: ``(N, embedding_dim)``
        - Z: ``(N, embedding_dim)`` -> inverse_transform: ``(N, F)``

    Example:
        >>> X = torch.randn(200, 10) @ torch.randn(10, 10)
        >>> ae = AutoencoderEmbedder(3, hidden=(16,), epochs=5, seed=0).fit(X)
        >>> ae.transform(X).shape
        torch.Size([200, 3])
    """

    def __init__(
        self,
        embedding_dim: int,
        hidden: Sequence[int] = (128, 64),
        *,
        epochs: int = 200,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        validation_fraction: float = 0.1,
        patience: int = 10,
        standardize: bool = True,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        self.embedding_dim = embedding_dim
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.standardize = standardize
        self.seed = seed
        self.device = device
        self._check_params()

    # -- scikit-learn protocol ------------------------------------------------

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [name for name in signature.parameters if name != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor parameters (scikit-learn protocol)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> AutoencoderEmbedder:
        """Set constructor parameters; checked before any is changed (scikit-learn protocol)."""
        valid = self._param_names()
        for name in params:
            if name not in valid:
                raise ConfigError(
                    f"AutoencoderEmbedder has no parameter {name!r}; valid parameters: "
                    f"{', '.join(valid)}."
                )
        trial = copy.copy(self)
        trial.__dict__.update(params)
        trial._check_params()
        self.__dict__.update(params)
        return self

    def __repr__(self) -> str:
        defaults = {
            name: p.default
            for name, p in inspect.signature(type(self).__init__).parameters.items()
            if p.default is not inspect.Parameter.empty
        }
        shown = [repr(self.embedding_dim)] + [
            f"{name}={value!r}"
            for name, value in self.get_params().items()
            if name != "embedding_dim" and (name not in defaults or value != defaults[name])
        ]
        return f"AutoencoderEmbedder({', '.join(shown)})"

    def _check_params(self) -> None:
        owner = "AutoencoderEmbedder"
        check_int(owner, "embedding_dim", self.embedding_dim, 1)
        if isinstance(self.hidden, (str, bytes)) or not isinstance(self.hidden, Sequence):
            raise ConfigError(
                f"The 'hidden' parameter of {owner} must be a sequence of ints >= 1. "
                f"Got {self.hidden!r} instead."
            )
        for width in self.hidden:
            check_int(owner, "hidden", width, 1)
        check_int(owner, "epochs", self.epochs, 1)
        check_int(owner, "batch_size", self.batch_size, 1)
        check_float(owner, "lr", self.lr, 0.0, low_closed=False)
        check_float(owner, "weight_decay", self.weight_decay, 0.0)
        check_float(
            owner, "validation_fraction", self.validation_fraction, 0.0, 1.0, high_closed=False
        )
        check_int(owner, "patience", self.patience, 1)
        check_int(owner, "seed", self.seed, 0)
        if not isinstance(self.standardize, bool):
            raise ConfigError(
                f"The 'standardize' parameter of {owner} must be a bool. "
                f"Got {self.standardize!r} instead."
            )

    # -- model ----------------------------------------------------------------

    def _build(self, n_features: int) -> tuple[nn.Sequential, nn.Sequential]:
        widths = [n_features, *self.hidden]
        enc: list[nn.Module] = []
        for a, b in itertools.pairwise(widths):
            enc += [nn.Linear(a, b), nn.ReLU()]
        enc.append(nn.Linear(widths[-1], self.embedding_dim))  # linear bottleneck
        back = [self.embedding_dim, *reversed(self.hidden)]
        dec: list[nn.Module] = []
        for a, b in itertools.pairwise(back):
            dec += [nn.Linear(a, b), nn.ReLU()]
        dec.append(nn.Linear(back[-1], n_features))
        return nn.Sequential(*enc), nn.Sequential(*dec)

    def _check_fitted(self, method: str) -> None:
        if not hasattr(self, "encoder_"):
            raise NotFittedError(
                f"This AutoencoderEmbedder is not fitted yet; call fit(X) before {method}()."
            )

    def fit(self, X: ArrayLike, y: Any = None) -> AutoencoderEmbedder:
        """Train the autoencoder on the rows of ``X`` (``y`` is ignored).

        Args:
            X: ``(n_samples, n_features)`` numeric array or tensor, finite.
            y: ignored; present for pipeline compatibility.

        Returns:
            self, fitted.

        Raises:
            ShapeError: ``X`` is not 2-D numeric or has too few rows.
            NonFiniteError: ``X`` holds NaN or infinity.
        """
        owner = "AutoencoderEmbedder.fit"
        self._check_params()
        data = _as_2d_float(X, owner)
        n, n_features = data.shape
        n_val = round(n * self.validation_fraction) if self.validation_fraction else 0
        if self.validation_fraction and n_val == 0:
            n_val = 1
        if n - n_val < 1 or n < 2:
            raise ShapeError(
                f"{owner} needs at least 2 rows (and one left for training after the "
                f"validation split of {self.validation_fraction}); got {n}."
            )
        device = torch.device(self.device)
        generator = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(n, generator=generator)
        val_idx, train_idx = order[:n_val], order[n_val:]
        train = data[train_idx]

        mean = train.mean(0) if self.standardize else torch.zeros(n_features)
        scale = train.std(0, unbiased=False) if self.standardize else torch.ones(n_features)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        z_train = ((train - mean) / scale).to(device)
        z_val = ((data[val_idx] - mean) / scale).to(device)

        # Initialise from our own seed without disturbing the caller's global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            encoder, decoder = self._build(n_features)
        encoder.to(device)
        decoder.to(device)
        params = [*encoder.parameters(), *decoder.parameters()]
        optimizer = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)

        def loss_on(z: torch.Tensor) -> float:
            with torch.no_grad():
                total = 0.0
                for i in range(0, len(z), 4096):
                    part = z[i : i + 4096]
                    total += float(((decoder(encoder(part)) - part) ** 2).sum())
                return total / max(z.numel(), 1)

        history: list[dict[str, Any]] = []
        best = math.inf
        best_epoch = 0
        best_state: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]] | None = None
        stale = 0
        for epoch in range(1, self.epochs + 1):
            encoder.train()
            decoder.train()
            perm = torch.randperm(len(z_train), generator=generator).to(device)
            running, seen = 0.0, 0
            for i in range(0, len(z_train), self.batch_size):
                batch = z_train[perm[i : i + self.batch_size]]
                loss = nn.functional.mse_loss(decoder(encoder(batch)), batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                running += float(loss.detach()) * len(batch)
                seen += len(batch)
            encoder.eval()
            decoder.eval()
            train_loss = running / seen
            val_loss = loss_on(z_val) if n_val else None
            history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss})
            logger.debug("epoch %d: train %.5f, validation %s", epoch, train_loss, val_loss)
            monitored = val_loss if val_loss is not None else train_loss
            if monitored < best - 1e-7 * abs(best if math.isfinite(best) else 1.0):
                best, best_epoch, stale = monitored, epoch, 0
                best_state = (
                    {k: v.detach().clone() for k, v in encoder.state_dict().items()},
                    {k: v.detach().clone() for k, v in decoder.state_dict().items()},
                )
            else:
                stale += 1
                if n_val and stale >= self.patience:
                    break
        if best_state is not None:
            encoder.load_state_dict(best_state[0])
            decoder.load_state_dict(best_state[1])
        encoder.eval()
        decoder.eval()
        for p in params:
            p.requires_grad_(False)

        self.encoder_ = encoder
        self.decoder_ = decoder
        self.n_features_in_ = n_features
        self.mean_ = mean
        self.scale_ = scale
        self.history_ = history
        self.best_epoch_ = best_epoch
        held_out = data[val_idx] if n_val else train
        self.reconstruction_error_ = self.reconstruction_error(held_out)
        self.baseline_error_ = float(((held_out - train.mean(0)) ** 2).mean())
        logger.info(
            "AutoencoderEmbedder: %d epochs (best %d), reconstruction MSE %.5g on %s rows "
            "vs %.5g for the mean predictor",
            len(history),
            best_epoch,
            self.reconstruction_error_,
            "validation" if n_val else "training",
            self.baseline_error_,
        )
        return self

    def _encode(self, data: torch.Tensor) -> torch.Tensor:
        device = self.mean_.device
        param = next(self.encoder_.parameters())
        with torch.inference_mode():
            z = ((data.to(device) - self.mean_) / self.scale_).to(param.device)
            out = torch.cat([self.encoder_(z[i : i + 4096]) for i in range(0, len(z), 4096)])
        return out.cpu().clone()  # clone: a normal tensor, not an inference tensor

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        param = next(self.decoder_.parameters())
        with torch.inference_mode():
            z = codes.to(param.device)
            rec = torch.cat([self.decoder_(z[i : i + 4096]) for i in range(0, len(z), 4096)])
            out = rec.cpu() * self.scale_ + self.mean_
        return out.clone()

    def _features(self, X: Any, method: str) -> torch.Tensor:
        self._check_fitted(method)
        data = _as_2d_float(X, f"AutoencoderEmbedder.{method}")
        if data.shape[1] != self.n_features_in_:
            raise ShapeError(
                f"AutoencoderEmbedder.{method} got X with {data.shape[1]} features; it was "
                f"fitted on {self.n_features_in_}."
            )
        return data

    def transform(self, X: ArrayLike) -> ArrayLike:
        """Embed the rows of ``X``: ``(N, F)`` -> ``(N, embedding_dim)``, float32.

        Returns a numpy array for numpy input and a tensor for tensor input.

        Raises:
            NotFittedError: called before :meth:`fit`.
            ShapeError: ``X`` has a different number of features than in ``fit``.
        """
        return _like_input(self._encode(self._features(X, "transform")), X)

    def fit_transform(self, X: ArrayLike, y: Any = None) -> ArrayLike:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    def inverse_transform(self, Z: ArrayLike) -> ArrayLike:
        """Decode embeddings back to feature space: ``(N, embedding_dim)`` -> ``(N, F)``.

        Raises:
            NotFittedError: called before :meth:`fit`.
            ShapeError: ``Z`` is not ``(N, embedding_dim)``.
        """
        self._check_fitted("inverse_transform")
        codes = _as_2d_float(Z, "AutoencoderEmbedder.inverse_transform", "Z")
        if codes.shape[1] != self.embedding_dim:
            raise ShapeError(
                f"AutoencoderEmbedder.inverse_transform needs Z of shape (N, "
                f"{self.embedding_dim}); got {tuple(codes.shape)}."
            )
        return _like_input(self._decode(codes), Z)

    def reconstruction_error(self, X: ArrayLike) -> float:
        """Mean squared error between ``X`` and its reconstruction, in the original units."""
        data = self._features(X, "reconstruction_error")
        rec = self._decode(self._encode(data))
        return float(((rec - data) ** 2).mean())

    def score(self, X: ArrayLike, y: Any = None) -> float:
        """Negative reconstruction error (higher is better, as scikit-learn expects)."""
        return -self.reconstruction_error(X)
