"""SyntheticEmbeddingLayer: a base table blended with synthesized vectors.

Three parts (see ``DESIGN.md``)::

    ids / features ──► BASE ────────────┐
                                        ├─► out = (1 - r) * base + r * synthetic
    side features ──► SYNTHESIZER ──────┘

- the *base* stores vectors (``"full"`` is :class:`~synthembed.Embedding`;
  compressed bases come from :func:`synthembed.layers.bases.make_base`);
- the *synthesizer* makes vectors (:mod:`synthembed.synthesis`: ``combination``,
  ``autoencoder``, ``gan``, ``manifold``, or your own registered technique);
- the *blend* mixes them with the synthesis rate ``r``: fixed, learnable
  (``adaptive=True``), per id after its training count (``adaptive="count"``),
  scheduled (``schedule=("linear", warmup_steps)``), given per call, and raised
  to 1 for cold ids.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from synthembed import _kernels
from synthembed._config import DTYPE, Codec, Configurable, Option
from synthembed._validation import (
    check_finite,
    check_int,
    check_integer_ids,
    check_last_dim,
    check_output_finite,
)
from synthembed.errors import ConfigError
from synthembed.io import register_savable
from synthembed.layers.aux_losses import AuxLosses, PendingLosses
from synthembed.layers.bases import BASES, make_base
from synthembed.layers.blend import LastOutput, LastOutputBackward, blend
from synthembed.layers.cold_start import ColdStart, check_state_size
from synthembed.layers.embedding import Embedding
from synthembed.layers.id_state import add_counts, count_rate, distill_loss, new_counts
from synthembed.layers.sampling import sample
from synthembed.layers.synthesis_config import (
    SynthesisConfig,
    SynthesisControl,
    check_side_features,
    column_names,
    decode_options,
    default_technique,
    encode_options,
    fused_options,
    third_positional_moved,
)
from synthembed.layers.token_lookup import TokenLookup, bind_vocab
from synthembed.synthesis import (
    TECHNIQUES,
    Synthesizer,
    lookup_rows,
    register_technique,
)

__all__ = [
    "TECHNIQUES",
    "SynthesisConfig",
    "SyntheticEmbeddingLayer",
    "blend",
    "register_technique",
]
from synthembed.vocab import VOCABULARY, Vocabulary

_OWNER = "SyntheticEmbeddingLayer"
#: With side features: ``train_synthetic_fraction`` and ``synthesis_rate``, and the rate
#: without (benchmarks/rates.py: rate 0.5 led 0.1 on validation, 0.362 against 0.344).
DEFAULT_FRACTION, DEFAULT_RATE_SIDE, DEFAULT_RATE = 0.3, 0.5, 0.1


_BASE_OPTIONS = Codec(encode_options, lambda data, owner: decode_options(data))
_SCHEDULE = Codec(list, lambda data, owner: tuple(data))


@register_savable
class SyntheticEmbeddingLayer(
    Configurable, SynthesisControl, ColdStart, AuxLosses, LastOutputBackward, TokenLookup, nn.Module
):
    r"""An embedding whose vectors are a blend of stored rows and synthesized ones.

    ``out = (1 - r) * base(ids) + r * synthesizer(ids, base rows, side features)``

    The rate ``r`` is, in order of precedence: the ``synthesis_rate`` given to
    :meth:`forward` (a float, or a 0-d tensor that may require grad, such as
    ``torch.sigmoid(self.my_rate)``); else the layer's own rate, learnable with
    ``adaptive=True``, per id with ``adaptive="count"`` (``r_i = k / (k + count_i)``,
    ``k`` learned: see :class:`SynthesisConfig`) and ramped with ``schedule``.
    Per id, ``r = 1`` (fully synthetic, base row hidden from the synthesizer) for

    - in eval mode: ids seen fewer than ``cold_threshold`` times in training
      mode (the layer counts ids in its ``counts`` buffer) and ids added by
      :meth:`add_items` and not trained since;
    - in training mode: a random ``train_synthetic_fraction`` of the ids.

    Per-id state: ``counts`` (``int32``, saturating at 2**30; None while the
    configuration reads none: no side features, ``cold_threshold=0``, no count
    rate or alignment, a technique without per-id state; see
    :mod:`synthembed.layers.id_state`), ``added`` (None until :meth:`add_items`)
    and the ``step`` that drives ``schedule``. Counts and ``step`` move only
    in forwards that can train the table: training mode, gradients enabled, and a
    base whose parameters require grad. A forward under ``torch.no_grad()`` or
    ``torch.inference_mode()``, in eval mode, or with a frozen base changes no
    count, so ids added by :meth:`add_items` stay cold until they really train.
    (A training forward with gradients whose output is never backpropagated
    still counts: call ``.eval()`` or ``torch.no_grad()`` for scoring passes.)

    With ``synthesis_rate=0`` (and no cold ids) the synthesizer is skipped: the
    layer is exactly :class:`~synthembed.Embedding` (same initial weights under
    the same seed, same outputs, same gradients) at the same cost.

    Gradients come from autograd: ``out.backward(grad)``, or the founding
    documents' ``layer.backward(grad)`` (see :meth:`backward`).

    Speed: with integer ids, techniques whose rows depend on nothing but their
    own id (``combination``, ``autoencoder``, ``manifold``; not ``gan``, whose
    noise is drawn per position: see :attr:`~synthembed.synthesis.Synthesizer.per_id`)
    run once per distinct id of the batch and the blended rows are copied back to
    every position (:func:`synthembed._kernels.unique_ids` and ``expand_rows``); the
    results equal the per-position computation up to float rounding. Batches of
    real, heavy-tailed id streams repeat popular ids many times, so this is the
    common case (``benchmarks/results/synthesis.md`` has the figures).

    Float input ``(*, input_dim)`` is a soft lookup: the base row is ``x @ W``,
    the side features ``x @ side_features``, and the synthesizer works on those
    (the manifold technique on ``x @ coordinates``). This is the multi-modal
    case, e.g. ``SyntheticEmbeddingLayer(2048, 256)`` on image feature vectors.
    Soft input has no ids, so it is never counted or cold.

    Args:
        num_embeddings: number of ids (rows); ids lie in ``[0, num_embeddings)``.
            ``input_dim=`` is the founding documents' name for it (kept as an alias,
            as is the ``input_dim`` attribute).
        embedding_dim: size ``D`` of each vector.
        padding_idx: id whose output has no synthetic part and whose row gets no
            gradient; third positional, as in ``torch.nn.Embedding``.
        synthesis_rate: the blend rate in ``[0, 1]``; default 0.5 with side features, 0.1
            without (see :class:`SynthesisConfig`).
        technique: registered synthesis technique (``"combination"``, ``"autoencoder"``,
            ``"gan"``, ``"manifold"``, or your own); default ``"autoencoder"`` with side
            features, ``"combination"`` without (see :func:`default_technique`).
        side_features: optional ``(input_dim, F)`` per-id features (genres,
            text vectors...), stored in a buffer and saved with the layer: a tensor,
            numpy array, list, or pandas DataFrame (whose column names are kept in
            ``side_feature_names``; ``add_items`` matches DataFrames by them).
        base: registered base name (``"full"``: a dense :class:`~synthembed.Embedding`).
        base_options: keyword options of the base (e.g. ``{"max_norm": 1.0}``).
        adaptive: ``True``: learn the rate (parameter ``rate_logit`` through a sigmoid);
            ``"count"``: a rate per id, ``k / (k + count)`` (parameter ``rate_k``,
            ``k = softplus(rate_k)``).
        schedule: ``("linear", warmup_steps)`` gradual synthesis, or None.
        cold_threshold: eval-mode count below which ids are fully synthetic.
        train_synthetic_fraction: training-mode fraction of ids served fully synthetic;
            default 0.3 with side features, 0 without.
        distill_weight, distill_min_count: distillation (alignment) of synthesized vectors with the
            rows of ids trained at least ``distill_min_count`` times, through
            :meth:`get_loss` (0: off; see :class:`SynthesisConfig`).
        fused_optimizer: handed to the base (bases that take ``fused_optimizer=``
            update their rows inside backward; see :mod:`synthembed.optim`).
        check_finite: raise :class:`~synthembed.errors.NonFiniteError` at the first
            forward whose output holds a NaN or infinity, naming the layer and the
            ids that produced it (one extra pass over the output per forward).
        vocab: a :class:`~synthembed.Vocabulary` bound to the ids, for
            :meth:`lookup`; it sets ``num_embeddings`` and ``padding_idx`` when they
            are not given, and the ``subword`` technique's words.
        device, dtype: where and in which floating dtype the tables and the
            synthesizer live (as ``torch.nn.Embedding``'s).
        technique_options: options of the technique (e.g. ``bottleneck=16``).

    Ids of hashing bases:
        With a base whose class sets ``accepts_any_id = True`` (``"hash"``,
        ``"qr"``, ``"dhe"``) any id in ``[0, 2**63 - 1]`` is valid, not only
        ``[0, input_dim)``: raw 64-bit ids need no vocabulary. Ids at or beyond
        ``input_dim`` lie outside the layer's per-id tables, so: they are not
        counted (``counts`` covers ``[0, input_dim)``); in eval mode they count as
        never seen, hence cold (``r = 1``) when ``cold_threshold > 0``; and a
        forward that synthesizes them raises :class:`InvalidIndexError` if the
        synthesizer would need a per-id table for them, that is when the layer
        has ``side_features`` or the technique keeps per-id state (``manifold``).
        Without side features ``combination``, ``autoencoder`` and ``gan``
        synthesize such ids from their base row; at rate 0 every technique serves them.

    Shape:
        - Input: ``(*)`` integer ids -> Output ``(*, embedding_dim)``.
        - Float input: ``(*, input_dim)`` -> ``(*, embedding_dim)``.

    Raises:
        ConfigError: an argument out of range, an unknown technique or base
            (the message lists the registered ones), or a technique that needs
            side features built without them.
        ShapeError, NonFiniteError: side features of the wrong shape or with NaN/inf.

    Example:
        >>> layer = SyntheticEmbeddingLayer(input_dim=1000, embedding_dim=128, synthesis_rate=0.1)
        >>> layer(torch.randint(0, 1000, (1, 10))).shape
        torch.Size([1, 10, 128])
        >>> genres = torch.rand(1000, 18)
        >>> items = SyntheticEmbeddingLayer(1000, 32, side_features=genres, technique="autoencoder",
        ...                                 train_synthetic_fraction=0.3)
        >>> new_ids = items.add_items(torch.rand(2, 18))   # cold start
        >>> items.eval()(new_ids).shape
        torch.Size([2, 32])

    Training the ``gan`` technique (the two losses touch disjoint parameters)::

        layer = SyntheticEmbeddingLayer(n, 64, technique="gan", side_features=feats,
                                        train_synthetic_fraction=0.3)
        disc = set(layer.discriminator_parameters())
        opt_g = torch.optim.Adam([p for p in model.parameters() if p not in disc])
        opt_d = torch.optim.Adam(disc)
        for ids, target in batches:
            loss = criterion(model(ids), target) + layer.get_loss()  # task + generator
            opt_g.zero_grad(); loss.backward(); opt_g.step()
            opt_d.zero_grad(); layer.discriminator_loss().backward(); opt_d.step()
    """

    config_options = (
        Option("num_embeddings", positional=True),
        Option("embedding_dim", positional=True),
        Option("synthesis_rate", get=lambda m: m.config.synthesis_rate),
        Option("technique", get=lambda m: m.config.technique),
        Option("technique_options", get=lambda m: m.synthesizer.get_options(), init=False),
        Option("side_dim", get=lambda m: m.side_dim, init=False),
        Option("side_feature_names", init=False, show=False),
        Option("padding_idx"),
        Option("base", attr="base_name"),
        Option("base_options", codec=_BASE_OPTIONS, show=False),
        Option("base_config", get=lambda m: m._base_config(), init=False),
        Option("adaptive", get=lambda m: m.config.adaptive),
        Option("schedule", get=lambda m: m.config.schedule, codec=_SCHEDULE),
        Option("cold_threshold", get=lambda m: m.config.cold_threshold),
        Option("train_synthetic_fraction", get=lambda m: m.config.train_synthetic_fraction),
        Option("distill_weight", get=lambda m: m.config.distill_weight),
        Option("distill_min_count", get=lambda m: m.config.distill_min_count),
        Option("check_finite"),
        Option("vocab", codec=VOCABULARY, show=False),
        # Per-id buffers the layer holds (they exist only when needed): load rebuilds them.
        Option("id_state", get=lambda m: m._id_state(), init=False, show=False),
        Option("dtype", get=lambda m: m._dtype(), codec=DTYPE, init=False, show=False),
    )

    counts: torch.Tensor | None
    added: torch.Tensor | None
    step: torch.Tensor
    side_features: torch.Tensor | None

    @third_positional_moved
    def __init__(
        self,
        num_embeddings: int | None = None,
        embedding_dim: int | None = None,
        padding_idx: int | None = None,
        *,
        input_dim: int | None = None,
        synthesis_rate: float | None = None,
        technique: str | None = None,
        side_features: Any = None,
        base: str = "full",
        base_options: dict[str, Any] | None = None,
        adaptive: bool | str = False,
        schedule: tuple[str, int] | None = None,
        cold_threshold: int = 0,
        train_synthetic_fraction: float | None = None,
        distill_weight: float = 0.0,
        distill_min_count: int = 10,
        check_finite: bool = False,
        fused_optimizer: Any = None,
        vocab: Vocabulary | None = None,
        device: Any = None,
        dtype: torch.dtype | None = None,
        _fit: bool = True,
        **technique_options: Any,
    ) -> None:
        if isinstance(padding_idx, float):
            # Before nn.Embedding's order: (input_dim, embedding_dim, synthesis_rate).
            warnings.warn(
                f"{_OWNER}(n, d, {padding_idx!r}): the third positional argument is now "
                "padding_idx, as in torch.nn.Embedding; pass synthesis_rate= by keyword.",
                DeprecationWarning,
                stacklevel=2,
            )
            synthesis_rate, padding_idx = padding_idx, None
        if input_dim is not None:  # the founding documents' name
            if num_embeddings is not None and num_embeddings != input_dim:
                raise ConfigError(
                    f"{_OWNER} got num_embeddings={num_embeddings} and input_dim={input_dim}; "
                    "input_dim is the founding documents' name for num_embeddings: pass one."
                )
            num_embeddings = input_dim
        if technique is None:
            technique = default_technique(_OWNER, side_features is not None, technique_options)
        num_embeddings, padding_idx = bind_vocab(
            vocab, num_embeddings, padding_idx, technique, technique_options
        )
        if num_embeddings is None or embedding_dim is None:
            raise ConfigError(
                f"{_OWNER} needs num_embeddings (or input_dim) and embedding_dim; got "
                f"num_embeddings={num_embeddings}, embedding_dim={embedding_dim}."
            )
        input_dim = num_embeddings
        check_int(_OWNER, "num_embeddings", num_embeddings, 1)
        check_int(_OWNER, "embedding_dim", embedding_dim, 1)
        if train_synthetic_fraction is None:
            # Measured in benchmarks/rates.py (results/rates.md): with side features the
            # synthesizer must learn to stand alone; without, it has only the row to go on.
            train_synthetic_fraction = DEFAULT_FRACTION if side_features is not None else 0.0
        if synthesis_rate is None:
            synthesis_rate = DEFAULT_RATE_SIDE if side_features is not None else DEFAULT_RATE
        config = SynthesisConfig(
            technique=technique,
            synthesis_rate=synthesis_rate,
            adaptive=adaptive,
            schedule=schedule,
            cold_threshold=cold_threshold,
            train_synthetic_fraction=train_synthetic_fraction,
            distill_weight=distill_weight,
            distill_min_count=distill_min_count,
            options=dict(technique_options),
        ).validate()
        names = column_names(side_features)
        side = (
            None
            if side_features is None
            else check_side_features(side_features, input_dim, "side_features")
        )
        if padding_idx is not None:
            check_int(_OWNER, "padding_idx", padding_idx, -input_dim, input_dim - 1)
            if padding_idx < 0:
                padding_idx += input_dim
        base_options = dict(base_options or {})
        if "mode" in base_options:
            raise ConfigError(
                f"{_OWNER} looks up one vector per id; base_options mode={base_options['mode']!r} "
                "(pooling) is not supported. Pool the layer's outputs instead."
            )
        encode_options(base_options)
        fused = fused_options(_OWNER, base, fused_optimizer)
        if not isinstance(check_finite, bool):
            raise ConfigError(
                f"The 'check_finite' parameter of {_OWNER} must be a bool. Got {check_finite!r} instead."
            )
        super().__init__()
        self.vocab = vocab
        self.check_finite = check_finite
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        self.base_name = base
        self.base_options = base_options
        self.side_feature_names = names  # a DataFrame's columns: add_items matches them
        # The base is built first: with synthesis_rate=0 the layer then holds the
        # same initial table as Embedding(input_dim, embedding_dim) under one seed.
        if padding_idx is not None:
            base_options = {**base_options, "padding_idx": padding_idx}
        if device is not None:
            base_options = {**base_options, "device": device}
        if dtype is not None:
            base_options = {**base_options, "dtype": dtype}
        self.base = make_base(base, input_dim, embedding_dim, **base_options, **fused)
        self.register_buffer(
            "side_features",
            None if side is None else side.to(device=self._device(), dtype=self._dtype()),
        )
        self.synthesizer: Synthesizer = self._build_synthesizer(config, fit=_fit)
        self.synthesizer.to(device=self._device(), dtype=self._dtype())
        self.register_buffer("counts", None)  # see "Per-id state" in the class notes
        self.register_buffer("added", None)
        self._count_bound = 0  # an upper bound of counts.max(), for saturation
        self._align: torch.Tensor | None = None  # this forward's alignment loss
        # (1,) rather than 0-d: safetensors checksums view tensors as bytes, which 0-d cannot.
        self.register_buffer("step", torch.zeros(1, dtype=torch.long, device=self._device()))
        self.rate_logit: nn.Parameter | None = None
        self.rate_k: nn.Parameter | None = None
        self.config = config
        self._set_adaptive(config)
        self._ensure_counts(config)
        self._any_added = False
        self._last_output = LastOutput()
        self._synth_ran = False
        self._out_buffers = _kernels.BufferPool()  # deduplicated outputs, reused once dropped
        self._pending = PendingLosses()  # unread training forwards, for get_loss()
        self.register_load_state_dict_pre_hook(check_state_size)
        self.register_load_state_dict_post_hook(_refresh_after_load)

    # ------------------------------------------------------------------ helpers
    def _ensure_counts(self, config: SynthesisConfig) -> None:
        """Allocate ``counts`` once the configuration reads them (from then on they count)."""
        if self.counts is not None:
            return
        if (
            config.counts_needed()
            or self.side_features is not None
            or self.added is not None
            or getattr(self.synthesizer, "id_tables", False)
        ):
            self.counts = new_counts(self.num_embeddings, self._device())

    def _dtype(self) -> torch.dtype:
        for p in self.base.parameters():
            if p.is_floating_point():
                return p.dtype
        return torch.get_default_dtype()

    def _device(self) -> torch.device:
        for p in self.base.parameters():
            return p.device
        return torch.device("cpu")

    @property
    def weight(self) -> torch.Tensor:
        """The base table's weight (for the ``"full"`` base: the ``(input_dim, D)`` table)."""
        return self.base.weight  # type: ignore[return-value]

    @property
    def side_dim(self) -> int | None:
        """Width ``F`` of the side features, or None without them."""
        return None if self.side_features is None else int(self.side_features.shape[1])

    @property
    def input_dim(self) -> int:
        """The founding documents' name of :attr:`num_embeddings`."""
        return self.num_embeddings

    @property
    def technique(self) -> str:
        """Name of the synthesis technique in use."""
        return self.config.technique

    # ------------------------------------------------------------------ forward
    def forward(self, input: torch.Tensor, synthesis_rate: Any = None) -> torch.Tensor:
        """Look up (or soft-look-up) the inputs and blend in synthetic vectors.

        Args:
            input: ``(*)`` integer ids in ``[0, input_dim)`` (any non-negative 64-bit
                id with a hashing base, see the class notes), or ``(*, input_dim)`` floats.
            synthesis_rate: optional per-call rate, a float in ``[0, 1]`` or a 0-d
                tensor (which may require grad; it is used as given).

        Returns:
            ``(*, embedding_dim)`` vectors.

        Raises:
            InvalidIndexError: ids outside ``[0, input_dim)`` (hashing bases: negative
                ids, or ids past ``input_dim`` that would need side features).
            ShapeError: bool ids, or float input whose last dimension is not ``input_dim``.
            NonFiniteError: NaN or infinity in float input; with ``check_finite=True``,
                NaN or infinity in the output (nothing is counted then).
            ConfigError: a per-call rate outside ``[0, 1]``.
        """
        ids: torch.Tensor | None
        beyond = False
        if isinstance(input, torch.Tensor) and input.is_floating_point():
            check_last_dim(
                input,
                self.input_dim,
                f"Float input to {_OWNER} (a soft lookup x @ W)",
                "If these are ids, cast them with .long().",
            )
            check_finite(input, f"Float input to {_OWNER}")
            index = input
            ids = None
        else:
            ids = check_integer_ids(input, _OWNER)
            if ids.dtype != torch.long:
                ids = ids.long()
            beyond = self._check_ids(ids, _OWNER)
            index = ids
        r = self._shared_rate(synthesis_rate)  # None: per id (adaptive="count")
        forced = self._forced(ids, beyond)
        lookup_only = forced is None and isinstance(r, float) and r == 0.0
        if beyond and not lookup_only:
            assert ids is not None
            self._check_beyond(ids)
        inverse = None
        grad = self.training and torch.is_grad_enabled()
        self._align = None
        if lookup_only:
            out = self._base_rows(index, ids)
        elif ids is not None and self._dedupes():
            out, inverse = self._synthesize_distinct(ids, forced, r, beyond)
        else:
            out = self._synthesize(index, ids, self._base_rows(index, ids), forced, r, beyond)
        if self.check_finite:
            check_output_finite(out, ids, type(self).__name__)  # raises before any state changes
        if grad and self._base_trains():  # see "Per-id state" in the class notes
            with torch.no_grad():
                if ids is not None and self.counts is not None:
                    flat = ids.reshape(-1)
                    if beyond:  # counts cover [0, input_dim); ids past it are not counted
                        flat = flat[flat < self.input_dim]
                    self._count(flat)
                self.step.add_(1)
        self._synth_ran = not lookup_only
        align, self._align = self._align, None
        if not torch.compiler.is_compiling():  # a compiled graph keeps nothing
            self._last_output = LastOutput(out)
            if grad and not lookup_only:
                self._pending.add(
                    self.synthesizer.last_record(), inverse, self._synth_version(), align
                )
        return out

    def _count(self, flat: torch.Tensor) -> None:
        assert self.counts is not None
        if torch.compiler.is_compiling():  # a python-side bound would recompile every step
            self.counts.scatter_add_(0, flat, self.counts.new_ones(()).expand_as(flat))
        else:
            self._count_bound = add_counts(self.counts, flat, self._count_bound)

    def _seen(self, ids: torch.Tensor, beyond: bool) -> torch.Tensor:
        """``(*)`` training counts of ids (0 past the table, or when the layer keeps none)."""
        if self.counts is None:
            return torch.zeros(ids.shape, dtype=torch.int32, device=ids.device)
        return self._table_lookup(self.counts, ids, beyond)

    def _distills(self) -> bool:
        return self.config.distill_weight > 0 and self.training and torch.is_grad_enabled()

    def _keep_distill(
        self,
        ids: torch.Tensor,
        beyond: bool,
        syn: torch.Tensor,
        rows: torch.Tensor,
        hidden: torch.Tensor | None,
        weight: torch.Tensor | None = None,
    ) -> None:
        """The alignment loss of this forward: stand-alone vectors of well-trained ids."""
        if hidden is None:
            return
        select = hidden & (self._seen(ids, beyond) >= self.config.distill_min_count)
        loss = distill_loss(syn, rows, select, weight)
        if loss is not None:
            self._align = self.config.distill_weight * loss

    def _base_trains(self) -> bool:
        return any(p.requires_grad for p in self.base.parameters())

    def _synth_version(self) -> int:
        """Changes when an optimizer updates the synthesizer in place (stale pending losses)."""
        return sum(_kernels.tensor_version(p) for p in self.synthesizer.parameters())

    def _base_rows(self, index: torch.Tensor, ids: torch.Tensor | None) -> torch.Tensor:
        if isinstance(self.base, Embedding) and ids is not None:
            return self.base._lookup(ids)  # ids are checked already; skip the second check
        return self.base(index)  # type: ignore[no-any-return]

    def _dedupes(self) -> bool:
        """Synthesize once per distinct id? Needs a per-id technique and a base whose
        gradients do not depend on id multiplicity; not while compiling or under
        ``torch.func`` transforms (the distinct ids are data-dependent sizes)."""
        return (
            self.synthesizer.per_id
            and not getattr(self.base, "scale_grad_by_freq", False)
            and not torch.compiler.is_compiling()
            and not _kernels.functorch_active()
        )

    def _synthesize(
        self,
        index: torch.Tensor,
        ids: torch.Tensor | None,
        rows: torch.Tensor,
        forced: torch.Tensor | None,
        r: float | torch.Tensor | None,
        beyond: bool = False,
    ) -> torch.Tensor:
        """Every position: ``blend(rows, synthesizer(...), r)`` with ``r = 1`` where forced."""
        side = None if self.side_features is None else lookup_rows(self.side_features, index)
        visible = None if forced is None else ~forced
        syn = self.synthesizer(index, rows, side, visible)  # (*, D)
        notpad = None
        if ids is not None and self.padding_idx is not None:
            notpad = ids != self.padding_idx
        if r is None:  # per id; soft input counts x @ counts
            if ids is not None:
                r = self._id_rates(ids, beyond)  # (*, 1)
            else:
                every = torch.arange(self.input_dim, device=index.device)
                seen = index @ self._seen(every, False).to(index.dtype)  # (*,)
                r = self._scheduled(count_rate(seen, self.rate_k))  # type: ignore[arg-type]
        if ids is not None and self._distills():
            d = self.embedding_dim
            flat_hidden = None if forced is None else forced.reshape(-1)
            self._keep_distill(
                ids.reshape(-1), beyond, syn.reshape(-1, d), rows.reshape(-1, d), flat_hidden
            )
        return blend(rows, syn, r, forced, notpad)

    def _synthesize_distinct(
        self,
        ids: torch.Tensor,
        forced: torch.Tensor | None,
        r: float | torch.Tensor | None,
        beyond: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_synthesize` once per distinct ``(id, visible)`` pair, copied back.

        Real id streams repeat popular ids many times, and a uniform batch of 65,536
        ids out of 100,000 still holds only ~48,000 distinct ones. A hidden (forced)
        position gets the key ``-1 - id`` (negative: no 64-bit id overflows), so an id
        both hidden and visible in one batch makes two rows. Returns the output
        ``(*, D)`` and each position's row ``(N,)``.
        """
        flat = ids.reshape(-1)
        high = None if beyond else self.input_dim
        low: int | None = 0
        keys = flat
        if forced is not None:
            keys = torch.where(forced.reshape(-1), -1 - flat, flat)
            low = None if high is None else -high
        uniq, inverse = _kernels.unique_ids(keys, low=low, high=high)  # (U,), (N,)
        hidden = None if forced is None else uniq < 0
        id_u = uniq if hidden is None else torch.where(hidden, -1 - uniq, uniq)
        rows = self._base_rows(id_u, id_u)  # (U, D)
        side = None if self.side_features is None else self.side_features.index_select(0, id_u)
        syn = self.synthesizer(id_u, rows, side, None if hidden is None else ~hidden)
        notpad = None if self.padding_idx is None else id_u != self.padding_idx
        if r is None:
            r = self._id_rates(id_u, beyond)  # (U, 1)
        if self._distills():
            weight = torch.bincount(inverse, minlength=id_u.shape[0])  # positions per row
            self._keep_distill(id_u, beyond, syn, rows, hidden, weight)
        out = blend(rows, syn, r, hidden, notpad)  # (U, D)
        out = _kernels.expand_rows(out, inverse, self._out_buffers)  # (N, D)
        return out.view(*ids.shape, self.embedding_dim), inverse

    def sample(self, n: int, side_features: Any = None, **options: Any) -> torch.Tensor:
        """``n`` new synthetic vectors (data augmentation): :func:`synthembed.layers.sampling.sample`."""
        return sample(self, n, side_features, **options)

    # ------------------------------------------------------------------ save / load
    def _id_state(self) -> list[str]:
        return [name for name in ("counts", "added") if getattr(self, name) is not None]

    def _base_config(self) -> dict[str, Any] | None:
        get = getattr(self.base, "get_config", None)
        return get() if callable(get) else None

    @classmethod
    def from_config(cls, config: dict[str, Any], **extra: Any) -> SyntheticEmbeddingLayer:
        """Rebuild a layer (untrained, coordinates not fitted) from :meth:`get_config` output."""
        cfg = dict(config)
        if "input_dim" in cfg:  # files saved before num_embeddings became the name
            cfg["num_embeddings"] = cfg.pop("input_dim")
        dtype = DTYPE.decode(cfg.get("dtype") or "float32", _OWNER)
        side_dim = cfg.get("side_dim")
        side = (
            None
            if side_dim is None
            else torch.zeros(int(cfg["num_embeddings"]), int(side_dim), dtype=dtype)
        )
        options = cfg.get("technique_options") or {}
        layer = super().from_config(cfg, side_features=side, _fit=False, **options, **extra)
        rebuild = getattr(BASES.get(layer.base_name), "from_config", None)
        base_config = cfg.get("base_config")
        if base_config is not None and callable(rebuild):
            # After add_items a compressed base's layout (e.g. grown tables) is not a
            # function of num_embeddings alone.
            layer.base = rebuild(base_config)
        layer.side_feature_names = cfg.get("side_feature_names")
        n, device = layer.num_embeddings, layer._device()
        if "counts" in (cfg.get("id_state") or ()) and layer.counts is None:
            layer.counts = new_counts(n, device)
        if "added" in (cfg.get("id_state") or ()):
            layer.added = torch.zeros(n, dtype=torch.bool, device=device)
        return layer.to(dtype)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if self.side_features is not None:
            rows, cols = self.side_features.shape
            s += f", side_features=({rows}, {cols})"
        return s


def _refresh_after_load(module: nn.Module, incompatible: Any) -> None:
    """After ``load_state_dict``: re-derive the python-side state from the buffers."""
    if isinstance(module, SyntheticEmbeddingLayer):
        module.refresh_id_state()
        module._last_output = LastOutput()
