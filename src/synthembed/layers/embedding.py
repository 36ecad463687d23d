"""Embedding: a drop-in for ``torch.nn.Embedding`` with soft lookup, pooling and clear errors."""

from __future__ import annotations

import os
from typing import Any, Literal, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthembed import _kernels
from synthembed._config import DTYPE, Configurable, Option
from synthembed._validation import (
    check_choice,
    check_finite,
    check_float,
    check_ids,
    check_int,
    check_integer_ids,
    check_last_dim,
)
from synthembed.encoded_batch import EncodedBatch
from synthembed.errors import ConfigError, NonFiniteError, ShapeError
from synthembed.io import register_savable
from synthembed.layers.embedding_bags import PoolingMode, check_bag_inputs, pool_bags
from synthembed.optim.fused import FUSED_OPTIMIZER, FusedRows, check_fused_optimizer
from synthembed.optim.growth import grow_parameter
from synthembed.optim.sparse import SparseRowOptimizer
from synthembed.vectors import align, load_vectors
from synthembed.vocab import VOCABULARY, Vocabulary

__all__ = [
    "Embedding",
    "GradAccumulation",
    "PaddingIdxError",
    "PoolingMode",
    "TableShapeError",
    "pool_bags",
]

_MODES = ("sum", "mean", "max")
GradAccumulation = Literal["torch", "float32"]
_ACCUMULATIONS = ("torch", "float32")
_INTEGER_TABLES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


class PaddingIdxError(ConfigError, AssertionError):
    """``padding_idx`` outside ``[-num_embeddings, num_embeddings)``.

    Also an ``AssertionError``, the type ``torch.nn.Embedding`` raises there, so
    code written around torch's layer catches ours.
    """


class TableShapeError(ShapeError, AssertionError):
    """A table that is not ``(num_embeddings, embedding_dim)`` (``_weight``) or not 2-d
    (``from_pretrained``); also an ``AssertionError``, as ``torch.nn.Embedding`` raises."""


def _weight_from_safetensors(path: str) -> torch.Tensor:
    """The table in a file written by ``synthembed.save`` or ``save_weights`` (one 2-d tensor)."""
    from synthembed.errors import FileFormatError
    from synthembed.io import read_tensors

    tensors = read_tensors(path)
    if "weight" in tensors:
        return tensors["weight"]
    tables = [t for t in tensors.values() if t.dim() == 2]
    if len(tables) != 1:
        raise FileFormatError(
            f"'{path}' holds {len(tables)} 2-d tensors ({sorted(tensors)}); from_pretrained "
            "needs a 'weight' tensor or exactly one 2-d tensor."
        )
    return tables[0]


@register_savable
class Embedding(Configurable, nn.Embedding):
    r"""A lookup table of ``num_embeddings`` vectors of size ``embedding_dim``.

    A subclass of :class:`torch.nn.Embedding` (tools that look for that class,
    such as Hugging Face's ``resize_token_embeddings``, PEFT's LoRA targets,
    quantization flows and FSDP wrap policies, find it), with the same
    arguments, initialisation (:math:`\mathcal{N}(0, 1)`, padding row zero)
    and ``state_dict`` keys, so a checkpoint of either loads into the other.
    Where it differs from torch's layer, and why: ``docs/torch_differences.md``.
    On top of that:

    - ``vocab=`` binds a :class:`~synthembed.Vocabulary`: ``layer.lookup(["cat"])``.
    - Float input of shape ``(*, num_embeddings)`` is a soft lookup ``x @ W``
      (an id is a one-hot row; dense features such as image vectors fit here).
    - ``mode="sum" | "mean" | "max"`` pools over the last input dimension (a bag),
      leaving out ``padding_idx`` entries and entries where ``mask`` is False,
      with optional ``per_sample_weights``: :class:`torch.nn.EmbeddingBag` for
      padded batches as users hold them.
    - Bad ids raise :class:`~synthembed.errors.InvalidIndexError` naming the
      offending ids and the valid range (``check_ids=False`` skips the check).
    - ``torch.export`` and ``torch.compile(fullgraph=True)`` take it: there the id
      check is an assertion in the graph (a ``RuntimeError`` naming the valid
      range), ``check_finite`` and the soft lookup's input check are skipped, and
      the reference kernels run. ``torch.jit.script`` compiles the plain lookup
      (torch's ``F.embedding``; no ``mode``, ``mask`` or ``per_sample_weights``).
    - On the CPU, outputs, the table and dense gradients live on 2 MiB pages,
      and ``grad_buffers`` (a :class:`~synthembed._kernels.BufferPool`) reuses up
      to two spare dense-gradient tables between steps
      (``layer.grad_buffers.clear()`` frees them); see :mod:`synthembed._kernels`.
      Values and gradients (dense and sparse, every dtype, int32 or int64 ids)
      are those of ``nn.Embedding``, bit for bit, unless
      ``grad_accumulation="float32"`` is asked for.
    - ``fused_optimizer=synthembed.optim.RowWiseAdagrad(lr=0.01)`` (or ``SparseSGD``,
      ``SparseAdagrad``, ``SparseAdamW``, built without parameters) fuses the
      optimizer into backward: the rows a batch reached are updated in place and
      ``weight.grad`` stays None (:mod:`synthembed.optim.fused`).

    Args:
        num_embeddings: number of rows; defaults to ``len(vocab)`` when a vocabulary is bound.
        embedding_dim: size of each vector.
        padding_idx: row that gets no gradient and stays zero at init (excluded
            from pooled bags). Defaults to the bound vocabulary's pad id.
        max_norm: rows looked up with a larger norm are renormalised in place to this norm.
        norm_type: the p of the p-norm for ``max_norm``.
        scale_grad_by_freq: scale gradients by the inverse frequency of ids in the batch.
        sparse: produce sparse gradients for ``weight``.
        vocab: an optional vocabulary bound to the rows.
        mode: pooling over the bag dimension, or None for plain lookup.
        check_finite: raise :class:`~synthembed.errors.NonFiniteError` on the first NaN
            or infinity in an output, naming the ids that produced it.
        check_ids: check that ids lie in ``[0, num_embeddings)`` before the lookup
            (the clear error above). False skips the check (deployment: torch's own
            kernel still refuses bad ids, with its own message).
        grad_accumulation: how a float16/bfloat16 table's dense gradient sums
            repeated ids: ``"torch"`` (default) adds rows one by one, rounding
            after each, as ``nn.Embedding`` does (bit-equal to it); ``"float32"``
            sums in float32 and rounds once (more accurate: for 5,000 ids into 10
            bfloat16 rows the largest error against float64 falls from 2.4 to 0.1).
            float32/float64 tables and sparse gradients are the same either way.
        fused_optimizer: an optimizer of :mod:`synthembed.optim` built without
            parameters; each backward then updates the table's rows itself (one step
            per backward), with its state in the layer's ``state_dict`` (``fused.*``).
            Not with ``sparse=True`` or soft lookups (float input).

    Raises:
        PaddingIdxError: ``padding_idx`` out of range (a ``ConfigError`` and an
            ``AssertionError``).
        TableShapeError: ``_weight`` of the wrong shape (a ``ShapeError`` and an
            ``AssertionError``).
        ConfigError: any other argument out of range.

    Shape:
        - Input: ``(*)`` integer ids -> Output ``(*, embedding_dim)``.
        - With ``mode``: ``(*, L)`` ids -> ``(*, embedding_dim)``.
        - Float input: ``(*, num_embeddings)`` -> ``(*, embedding_dim)``.

    Example:
        >>> emb = Embedding(10, 3)
        >>> emb(torch.tensor([[1, 2], [4, 9]])).shape
        torch.Size([2, 2, 3])
        >>> bag = Embedding(10, 3, padding_idx=0, mode="mean")
        >>> bag(torch.tensor([[1, 2, 0], [4, 0, 0]])).shape
        torch.Size([2, 3])
    """

    config_options = (
        Option("num_embeddings", positional=True),
        Option("embedding_dim", positional=True),
        Option("padding_idx"),
        Option("max_norm"),
        Option("norm_type"),
        Option("scale_grad_by_freq"),
        Option("sparse"),
        Option("mode"),
        Option("check_finite"),
        Option("check_ids"),
        Option("grad_accumulation"),
        Option("fused_optimizer", codec=FUSED_OPTIMIZER),
        Option("frozen", arg="_freeze", get=lambda m: not m.weight.requires_grad, show=False),
        Option("dtype", get=lambda m: m.weight.dtype, codec=DTYPE, show=False),
        Option("vocab", codec=VOCABULARY),
    )

    # __constants__ (TorchScript) are nn.Embedding's own, inherited.

    def __init__(
        self,
        num_embeddings: int | None = None,
        embedding_dim: int | None = None,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: torch.Tensor | None = None,
        _freeze: bool = False,
        device: Any = None,
        dtype: torch.dtype | None = None,
        *,
        vocab: Vocabulary | None = None,
        mode: PoolingMode | None = None,
        check_finite: bool = False,
        check_ids: bool = True,
        grad_accumulation: GradAccumulation = "torch",
        fused_optimizer: SparseRowOptimizer | None = None,
    ) -> None:
        owner = type(self).__name__
        spec = check_fused_optimizer(owner, fused_optimizer)
        if spec is not None and sparse:
            raise ConfigError(
                f"{owner} takes sparse=True or fused_optimizer, not both: a fused table "
                "produces no gradient at all. Drop sparse=True."
            )
        if vocab is not None and not isinstance(vocab, Vocabulary):
            raise ConfigError(f"vocab must be a synthembed.Vocabulary; got {type(vocab).__name__}.")
        if num_embeddings is None:
            if vocab is None and _weight is None:
                raise ConfigError(
                    f"{owner} needs num_embeddings (or vocab=, or a weight); got neither."
                )
            num_embeddings = len(vocab) if vocab is not None else int(_weight.shape[0])  # type: ignore[union-attr]
        if embedding_dim is None and _weight is not None and _weight.dim() == 2:
            embedding_dim = int(_weight.shape[1])
        num_embeddings = cast(int, check_int(owner, "num_embeddings", num_embeddings, 0))
        embedding_dim = cast(int, check_int(owner, "embedding_dim", embedding_dim, 0))
        if vocab is not None and len(vocab) > num_embeddings:
            raise ConfigError(
                f"The vocabulary has {len(vocab)} ids but num_embeddings={num_embeddings}; "
                f"num_embeddings must be >= {len(vocab)}."
            )
        if padding_idx is None and vocab is not None:
            padding_idx = vocab.pad_id
        if padding_idx is not None:
            try:
                check_int(owner, "padding_idx", padding_idx, -num_embeddings, num_embeddings - 1)
            except ConfigError as exc:
                raise PaddingIdxError(str(exc)) from None
            if padding_idx < 0:
                padding_idx += num_embeddings
        check_float(owner, "max_norm", max_norm, 0.0, low_closed=False, optional=True)
        check_float(owner, "norm_type", norm_type, 0.0, low_closed=False)
        if mode is not None:
            check_choice(owner, "mode", mode, _MODES)
        check_choice(owner, "grad_accumulation", grad_accumulation, _ACCUMULATIONS)
        if _weight is not None and tuple(_weight.shape) != (num_embeddings, embedding_dim):
            raise TableShapeError(
                f"_weight must have shape ({num_embeddings}, {embedding_dim}); "
                f"got {tuple(_weight.shape)}."
            )
        table_dtype = _weight.dtype if _weight is not None else dtype
        if table_dtype in _INTEGER_TABLES and not _freeze:
            raise ConfigError(
                f"An integer table (dtype {table_dtype}) cannot be trained; build it frozen "
                "(_freeze=True, or from_pretrained(..., freeze=True), the default)."
            )
        # nn.Embedding.__init__ is skipped on purpose: the checks above replace its asserts,
        # and the table below comes from the kernels (2 MiB pages). Every attribute torch's
        # own methods read (forward, extra_repr, reset_parameters) is set here.
        nn.Module.__init__(self)
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        self.max_norm = max_norm
        self.norm_type = float(norm_type)
        self.scale_grad_by_freq = bool(scale_grad_by_freq)
        self.sparse = bool(sparse)
        self.vocab = vocab
        self.mode: PoolingMode | None = mode
        self.check_finite = bool(check_finite)
        self.check_ids = bool(check_ids)
        self.grad_accumulation: GradAccumulation = grad_accumulation
        self.coverage: Any = None  # set by from_pretrained when vectors are aligned
        self.grad_buffers = _kernels.BufferPool()
        self._out_buffers = _kernels.BufferPool()  # outputs, reused once the caller drops them
        if _weight is None:
            table = _kernels.empty(num_embeddings, embedding_dim, device=device, dtype=dtype)
            self.weight = nn.Parameter(table, requires_grad=not _freeze)
            self.reset_parameters()
        else:
            self.weight = nn.Parameter(_weight, requires_grad=not _freeze)
        self.fused_optimizer = spec
        self.fused = None if spec is None else FusedRows(spec, self.weight)

    def reset_parameters(self) -> None:
        """Draw rows from N(0, 1) and zero the padding row, as torch.nn.Embedding does.

        An integer table (a frozen lookup table, which torch cannot draw) is zeroed.
        """
        if self.weight.is_floating_point():
            nn.init.normal_(self.weight)
        else:
            with torch.no_grad():
                self.weight.zero_()
        self._fill_padding_idx_with_zero()

    def _fill_padding_idx_with_zero(self) -> None:
        if self.padding_idx is not None:
            with torch.no_grad():
                self.weight[self.padding_idx].fill_(0)

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        input: torch.Tensor,
        mask: torch.Tensor | None = None,
        per_sample_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Look up ids (or soft-look-up float rows) and pool bags when ``mode`` is set.

        ``mask`` and ``per_sample_weights`` may be passed by position too: TorchScript
        cannot compile keyword-only arguments with defaults.

        Args:
            input: ``(*)`` integer ids, ``(*, num_embeddings)`` floats, or an
                ``EncodedBatch`` (its mask is used when pooling).
            mask: with ``mode``, a ``(*, L)`` bool tensor; False entries are left out.
            per_sample_weights: with ``mode="sum"`` or ``"mean"``, ``(*, L)`` weights.

        Raises:
            InvalidIndexError: ids outside ``[0, num_embeddings)``.
            ShapeError: bool ids, a float input whose last dimension is not
                ``num_embeddings``, or masks/weights of the wrong shape.
            NonFiniteError: NaN or infinity in float input.
        """
        if torch.jit.is_scripting():
            # TorchScript compiles this branch only: torch's lookup (same values and
            # gradients; no pooling, soft lookup or id messages in a scripted model).
            if self.mode is not None or mask is not None or per_sample_weights is not None:
                raise RuntimeError(
                    "A scripted Embedding does plain lookups only (no mode, mask or "
                    "per_sample_weights); use torch.export or torch.compile for bags."
                )
            return F.embedding(
                input,
                self.weight,
                self.padding_idx,
                self.max_norm,
                self.norm_type,
                self.scale_grad_by_freq,
                self.sparse,
            )
        return self._forward(input, mask, per_sample_weights)

    @torch.jit.unused
    def _forward(
        self,
        input: torch.Tensor,
        mask: torch.Tensor | None,
        per_sample_weights: torch.Tensor | None,
    ) -> torch.Tensor:
        owner = type(self).__name__
        traced = _kernels.tracing()  # asked once per call and passed down
        if isinstance(input, EncodedBatch):
            if mask is not None:
                raise ConfigError(f"{owner} got an EncodedBatch and mask=; the batch has its mask.")
            input, mask = input.ids, (input.mask if self.mode is not None else None)
        if isinstance(input, torch.Tensor) and input.is_floating_point():
            soft = self._soft_lookup(input, traced)
            if self.check_finite and not traced and not bool(torch.isfinite(soft).all()):
                raise NonFiniteError(
                    f"{owner} produced NaN/inf from a finite soft lookup: the table holds "
                    "non-finite rows. Lower the learning rate or clip gradients."
                )
            return soft
        ids = check_integer_ids(input, owner)
        if ids.dtype not in (torch.long, torch.int32):
            ids = ids.long()
        opaque = traced or _kernels.functorch_active()  # ids' values cannot be read
        if self.check_ids and (opaque or ids.numel()):
            low, high = (0, 0) if opaque else _kernels.id_range(ids)  # eager: range first
            if opaque or low < 0 or high >= self.num_embeddings:
                check_ids(ids, self.num_embeddings, owner)
        if self.mode is None:
            if mask is not None or per_sample_weights is not None:
                raise ConfigError(
                    f"mask and per_sample_weights apply to pooled bags; this {owner} has "
                    "mode=None. Build it with mode='sum', 'mean' or 'max'."
                )
            out = self._lookup(ids, self.max_norm, opaque)
        else:
            out = self._pool(ids, mask, per_sample_weights, opaque)
        if self.check_finite and not traced:  # values cannot be read in a traced graph
            self._check_output(out, ids)
        return out

    def _fusing(self) -> bool:
        return self.fused is not None and self.weight.requires_grad and torch.is_grad_enabled()

    def _lookup(
        self, ids: torch.Tensor, max_norm: float | None = None, opaque: bool | None = None
    ) -> torch.Tensor:
        if self.fused is not None and self._fusing():
            if max_norm is not None:
                _kernels.renorm_rows(self.weight, ids, max_norm, self.norm_type)
            return self.fused.lookup(
                self.weight,
                ids,
                padding_idx=self.padding_idx,
                scale_grad_by_freq=self.scale_grad_by_freq,
            )
        return _kernels.lookup(
            self.weight,
            ids,
            padding_idx=self.padding_idx,
            max_norm=max_norm,
            norm_type=self.norm_type,
            scale_grad_by_freq=self.scale_grad_by_freq,
            sparse=self.sparse,
            grad_pool=self.grad_buffers,
            out_pool=self._out_buffers,
            grad_accumulation=self.grad_accumulation,
            opaque=opaque,
        )

    def _pool(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor | None,
        per_sample_weights: torch.Tensor | None,
        opaque: bool,
    ) -> torch.Tensor:
        mode = cast(PoolingMode, self.mode)
        per_sample_weights = check_bag_inputs(ids, mode, mask, per_sample_weights)
        if per_sample_weights is not None:
            per_sample_weights = per_sample_weights.to(self.weight.dtype)
        if self.max_norm is not None:
            _kernels.renorm_rows(self.weight, ids, self.max_norm, self.norm_type)
        lead, length = ids.shape[:-1], ids.shape[-1]
        if length == 0:
            return self.weight.new_zeros((*lead, self.embedding_dim))
        use_bag = mask is None and not (mode == "mean" and per_sample_weights is not None)
        # A fused table pools max bags from its rows (pool_bags' autograd): no fused max kernel.
        use_bag = use_bag and not (mode == "max" and self._fusing())
        if use_bag:
            # Fast path: torch's fused bag kernel (padding entries excluded, empty bags -> 0).
            flat = ids.reshape(-1, length)  # (B, L)
            psw = None if per_sample_weights is None else per_sample_weights.reshape(-1, length)
            if self.fused is not None and self._fusing() and mode != "max":
                out = self.fused.bag(
                    self.weight,
                    flat,
                    mode,
                    per_sample_weights=psw,
                    padding_idx=self.padding_idx,
                    scale_grad_by_freq=self.scale_grad_by_freq,
                )
                return out.reshape(*lead, self.embedding_dim)
            out = _kernels.bag(
                self.weight,
                flat,
                mode,
                per_sample_weights=psw,
                padding_idx=self.padding_idx,
                scale_grad_by_freq=self.scale_grad_by_freq,
                sparse=self.sparse,
                grad_pool=self.grad_buffers,
            )
            return out.reshape(*lead, self.embedding_dim)
        vectors = self._lookup(ids, None, opaque)  # (*, L, D); max_norm already applied
        valid = mask
        if self.padding_idx is not None:
            not_pad = ids != self.padding_idx
            valid = not_pad if valid is None else valid & not_pad
        return pool_bags(vectors, mode, per_sample_weights, valid)

    def _soft_lookup(self, x: torch.Tensor, traced: bool) -> torch.Tensor:
        owner = type(self).__name__
        if self.mode is not None:
            raise ConfigError(
                f"Float input is a soft lookup; it does not combine with mode={self.mode!r}."
            )
        check_last_dim(
            x,
            self.num_embeddings,
            f"Float input to {owner} (a soft lookup x @ W)",
            "If these are ids, cast them with .long().",
        )
        if self._fusing():
            raise ConfigError(
                f"A soft lookup (float input) needs a dense gradient of the table; this {owner} "
                "has a fused_optimizer, which takes integer ids only."
            )
        if not traced:  # values cannot be read in a compiled or exported graph
            check_finite(x, f"Float input to {owner}")
        return torch.matmul(x.to(self.weight.dtype), self.weight)

    def _check_output(self, out: torch.Tensor, ids: torch.Tensor) -> None:
        bad = ~torch.isfinite(out)
        if bool(bad.any()):
            # Plain lookup: out is (*, D) per id; pooled: out is (*, D) per bag of ids (*, L).
            rows = bad.reshape(*ids.shape, -1).any(-1) if self.mode is None else bad.any(-1)
            culprit = torch.unique(ids[rows]).tolist()[:10]
            raise NonFiniteError(
                f"{type(self).__name__} produced NaN/inf; rows of ids {culprit} hold non-finite "
                "values. Lower the learning rate or clip gradients."
            )

    # ------------------------------------------------------------------ vocabulary
    def lookup(self, tokens: Any, *, max_length: int | None = None) -> torch.Tensor:
        """Encode tokens with the bound vocabulary and look them up.

        A token gives ``(D,)``, a sequence ``(L, D)`` (or ``(D,)`` when pooling),
        a batch of sequences ``(B, L, D)`` (or ``(B, D)`` when pooling).
        """
        if self.vocab is None:
            raise ConfigError(
                f"{type(self).__name__}.lookup needs a bound vocabulary; build the layer with "
                "vocab=Vocabulary.build(...)."
            )
        encoded = (
            self.vocab.encode(tokens, max_length=max_length)
            if not isinstance(tokens, (str, int))
            else self.vocab.encode(tokens)
        )
        device = self.weight.device
        if isinstance(encoded, int):
            if self.mode is not None:
                raise ShapeError("A pooled layer looks up bags; pass a sequence of tokens.")
            return self(torch.tensor(encoded, device=device))
        if isinstance(encoded, torch.Tensor):
            return self(encoded.to(device))
        if self.mode is not None:
            return self(encoded.ids.to(device), mask=encoded.mask.to(device))
        return self(encoded.ids.to(device))

    # ------------------------------------------------------------------ pretrained
    @classmethod
    def from_pretrained(
        cls,
        embeddings: Any,
        freeze: bool = True,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        *,
        vocab: Vocabulary | None = None,
        mode: PoolingMode | None = None,
        copy: bool = False,
        check_ids: bool = True,
        grad_accumulation: GradAccumulation = "torch",
        fused_optimizer: SparseRowOptimizer | None = None,
        **align_options: Any,
    ) -> Embedding:
        """Build a layer from pretrained vectors.

        The positional arguments are ``torch.nn.Embedding.from_pretrained``'s.

        Args:
            embeddings: a ``(V, D)`` tensor or numpy array, a path to a
                ``.safetensors`` file (its ``weight`` tensor, or its only 2-d tensor;
                files of :func:`synthembed.save_weights` and of other libraries), a
                path to a vector file (GloVe, word2vec, fastText), or a
                :class:`~synthembed.vectors.Vectors`. A tensor (or array) becomes the
                layer's weight itself, as in torch: ``max_norm`` renormalises the
                caller's tensor, training updates it, and tied weights stay tied.
                Integer tables (uint8, int8, int16, int32, int64) are frozen
                lookup tables, as in torch.
            freeze: keep the weights fixed (``requires_grad=False``); integer tables
                must stay frozen.
            vocab: for a tensor, the vocabulary of its rows; for a file or
                ``Vectors``, the vocabulary to align the vectors to (rows in
                ``vocab`` order, with a coverage report in ``layer.coverage``).
            copy: copy a tensor into a table of the layer's own (on 2 MiB pages on
                the CPU, as tables built by the layer are) instead of sharing it.
                Files and ``Vectors`` are always copied.
            check_ids, grad_accumulation, fused_optimizer: as for :class:`Embedding`.
            align_options: passed to :func:`synthembed.vectors.align`.

        Raises:
            TableShapeError: the vectors are not 2-d (also an ``AssertionError``).
            ShapeError: the vectors are complex or bool, or their row count differs
                from ``len(vocab)``.
            ConfigError: an integer table with ``freeze=False``.
            NonFiniteError: the vectors hold NaN or infinity.
            FileFormatError: a ``.safetensors`` file is unreadable or ambiguous.

        Example:
            >>> layer = Embedding.from_pretrained(torch.eye(3))
            >>> layer(torch.tensor([2])).tolist()
            [[0.0, 0.0, 1.0]]
        """
        coverage = None
        shared = isinstance(embeddings, (torch.Tensor, np.ndarray)) and not copy
        if isinstance(embeddings, np.ndarray):
            embeddings = torch.from_numpy(embeddings)
        if isinstance(embeddings, torch.Tensor):
            weight = embeddings
        elif isinstance(embeddings, (str, os.PathLike)) and os.fspath(embeddings).endswith(
            ".safetensors"
        ):
            weight = _weight_from_safetensors(os.fspath(embeddings))
        else:
            vectors = (
                load_vectors(os.fspath(embeddings))
                if isinstance(embeddings, (str, os.PathLike))
                else embeddings
            )
            if vocab is None:
                vocab, weight = vectors.vocab, vectors.vectors
            else:
                weight, coverage = align(vectors, vocab, **align_options)
        if weight.dim() != 2:
            raise TableShapeError(
                "Pretrained embeddings must be a 2-d (V, D) floating-point tensor; got shape "
                f"{tuple(weight.shape)} (integer tables are taken too, as frozen lookup tables)."
            )
        if not (weight.is_floating_point() or weight.dtype in _INTEGER_TABLES):
            raise ShapeError(
                "Pretrained embeddings must be a floating-point or integer (V, D) table; "
                f"got dtype {weight.dtype}."
            )
        check_finite(weight, "The pretrained embeddings")
        if vocab is not None and len(vocab) != weight.shape[0]:
            raise ShapeError(
                f"The vocabulary has {len(vocab)} ids but the embeddings have {weight.shape[0]} rows."
            )
        if shared:
            # torch.nn.Embedding's semantics: the caller's tensor is the weight. Sharing
            # wins over speed: only this table misses the 2 MiB pages (copy=True keeps them).
            table = weight
        else:
            table = _kernels.empty(
                int(weight.shape[0]),
                int(weight.shape[1]),
                device=weight.device,
                dtype=weight.dtype,
            )
            with torch.no_grad():
                table.copy_(weight.detach())
        layer = cls(
            int(weight.shape[0]),
            int(weight.shape[1]),
            padding_idx,
            max_norm,
            norm_type,
            scale_grad_by_freq,
            sparse,
            _weight=table,
            _freeze=freeze,
            vocab=vocab,
            mode=mode,
            check_ids=check_ids,
            grad_accumulation=grad_accumulation,
            fused_optimizer=fused_optimizer,
        )
        layer.coverage = coverage
        return layer

    # nn.Embedding annotates a ``freeze: bool`` attribute that it never sets; the method wins.
    def freeze(self) -> Embedding:  # type: ignore[override]
        """Stop training the table (``weight.requires_grad = False``); returns self."""
        self.weight.requires_grad_(False)
        return self

    def unfreeze(self) -> Embedding:
        """Train the table again (``weight.requires_grad = True``); returns self."""
        self.weight.requires_grad_(True)
        return self

    def grow(self, n: int, init: torch.Tensor | None = None) -> torch.Tensor:
        """Append ``n`` rows after the existing ones (no id changes) and return their ids.

        Args:
            n: how many rows to add (>= 0).
            init: optional ``(n, embedding_dim)`` initial values; default N(0, 1) like new rows.

        Returns:
            The new ids, a ``(n,)`` long tensor.

        Note:
            The weight stays the same Parameter (its storage grows), so optimizers
            keep training it; those with per-row state (Adam, Adagrad, ...) need
            :func:`synthembed.optim.grow_state` before their next step, which raises
            :class:`~synthembed.optim.StaleStateError` otherwise. A fused optimizer's
            state grows with the table.
        """
        check_int(type(self).__name__ + ".grow", "n", n, 0)
        if init is not None:
            if tuple(init.shape) != (n, self.embedding_dim):
                raise ShapeError(
                    f"init must have shape ({n}, {self.embedding_dim}); got {tuple(init.shape)}."
                )
            check_finite(init, "init")
        old = self.weight
        table = _kernels.empty(
            self.num_embeddings + n, self.embedding_dim, device=old.device, dtype=old.dtype
        )
        with torch.no_grad():
            table[: self.num_embeddings].copy_(old)
            if init is not None:
                table[self.num_embeddings :].copy_(init)
            else:
                table[self.num_embeddings :].normal_()
        grow_parameter(self.weight, table, f"{type(self).__name__}.weight")
        if self.fused is not None:
            self.fused.grow(self.num_embeddings + n)
        start, self.num_embeddings = self.num_embeddings, self.num_embeddings + n
        return torch.arange(start, self.num_embeddings, device=old.device)
