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
  (``adaptive=True``), scheduled (``schedule=("linear", warmup_steps)``), given
  per call, and raised to 1 for cold ids.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from synthembed._validation import (
    check_choice,
    check_finite,
    check_float,
    check_ids,
    check_int,
    check_integer_ids,
    check_last_dim,
    check_nonnegative_ids,
    check_output_finite,
)
from synthembed.errors import (
    ConfigError,
    InvalidIndexError,
    NonFiniteError,
    NotFittedError,
    ShapeError,
)
from synthembed.io import register_savable
from synthembed.layers.bases import BASES, make_base
from synthembed.layers.embedding import Embedding, GradBuffers
from synthembed.synthesis import (
    TECHNIQUES,
    Synthesizer,
    get_technique,
    make_synthesizer,
    register_technique,
)
from synthembed.synthesis.base import (
    accumulate_grad,
    alloc_like,
    blend_backward,
    blend_rows,
    lookup_rows,
)

__all__ = ["TECHNIQUES", "SynthesisConfig", "SyntheticEmbeddingLayer", "register_technique"]

_OWNER = "SyntheticEmbeddingLayer"
_SCHEDULES = ("linear",)


class _Keep:
    """Sentinel: an argument of :meth:`configure_synthesis` that was left out."""

    def __repr__(self) -> str:
        return "<keep>"


_KEEP: Any = _Keep()


@dataclass(frozen=True)
class SynthesisConfig:
    """How a :class:`SyntheticEmbeddingLayer` synthesizes; replaced whole by ``configure_synthesis``.

    Attributes:
        technique: a registered synthesis technique (``synthembed.synthesis.TECHNIQUES``).
        synthesis_rate: the blend rate ``r`` in ``[0, 1]``. The default 0.1 is the
            founding documents' value and a *low* rate ("start low, raise
            gradually"); it is not 0 so that the synthesizer trains alongside
            the table by default and cold ids get a trained synthetic vector.
            Use 0 for an exact, equally fast :class:`~synthembed.Embedding`.
        adaptive: learn the rate: ``r = sigmoid(rate_logit)`` starting at ``synthesis_rate``.
        schedule: ``("linear", warmup_steps)``: ``r`` rises linearly from 0 to the
            rate over the first ``warmup_steps`` training-mode forwards; None: constant.
        cold_threshold: in eval mode, ids seen fewer than this many times in
            training mode are served fully synthetic (``r = 1``). 0 disables.
        train_synthetic_fraction: in training mode, this fraction of the ids
            (drawn per forward) is served fully synthetic without its base row,
            so the synthesizer learns to stand alone for cold ids (the idea of
            DropoutNet, Volkovs et al., NeurIPS 2017). 0 disables; 0.2 to 0.5
            suits cold-start work.
        options: the technique's own options (see its class).
    """

    technique: str = "combination"
    synthesis_rate: float = 0.1
    adaptive: bool = False
    schedule: tuple[str, int] | None = None
    cold_threshold: int = 0
    train_synthetic_fraction: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> SynthesisConfig:
        """Check every field; return a normalised copy. Raises :class:`ConfigError`."""
        get_technique(self.technique)
        rate = check_float(_OWNER, "synthesis_rate", self.synthesis_rate, 0.0, 1.0)
        if not isinstance(self.adaptive, bool):
            raise ConfigError(
                f"The 'adaptive' parameter of {_OWNER} must be a bool. Got {self.adaptive!r} instead."
            )
        if self.adaptive and not 0.0 < float(self.synthesis_rate) < 1.0:
            raise ConfigError(
                f"adaptive=True learns the rate through a sigmoid, so synthesis_rate must start "
                f"in the open range (0, 1). Got {self.synthesis_rate!r} instead."
            )
        schedule = self.schedule
        if schedule is not None:
            if not isinstance(schedule, (tuple, list)) or len(schedule) != 2:
                raise ConfigError(
                    f"The 'schedule' parameter of {_OWNER} must be None or (kind, warmup_steps), "
                    f"e.g. ('linear', 1000). Got {schedule!r} instead."
                )
            check_choice(_OWNER, "schedule kind", schedule[0], _SCHEDULES)
            check_int(_OWNER, "schedule warmup_steps", schedule[1], 0)
            schedule = (str(schedule[0]), int(schedule[1]))
        threshold = check_int(_OWNER, "cold_threshold", self.cold_threshold, 0)
        frac = check_float(
            _OWNER, "train_synthetic_fraction", self.train_synthetic_fraction, 0.0, 1.0
        )
        assert rate is not None and threshold is not None and frac is not None
        return replace(
            self,
            synthesis_rate=rate,
            schedule=schedule,
            cold_threshold=threshold,
            train_synthetic_fraction=frac,
            options=dict(self.options),
        )


class _Last(NamedTuple):
    """What the explicit backward needs of the last forward."""

    inputs: torch.Tensor  # ids, or soft-lookup weights
    ids: torch.Tensor | None
    rows: torch.Tensor
    side: torch.Tensor | None
    visible: torch.Tensor | None
    forced: torch.Tensor | None
    notpad: torch.Tensor | None
    raw: torch.Tensor | None  # synthesizer output before the padding mask
    syn: torch.Tensor | None
    rate: float | torch.Tensor
    rate_eff: float | torch.Tensor
    out_shape: tuple[int, ...]
    # Deduplicated forwards (see SyntheticEmbeddingLayer._blend_unique): every field
    # above is per distinct (id, visible) row; inverse maps positions to those rows,
    # the first `skip` rows are hidden (r = 1) and `pad_row` is the padding id's row.
    inverse: torch.Tensor | None = None
    skip: int = 0
    pad_row: int | None = None


# ---------------------------------------------------------------------- deduplicated blend
class _Plan(NamedTuple):
    """How a batch of ids maps onto its distinct ``(id, visible)`` rows."""

    ids: torch.Tensor  # (U,) the distinct rows' ids: hidden rows first, then visible ones
    inverse: torch.Tensor  # (N,) each position's row
    skip: int  # the first `skip` rows are hidden (forced to r = 1)
    counts: torch.Tensor  # (U,) positions per row
    pad_row: int | None  # row of the padding id, if present


def _plan(
    flat: torch.Tensor, forced: torch.Tensor | None, high: int | None, padding_idx: int | None
) -> _Plan:
    """Distinct ``(id, visible)`` pairs of ``flat`` ids, sorted with hidden ones first.

    A hidden position gets the key ``-1 - id`` (negative, so it sorts first and
    no 64-bit id overflows). On the CPU this runs in numpy, on one thread: these
    are (N,)-sized integer operations, for which torch's thread pool barriers
    measured 10-100x the work itself on a busy machine. With keys known to lie in
    ``[-high, high)`` and a range not much wider than the batch, a presence table
    replaces the sort.
    """
    if flat.device.type != "cpu":
        return _plan_torch(flat, forced, padding_idx)
    ids_np = flat.numpy()
    keys = ids_np if forced is None else np.where(forced.numpy(), -1 - ids_np, ids_np)
    low = 0 if forced is None else -(high or 0)
    n = keys.size
    if high is not None and high - low <= 8 * n + 65_536:
        present = np.zeros(high - low, dtype=bool)
        shifted = keys - low if low else keys
        present[shifted] = True
        distinct = np.flatnonzero(present)
        position = np.empty(high - low, dtype=np.int64)
        position[distinct] = np.arange(distinct.size)
        inverse_np = position[shifted]
        uniq = distinct + low if low else distinct
    else:
        uniq, inverse_np = np.unique(keys, return_inverse=True)
        inverse_np = inverse_np.reshape(-1)
    skip = int(np.searchsorted(uniq, 0))
    row_ids = uniq.copy() if skip else uniq
    if skip:
        row_ids[:skip] = -1 - uniq[:skip]
    pad = None
    if padding_idx is not None:
        at = int(np.searchsorted(uniq, padding_idx))
        pad = at if at < uniq.size and int(uniq[at]) == padding_idx else None
    counts = np.bincount(inverse_np, minlength=uniq.size)
    return _Plan(
        torch.from_numpy(np.ascontiguousarray(row_ids, dtype=np.int64)),
        torch.from_numpy(np.ascontiguousarray(inverse_np, dtype=np.int64)),
        skip,
        torch.from_numpy(counts),
        pad,
    )


def _plan_torch(flat: torch.Tensor, forced: torch.Tensor | None, padding_idx: int | None) -> _Plan:
    """:func:`_plan` with torch operations (tensors off the CPU)."""
    keys = flat if forced is None else torch.where(forced, -1 - flat, flat)
    uniq, inverse = torch.unique(keys, sorted=True, return_inverse=True)
    skip = int((uniq < 0).sum())
    counts = torch.bincount(inverse, minlength=uniq.numel())
    ids = torch.cat([-1 - uniq[:skip], uniq[skip:]])
    pad = None
    if padding_idx is not None:
        hit = (uniq == padding_idx).nonzero()
        pad = int(hit[0, 0]) if hit.numel() else None
    return _Plan(ids, inverse, skip, counts, pad)


def _segment_sum(grad: torch.Tensor, inverse: torch.Tensor, rows: int) -> torch.Tensor:
    """``out[inverse[i]] += grad[i]``: ``(N, D)`` position gradients -> ``(U, D)`` row gradients.

    On the CPU ``index_add_`` runs as a scatter that measured 10x slower on two
    threads than on one here (84 ms against 8 ms for 65,536 rows of 128), so it
    runs on one.
    """
    out = alloc_like(rows, grad.shape[-1], grad, zero=True)
    flat = grad.reshape(-1, grad.shape[-1])
    if out.device.type != "cpu":
        return out.index_add_(0, inverse, flat)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out.index_add_(0, inverse, flat)
    finally:
        torch.set_num_threads(threads)
    return out


class _Expand(torch.autograd.Function):
    """``src[inverse]``: distinct rows ``(U, D)`` copied back to every position ``(N, D)``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, src: torch.Tensor, inverse: torch.Tensor, buffers: GradBuffers
    ) -> torch.Tensor:
        n, d = inverse.numel(), src.shape[1]
        if n * d >= 1 << 18 and src.device.type == "cpu":
            out = buffers.empty(n, d, src.device, src.dtype)  # reused once the caller drops it
        else:
            out = alloc_like(n, d, src)
        torch.index_select(src, 0, inverse, out=out)
        ctx.save_for_backward(inverse)
        ctx.rows = src.shape[0]
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        (inverse,) = ctx.saved_tensors
        return _segment_sum(grad, inverse, ctx.rows), None, None


class _Blend(torch.autograd.Function):
    """Autograd wrapper of :func:`~synthembed.synthesis.base.blend_rows` / ``blend_backward``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        rows: torch.Tensor,
        syn: torch.Tensor,
        rate: float | torch.Tensor,
        skip: int,
        pad_row: int | None,
    ) -> torch.Tensor:
        need_rate = isinstance(rate, torch.Tensor) and ctx.needs_input_grad[2]
        ctx.save_for_backward(
            rows if need_rate else None,
            syn if need_rate else None,
            rate if isinstance(rate, torch.Tensor) else None,
        )
        ctx.rate = None if isinstance(rate, torch.Tensor) else rate
        ctx.skip, ctx.pad_row, ctx.need_rate = skip, pad_row, need_rate
        return blend_rows(rows, syn, rate, skip, pad_row)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        rows, syn, rate_t = ctx.saved_tensors
        rate = ctx.rate if rate_t is None else rate_t
        g_rows, g_syn, g_rate = blend_backward(
            grad.contiguous(),
            rows,
            syn,
            rate,
            ctx.skip,
            ctx.pad_row,
            need_rows=ctx.needs_input_grad[0],
            need_syn=ctx.needs_input_grad[1],
            need_rate=ctx.need_rate,
        )
        if g_rate is not None:
            g_rate = g_rate.reshape(rate_t.shape)
        return g_rows, g_syn, g_rate, None, None


def _encode_options(options: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe copy of base options (``torch.dtype`` values become tagged strings)."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, torch.dtype):
            out[key] = {"torch.dtype": str(value).removeprefix("torch.")}
        else:
            out[key] = value
    json.dumps(out)  # raises TypeError for anything else that is not JSON-safe
    return out


def _decode_options(options: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, dict) and set(value) == {"torch.dtype"}:
            dtype = getattr(torch, value["torch.dtype"], None)
            if not isinstance(dtype, torch.dtype):
                raise ConfigError(f"Unknown dtype {value['torch.dtype']!r} in base_options.")
            out[key] = dtype
        else:
            out[key] = value
    return out


def _check_side_features(side: Any, rows: int, what: str) -> torch.Tensor:
    if not isinstance(side, torch.Tensor):
        try:
            side = torch.as_tensor(side)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ShapeError(
                f"{what} must be a 2-d tensor of shape ({rows}, F); got {type(side).__name__}."
            ) from exc
    if side.dim() != 2 or side.shape[0] != rows or side.shape[1] == 0:
        raise ShapeError(
            f"{what} must have shape ({rows}, F) with F >= 1 (one row of features per id); "
            f"got {tuple(side.shape)}."
        )
    if not side.is_floating_point():
        side = side.to(torch.get_default_dtype())
    check_finite(side, what)
    return side


@register_savable
class SyntheticEmbeddingLayer(nn.Module):
    r"""An embedding whose vectors are a blend of stored rows and synthesized ones.

    ``out = (1 - r) * base(ids) + r * synthesizer(ids, base rows, side features)``

    The rate ``r`` is, in order of precedence: the ``synthesis_rate`` given to
    :meth:`forward` (a float, or a 0-d tensor that may require grad, such as
    ``torch.sigmoid(self.my_rate)``); else the layer's own rate, learnable with
    ``adaptive=True`` and ramped with ``schedule``. Per id, ``r = 1`` (fully
    synthetic, base row hidden from the synthesizer) for

    - in eval mode: ids seen fewer than ``cold_threshold`` times in training
      mode (the layer counts ids in its ``counts`` buffer) and ids added by
      :meth:`add_items` and not trained since;
    - in training mode: a random ``train_synthetic_fraction`` of the ids.

    With ``synthesis_rate=0`` (and no cold ids) the synthesizer is skipped: the
    layer is exactly :class:`~synthembed.Embedding` (same initial weights under
    the same seed, same outputs, same gradients) at the same cost.

    Speed: with integer ids, techniques whose rows depend on nothing but their
    own id (``combination``, ``autoencoder``, ``manifold``; ``gan`` in eval mode,
    see :meth:`~synthembed.synthesis.Synthesizer.per_id`) run once per distinct
    id of the batch and the blended rows are copied back to every position; the
    results equal the per-position computation up to float rounding. Batches of
    real, heavy-tailed id streams repeat popular ids many times, so this is the
    common case (``benchmarks/results/synthesis.md`` has the figures).

    Float input ``(*, input_dim)`` is a soft lookup: the base row is ``x @ W``,
    the side features ``x @ side_features``, and the synthesizer works on those
    (the manifold technique on ``x @ coordinates``). This is the multi-modal
    case, e.g. ``SyntheticEmbeddingLayer(2048, 256)`` on image feature vectors.
    Soft input has no ids, so it is never counted or cold.

    Args:
        input_dim: number of ids (rows); ids lie in ``[0, input_dim)``.
        embedding_dim: size ``D`` of each vector.
        synthesis_rate: the blend rate in ``[0, 1]`` (default 0.1; see :class:`SynthesisConfig`).
        technique: registered synthesis technique (``"combination"``, ``"autoencoder"``,
            ``"gan"``, ``"manifold"``, or your own).
        side_features: optional ``(input_dim, F)`` per-id features (genres,
            text vectors...), stored in a buffer and saved with the layer.
        padding_idx: id whose output has no synthetic part and whose row gets no gradient.
        base: registered base name (``"full"``: a dense :class:`~synthembed.Embedding`).
        base_options: keyword options of the base (e.g. ``{"max_norm": 1.0}``).
        adaptive: learn the rate (parameter ``rate_logit`` through a sigmoid).
        schedule: ``("linear", warmup_steps)`` gradual synthesis, or None.
        cold_threshold: eval-mode count below which ids are fully synthetic.
        train_synthetic_fraction: training-mode fraction of ids served fully synthetic.
        check_finite: raise :class:`~synthembed.errors.NonFiniteError` at the first
            forward whose output holds a NaN or infinity, naming the layer and the
            ids that produced it (one extra pass over the output per forward).
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

    counts: torch.Tensor
    added: torch.Tensor
    step: torch.Tensor
    side_features: torch.Tensor | None

    def __init__(
        self,
        input_dim: int,
        embedding_dim: int,
        synthesis_rate: float = 0.1,
        *,
        technique: str = "combination",
        side_features: Any = None,
        padding_idx: int | None = None,
        base: str = "full",
        base_options: dict[str, Any] | None = None,
        adaptive: bool = False,
        schedule: tuple[str, int] | None = None,
        cold_threshold: int = 0,
        train_synthetic_fraction: float = 0.0,
        check_finite: bool = False,
        _fit: bool = True,
        **technique_options: Any,
    ) -> None:
        check_int(_OWNER, "input_dim", input_dim, 1)
        check_int(_OWNER, "embedding_dim", embedding_dim, 1)
        config = SynthesisConfig(
            technique=technique,
            synthesis_rate=synthesis_rate,
            adaptive=adaptive,
            schedule=schedule,
            cold_threshold=cold_threshold,
            train_synthetic_fraction=train_synthetic_fraction,
            options=dict(technique_options),
        ).validate()
        side = (
            None
            if side_features is None
            else _check_side_features(side_features, input_dim, "side_features")
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
        _encode_options(base_options)
        if not isinstance(check_finite, bool):
            raise ConfigError(
                f"The 'check_finite' parameter of {_OWNER} must be a bool. Got {check_finite!r} instead."
            )
        super().__init__()
        self.check_finite = check_finite
        self.input_dim = input_dim
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        self.base_name = base
        self.base_options = base_options
        # The base is built first: with synthesis_rate=0 the layer then holds the
        # same initial table as Embedding(input_dim, embedding_dim) under one seed.
        if padding_idx is not None:
            base_options = {**base_options, "padding_idx": padding_idx}
        self.base = make_base(base, input_dim, embedding_dim, **base_options)
        self.register_buffer("side_features", None if side is None else side.to(self._dtype()))
        self.synthesizer: Synthesizer = self._build_synthesizer(config, fit=_fit)
        self.register_buffer(
            "counts", torch.zeros(input_dim, dtype=torch.long, device=self._device())
        )
        self.register_buffer(
            "added", torch.zeros(input_dim, dtype=torch.bool, device=self._device())
        )
        # (1,) rather than 0-d: safetensors checksums view tensors as bytes, which 0-d cannot.
        self.register_buffer("step", torch.zeros(1, dtype=torch.long, device=self._device()))
        self.rate_logit: nn.Parameter | None = None
        self.config = config
        self._set_adaptive(config)
        self._any_added = False
        self._last: _Last | None = None
        self._synth_ran = False
        self._out_buffers = GradBuffers()  # deduplicated outputs, reused once dropped
        self.register_load_state_dict_post_hook(_refresh_after_load)

    # ------------------------------------------------------------------ helpers
    def _dtype(self) -> torch.dtype:
        for p in self.base.parameters():
            if p.is_floating_point():
                return p.dtype
        return torch.get_default_dtype()

    def _device(self) -> torch.device:
        for p in self.base.parameters():
            return p.device
        return torch.device("cpu")

    def _build_synthesizer(self, config: SynthesisConfig, *, fit: bool) -> Synthesizer:
        side = self.side_features
        synth = make_synthesizer(
            config.technique,
            self.input_dim,
            self.embedding_dim,
            None if side is None else int(side.shape[1]),
            **config.options,
        )
        synth.to(device=self._device(), dtype=self._dtype())
        if fit:
            synth.fit(side)
        return synth

    def _set_adaptive(self, config: SynthesisConfig) -> None:
        if config.adaptive:
            rate = config.synthesis_rate
            # (1,) rather than 0-d, like ``step``: saved files checksum tensors as bytes.
            logit = torch.full(
                (1,), math.log(rate / (1 - rate)), dtype=self._dtype(), device=self._device()
            )
            self.rate_logit = nn.Parameter(logit)
        else:
            self.rate_logit = None

    @property
    def weight(self) -> torch.Tensor:
        """The base table's weight (for the ``"full"`` base: the ``(input_dim, D)`` table)."""
        return self.base.weight  # type: ignore[return-value]

    @property
    def num_embeddings(self) -> int:
        """Alias of ``input_dim`` (``torch.nn.Embedding``'s name)."""
        return self.input_dim

    @property
    def technique(self) -> str:
        """Name of the synthesis technique in use."""
        return self.config.technique

    # ------------------------------------------------------------------ rate
    def current_rate(self, synthesis_rate: Any = None) -> float | torch.Tensor:
        """The blend rate the next forward uses (before per-id overrides).

        Args:
            synthesis_rate: a per-call rate (float in ``[0, 1]`` or a 0-d tensor), or None.
        """
        if synthesis_rate is not None:
            if isinstance(synthesis_rate, torch.Tensor):
                if synthesis_rate.numel() != 1 or not synthesis_rate.is_floating_point():
                    raise ConfigError(
                        f"A tensor synthesis_rate must be a floating 0-d tensor; got dtype "
                        f"{synthesis_rate.dtype} and shape {tuple(synthesis_rate.shape)}."
                    )
                return synthesis_rate.reshape(())
            rate = check_float(_OWNER, "synthesis_rate", synthesis_rate, 0.0, 1.0)
            assert rate is not None
            return rate
        cfg = self.config
        r: float | torch.Tensor = (
            torch.sigmoid(self.rate_logit).reshape(())
            if self.rate_logit is not None
            else cfg.synthesis_rate
        )
        if cfg.schedule is not None:
            warmup = cfg.schedule[1]
            factor = 1.0 if warmup == 0 else min(1.0, int(self.step) / warmup)
            r = r * factor
        return r

    def _accepts_any_id(self) -> bool:
        return bool(getattr(self.base, "accepts_any_id", False))

    def _table_lookup(self, table: torch.Tensor, ids: torch.Tensor, beyond: bool) -> torch.Tensor:
        """``table[ids]`` for a per-id buffer; ids past its end (hashing bases) read 0/False."""
        if not beyond:
            return table[ids]
        inside = ids < table.shape[0]
        values = table[torch.where(inside, ids, 0)]
        return values & inside if values.dtype == torch.bool else values * inside

    def _forced(self, ids: torch.Tensor | None, beyond: bool = False) -> torch.Tensor | None:
        """``(*)`` bool: ids served fully synthetic in this forward, or None for none."""
        if ids is None:
            return None
        cfg = self.config
        forced: torch.Tensor | None = None
        if self.training:
            if cfg.train_synthetic_fraction > 0:
                forced = torch.rand(ids.shape, device=ids.device) < cfg.train_synthetic_fraction
        elif cfg.cold_threshold > 0 or self._any_added:
            seen = self._table_lookup(self.counts, ids, beyond)
            forced = seen < cfg.cold_threshold
            if self._any_added:
                forced = forced | (self._table_lookup(self.added, ids, beyond) & (seen == 0))
        if forced is None:
            return None
        if self.padding_idx is not None:
            forced = forced & (ids != self.padding_idx)
        if not self.training and not bool(forced.any()):
            return None
        return forced

    def _check_ids(self, ids: torch.Tensor, owner: str) -> bool:
        """Validate ids; True when some lie past ``input_dim`` (hashing bases only)."""
        if not self._accepts_any_id():
            check_ids(ids, self.input_dim, owner)
            return False
        check_nonnegative_ids(ids, owner)
        return ids.numel() > 0 and int(ids.max()) >= self.input_dim

    def _check_beyond(self, ids: torch.Tensor) -> None:
        """Ids past ``input_dim`` about to be synthesized: fine unless a per-id table is needed."""
        need = None
        if self.side_features is not None:
            need = f"side features exist only for ids in [0, {self.input_dim - 1}]"
        elif getattr(self.synthesizer, "id_tables", False):
            need = (
                f"the {self.config.technique!r} technique keeps per-id state only for ids in "
                f"[0, {self.input_dim - 1}]"
            )
        if need is None:
            return
        outside = ids[ids >= self.input_dim]
        raise InvalidIndexError(
            f"{_OWNER} got {outside.numel()} id(s) at or beyond input_dim={self.input_dim} "
            f"(largest {int(outside.max())}) to synthesize; the {self.base_name!r} base takes any "
            f"64-bit id, but {need}. Add such ids with add_items (with their side features), "
            "or serve them from the base alone (synthesis_rate=0, cold_threshold=0)."
        )

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
        r = self.current_rate(synthesis_rate)
        forced = self._forced(ids, beyond)
        lookup_only = forced is None and not isinstance(r, torch.Tensor) and r == 0.0
        if beyond and not lookup_only:
            assert ids is not None
            self._check_beyond(ids)
        # Inputs are valid. Drop the previous forward now, so its graph goes as soon as
        # the caller drops its output (not at the end of this step).
        previous = self._last
        if not torch.compiler.is_compiling():
            self._last = None
        if lookup_only:
            out = rows = self._base_rows(index, ids)
            last = _Last(
                index, ids, rows, None, None, None, None, None, None, r, r, tuple(rows.shape)
            )
        elif ids is not None and self._dedupes():
            out, last = self._blend_unique(ids, forced, r, beyond)
        else:
            out, last = self._blend(index, ids, self._base_rows(index, ids), forced, r)
        if self.check_finite:
            try:
                check_output_finite(out, ids, type(self).__name__)
            except NonFiniteError:
                if not torch.compiler.is_compiling():
                    self._last = previous
                raise
        if self.training:
            with torch.no_grad():
                if ids is not None:
                    flat = ids.reshape(-1)
                    if beyond:  # counts cover [0, input_dim); ids past it are not counted
                        flat = flat[flat < self.input_dim]
                    # An expanded 1 (no (N,) allocation and fill): measurably cheaper per step.
                    self.counts.scatter_add_(0, flat, flat.new_ones(()).expand_as(flat))
                self.step.add_(1)
        self._synth_ran = not lookup_only
        self._remember(last)
        return out

    def _base_rows(self, index: torch.Tensor, ids: torch.Tensor | None) -> torch.Tensor:
        if isinstance(self.base, Embedding) and ids is not None:
            return self.base._lookup(ids)  # ids are checked already; skip the second check
        return self.base(index)  # type: ignore[no-any-return]

    def _dedupes(self) -> bool:
        """Synthesize once per distinct id? Needs a per-id technique and a base whose
        gradients do not depend on id multiplicity; not while compiling (data-dependent sizes)."""
        return (
            self.synthesizer.per_id()
            and not getattr(self.base, "scale_grad_by_freq", False)
            and not torch.compiler.is_compiling()
            and not torch._C._are_functorch_transforms_active()  # ids are read as numbers
        )

    def _blend_unique(
        self,
        ids: torch.Tensor,
        forced: torch.Tensor | None,
        r: float | torch.Tensor,
        beyond: bool,
    ) -> tuple[torch.Tensor, _Last]:
        """:meth:`_blend` computed once per distinct ``(id, visible)`` pair, copied back.

        Real id streams repeat popular ids many times, and a uniform batch of 65,536
        ids out of 100,000 still holds only ~48,000 distinct ones. Hidden (forced)
        positions get the key ``-1 - id``, so they sort first: the synthesizer sees
        them as a prefix of the rows and skips their products.
        """
        flat = ids.reshape(-1)
        plan = _plan(
            flat,
            None if forced is None else forced.reshape(-1),
            None if beyond else self.input_dim,
            self.padding_idx,
        )
        id_u, inverse, skip, pad_row = plan.ids, plan.inverse, plan.skip, plan.pad_row
        u = id_u.numel()
        visible = None
        if skip:
            visible = torch.arange(u, device=id_u.device) >= skip  # (U,): a hidden prefix
        rows = self._base_rows(id_u, id_u)  # (U, D)
        side = None if self.side_features is None else self.side_features.index_select(0, id_u)
        counts = plan.counts if self.training else None
        rate: float | torch.Tensor = r
        if isinstance(r, torch.Tensor) and r.dtype != rows.dtype:
            rate = r.to(rows.dtype)
        fused = self.synthesizer.fused_blend(id_u, rows, side, visible, rate, pad_row)
        if fused is not None:
            out_u, raw = fused
        else:
            raw = self.synthesizer(id_u, rows, side, visible, counts=counts)  # (U, D)
            out_u = _Blend.apply(rows, raw, rate, skip, pad_row)
        out = _Expand.apply(out_u, inverse, self._out_buffers).view(*ids.shape, self.embedding_dim)
        last = _Last(
            id_u,
            id_u,
            rows,
            side,
            visible,
            None,
            None,
            raw,
            raw,
            r,
            rate,
            tuple(out.shape),
            inverse,
            skip,
            pad_row,
        )
        return out, last

    def _blend(
        self,
        index: torch.Tensor,
        ids: torch.Tensor | None,
        rows: torch.Tensor,
        forced: torch.Tensor | None,
        r: float | torch.Tensor,
    ) -> tuple[torch.Tensor, _Last]:
        """``(1 - r) * rows + r * synthetic`` (``r = 1`` where forced), and what backward needs."""
        side = None if self.side_features is None else lookup_rows(self.side_features, index)
        visible = None if forced is None else ~forced
        raw = self.synthesizer(index, rows, side, visible)  # (*, D)
        notpad = None
        syn = raw
        if ids is not None and self.padding_idx is not None:
            notpad = ids != self.padding_idx
            syn = raw * notpad.unsqueeze(-1).to(raw.dtype)
        r_eff: float | torch.Tensor = r
        if forced is not None:
            r_t = (
                r
                if isinstance(r, torch.Tensor)
                else torch.tensor(r, dtype=rows.dtype, device=rows.device)
            )
            r_eff = torch.where(
                forced.unsqueeze(-1), torch.ones((), dtype=rows.dtype, device=rows.device), r_t
            )
        if isinstance(r_eff, torch.Tensor) and r_eff.dtype != rows.dtype:
            r_eff = r_eff.to(rows.dtype)
        # lerp = (1 - r) * rows + r * syn in one pass (exactly rows at r = 0, syn at r = 1).
        if (
            (not isinstance(r_eff, torch.Tensor) or r_eff.dim() == 0)
            and syn.shape == rows.shape
            and not torch.compiler.is_compiling()
        ):
            # One rate for every row: the blend on 2 MiB pages, gradients in one pass each.
            d = rows.shape[-1]
            out = _Blend.apply(rows.reshape(-1, d), syn.reshape(-1, d), r_eff, 0, None).view(
                rows.shape
            )
        else:
            out = torch.lerp(rows, syn, r_eff)
        last = _Last(
            index, ids, rows, side, visible, forced, notpad, raw, syn, r, r_eff, tuple(out.shape)
        )
        return out, last

    def _remember(self, last: _Last) -> None:
        # Keep the last forward for backward()/get_loss(); a compiled graph keeps nothing.
        if not torch.compiler.is_compiling():
            self._last = last

    # ------------------------------------------------------------------ losses
    def get_loss(self) -> torch.Tensor:
        """Auxiliary loss of the technique for the last training-mode forward.

        ``autoencoder``: reconstruction + alignment; ``gan``: the generator's
        loss; ``combination`` and ``manifold``: none. Add it to the task loss.

        Returns:
            A 0-d tensor; zero when the technique has no loss, in eval mode, or
            when the last forward skipped the synthesizer (rate 0).
        """
        aux = self.synthesizer.aux_loss() if self._synth_ran else None
        if aux is None:
            return torch.zeros((), dtype=self._dtype(), device=self._device())
        return aux

    def discriminator_loss(self) -> torch.Tensor:
        """The ``gan`` technique's discriminator loss for the last training forward.

        Returns:
            A 0-d tensor (zero in eval mode or when the synthesizer was skipped).

        Raises:
            ConfigError: the technique has no discriminator.
        """
        fn = getattr(self.synthesizer, "discriminator_loss", None)
        if fn is None:
            raise ConfigError(
                f"discriminator_loss() belongs to the 'gan' technique; this layer uses "
                f"{self.config.technique!r}. Switch with configure_synthesis(technique='gan')."
            )
        loss = fn() if self._synth_ran else None
        if loss is None:
            return torch.zeros((), dtype=self._dtype(), device=self._device())
        return loss  # type: ignore[no-any-return]

    def discriminator_parameters(self) -> list[nn.Parameter]:
        """Parameters of the ``gan`` discriminator (empty for other techniques)."""
        disc = getattr(self.synthesizer, "discriminator", None)
        return list(disc.parameters()) if isinstance(disc, nn.Module) else []

    # ------------------------------------------------------------------ explicit backward
    def backward(self, grad_output: torch.Tensor) -> None:
        """Accumulate the parameter gradients of the last forward into ``.grad``, explicitly.

        Computes what ``out.backward(grad_output)`` would, term by term:

        - blend: ``d rows = g (1 - r)``, ``d synthetic = g r`` (padding ids
          masked), ``d r = sum(g (synthetic - rows))`` over ids not forced to 1;
        - synthesizer: the technique's :meth:`~synthembed.synthesis.Synthesizer.backward`.
          ``combination`` writes its chain rule out; the others differentiate
          their own sub-graph, recorded during the forward, with
          :func:`torch.autograd.grad` (their layers are standard
          ``nn.Linear``/activation stacks, where hand-written rules would add
          only risk), and the gradients are added into ``.grad`` by hand;
        - base ``"full"``: the sparse row update ``weight.grad.index_add_(0, ids,
          d rows)`` with padding rows skipped (soft lookup: ``x^T d rows``);
          other bases (and ``sparse=True`` or ``scale_grad_by_freq``) go
          through the base's own autograd graph;
        - a rate tensor given to forward, a learnable rate, and float input
          that requires grad receive their gradients through their own
          (upstream) autograd graphs.

        Args:
            grad_output: ``(*, D)``, the gradient of the loss with respect to the
                last forward's output.

        Raises:
            NotFittedError: no forward to differentiate (none yet, or its
                backward was already taken).
            ShapeError: ``grad_output`` does not have the output's shape.
        """
        last = self._last
        if last is None:
            raise NotFittedError(
                f"{_OWNER}.backward() differentiates the last forward pass, and there is none "
                "pending: call layer(input) first. Each forward can be differentiated once."
            )
        if not isinstance(grad_output, torch.Tensor) or tuple(grad_output.shape) != last.out_shape:
            got = (
                tuple(grad_output.shape)
                if isinstance(grad_output, torch.Tensor)
                else type(grad_output).__name__
            )
            raise ShapeError(
                f"grad_output must have the last output's shape {last.out_shape}; got {got}."
            )
        self._last = None
        g = grad_output.detach().to(last.rows.dtype)
        if last.inverse is not None:
            self._backward_unique(last, g)
            return
        d_index: torch.Tensor | None = None
        if last.syn is None or last.raw is None:
            g_rows = g
        else:
            r_eff = (
                last.rate_eff.detach() if isinstance(last.rate_eff, torch.Tensor) else last.rate_eff
            )
            g_rows = g * (1 - r_eff)
            g_syn = g * r_eff
            if last.notpad is not None:
                g_syn = g_syn * last.notpad.unsqueeze(-1).to(g.dtype)
            rate = last.rate
            if isinstance(rate, torch.Tensor) and rate.requires_grad:
                diff = g * (last.syn.detach() - last.rows.detach())
                if last.forced is not None:
                    diff = diff * (~last.forced).unsqueeze(-1).to(g.dtype)
                torch.autograd.backward(rate, diff.sum().reshape(rate.shape))
            d_rows, d_side, d_idx = self.synthesizer.backward(
                g_syn, last.inputs, last.rows, last.side, last.visible, last.raw
            )
            if d_rows is not None:
                g_rows = g_rows + d_rows
            if d_side is not None and self.side_features is not None:
                d_index = d_side @ self.side_features.t()
            if d_idx is not None:
                d_index = d_idx if d_index is None else d_index + d_idx
        d_index = self._base_backward(last, g_rows, d_index)
        if d_index is not None and last.inputs.requires_grad:
            torch.autograd.backward(last.inputs, d_index)

    def _backward_unique(self, last: _Last, g: torch.Tensor) -> None:
        """:meth:`backward` of a deduplicated forward: sum positions per row, then per row."""
        assert last.inverse is not None and last.raw is not None
        g_u = _segment_sum(g, last.inverse, last.rows.shape[0])  # (U, D)
        rate = last.rate_eff
        need_rate = isinstance(rate, torch.Tensor) and rate.requires_grad
        with torch.no_grad():
            g_rows, g_syn, g_rate = blend_backward(
                g_u,
                last.rows.detach(),
                last.raw.detach(),
                rate.detach() if isinstance(rate, torch.Tensor) else rate,
                last.skip,
                last.pad_row,
                need_rate=need_rate,
            )
        assert g_rows is not None and g_syn is not None
        if need_rate:
            assert isinstance(rate, torch.Tensor) and g_rate is not None
            torch.autograd.backward(rate, g_rate.reshape(rate.shape))
        d_rows, _, _ = self.synthesizer.backward(
            g_syn, last.inputs, last.rows, last.side, last.visible, last.raw
        )
        if d_rows is not None:
            g_rows += d_rows
        self._base_backward(last, g_rows, None)

    def _base_backward(
        self, last: _Last, g_rows: torch.Tensor, d_index: torch.Tensor | None
    ) -> torch.Tensor | None:
        base = self.base
        simple = isinstance(base, Embedding) and not base.sparse and not base.scale_grad_by_freq
        if not simple:
            if last.rows.requires_grad:
                torch.autograd.backward(last.rows, g_rows)
            return d_index
        assert isinstance(base, Embedding)
        w = base.weight
        d = self.embedding_dim
        with torch.no_grad():
            if last.ids is not None:
                flat_ids = last.ids.reshape(-1)
                flat_g = g_rows.reshape(-1, d)
                if self.padding_idx is not None:
                    flat_g = flat_g.masked_fill((flat_ids == self.padding_idx).unsqueeze(1), 0)
                if w.requires_grad:
                    accumulate_grad(w, torch.zeros_like(w).index_add_(0, flat_ids, flat_g))
                return d_index
            x = last.inputs.detach().to(w.dtype)
            if w.requires_grad:
                accumulate_grad(w, x.reshape(-1, self.input_dim).t() @ g_rows.reshape(-1, d))
            if last.inputs.requires_grad:
                d_x = g_rows @ w.t()
                d_index = d_x if d_index is None else d_index + d_x
        return d_index

    # ------------------------------------------------------------------ configuration
    def configure_synthesis(
        self,
        technique: Any = _KEEP,
        synthesis_rate: Any = _KEEP,
        schedule: Any = _KEEP,
        cold_threshold: Any = _KEEP,
        *,
        adaptive: Any = _KEEP,
        train_synthetic_fraction: Any = _KEEP,
        **options: Any,
    ) -> SyntheticEmbeddingLayer:
        """Change how the layer synthesizes; everything is validated before anything changes.

        Arguments left out keep their current value; ``schedule=None`` removes a
        schedule. A new ``technique`` (or new technique options) builds a fresh
        synthesizer with new parameters (and, for ``manifold``, fits its
        coordinates now): rebuild optimizers that held the old parameters.
        Options given without a technique update the current technique's options.

        Args:
            technique: a registered technique name.
            synthesis_rate: new rate in ``[0, 1]`` (resets a learnable rate to it).
            schedule: ``("linear", warmup_steps)`` or None.
            cold_threshold: eval-mode count below which ids are fully synthetic.
            adaptive: learn the rate.
            train_synthetic_fraction: training-mode fraction of fully synthetic ids.
            options: the technique's options.

        Returns:
            self.

        Raises:
            ConfigError: any value out of range, an unknown technique or option.

        Example:
            >>> layer = SyntheticEmbeddingLayer(100, 8)
            >>> layer.configure_synthesis(technique="autoencoder", synthesis_rate=0.2,
            ...                           cold_threshold=5, bottleneck=4).technique
            'autoencoder'
        """
        old = self.config
        changes: dict[str, Any] = {}
        for name, value in (
            ("synthesis_rate", synthesis_rate),
            ("schedule", schedule),
            ("cold_threshold", cold_threshold),
            ("adaptive", adaptive),
            ("train_synthetic_fraction", train_synthetic_fraction),
        ):
            if value is not _KEEP:
                changes[name] = value
        new_technique = technique is not _KEEP and technique != old.technique
        rebuild = new_technique or bool(options)
        if new_technique:
            changes["technique"] = technique
            changes["options"] = dict(options)
        elif options:
            changes["options"] = {**old.options, **options}
        new = replace(old, **changes).validate()
        synth = self._build_synthesizer(new, fit=True) if rebuild else None
        # Everything is valid: change state.
        self.config = new
        if synth is not None:
            self.synthesizer = synth
            self._synth_ran = False
        if new.adaptive != old.adaptive or (
            new.adaptive and new.synthesis_rate != old.synthesis_rate
        ):
            self._set_adaptive(new)
        return self

    # ------------------------------------------------------------------ cold start
    def add_items(
        self,
        side_features: Any = None,
        *,
        num_items: int | None = None,
        **technique_kwargs: Any,
    ) -> torch.Tensor:
        """Add new ids after the existing ones; they are cold: fully synthetic in eval mode.

        The base table grows (a ``"full"`` base starts the new rows at the mean
        of the existing rows, a neutral point for when they warm up), the
        synthesizer makes room (``manifold`` places the new ids by their
        nearest neighbours in feature space), and the new ids are flagged as
        added: until an id has been seen in training mode (and at least
        ``cold_threshold`` times), eval-mode forwards serve it with ``r = 1``.

        Layers without side features can add ids too (pass ``num_items``) with
        techniques that work without them; all such new ids then get the same
        synthetic vector (nothing distinguishes them yet).

        Args:
            side_features: ``(n, F)`` side features of the new ids (required when
                the layer has side features).
            num_items: number of new ids when the layer has no side features.
            technique_kwargs: technique-specific data, e.g. ``affinity=`` ``(n, input_dim)``
                similarities for a ``manifold`` layer built on a similarity graph.

        Returns:
            The new ids, a ``(n,)`` long tensor.

        Raises:
            ConfigError, ShapeError, NonFiniteError: missing or malformed features.

        Note:
            The base weight becomes a new Parameter: rebuild optimizers that held it.
        """
        old_side = self.side_features
        new_side: torch.Tensor | None = None
        if old_side is not None:
            if side_features is None:
                raise ConfigError(
                    f"This {_OWNER} has side features of size {old_side.shape[1]}; add_items needs "
                    f"the new items' side features, a tensor of shape (n, {old_side.shape[1]})."
                )
            if not isinstance(side_features, torch.Tensor):
                side_features = torch.as_tensor(side_features)
            n_rows = int(side_features.shape[0]) if side_features.dim() >= 1 else -1
            new_side = _check_side_features(
                side_features, max(n_rows, 0), "side_features of new items"
            )
            if new_side.shape[1] != old_side.shape[1]:
                raise ShapeError(
                    f"side_features of new items must have shape (n, {old_side.shape[1]}); got "
                    f"{tuple(new_side.shape)}."
                )
            if num_items is not None and num_items != new_side.shape[0]:
                raise ConfigError(
                    f"num_items={num_items} disagrees with the {new_side.shape[0]} rows of side_features."
                )
            n = int(new_side.shape[0])
            new_side = new_side.to(device=old_side.device, dtype=old_side.dtype)
        else:
            if side_features is not None:
                raise ConfigError(
                    f"This {_OWNER} was built without side features; pass num_items=n instead "
                    "(or build the layer with side_features= to synthesize from them)."
                )
            checked = check_int(f"{_OWNER}.add_items", "num_items", num_items, 0)
            assert checked is not None
            n = checked
        device = self._device()
        if n == 0:
            return torch.zeros(0, dtype=torch.long, device=device)
        if self.config.train_synthetic_fraction == 0.0 and int(self.step) > 0:
            warnings.warn(
                "add_items: new ids are served by the synthesizer alone (r = 1), but this layer "
                "was trained with train_synthetic_fraction=0, so its synthesizer never learned to "
                "stand alone; expect poor vectors for the new ids. Train with "
                "train_synthetic_fraction > 0 (e.g. 0.3) when you rely on cold ids.",
                stacklevel=2,
            )
        # The synthesizer validates its own inputs before changing anything.
        self.synthesizer.grow(n, new_side, old_side, **technique_kwargs)
        base = self.base
        if isinstance(base, Embedding):
            with torch.no_grad():
                w = base.weight
                keep = torch.ones(w.shape[0], dtype=torch.bool, device=w.device)
                if self.padding_idx is not None:
                    keep[self.padding_idx] = False
                mean = w[keep].mean(0) if bool(keep.any()) else w.new_zeros(self.embedding_dim)
            new_ids = base.grow(n, init=mean.expand(n, -1).clone())
        else:
            new_ids = base.grow(n)  # type: ignore[operator]
        if new_side is not None and old_side is not None:
            self.side_features = torch.cat([old_side, new_side])
        self.counts = torch.cat([self.counts, self.counts.new_zeros(n)])
        self.added = torch.cat([self.added, self.added.new_ones(n)])
        self.input_dim += n
        self._any_added = True
        self._last = None
        return new_ids.to(device)

    def is_cold(self, ids: torch.Tensor) -> torch.Tensor:
        """``(*)`` bool: which ids an eval-mode forward serves fully synthetic."""
        ids = check_integer_ids(ids, f"{_OWNER}.is_cold").long()
        beyond = self._check_ids(ids, f"{_OWNER}.is_cold")
        seen = self._table_lookup(self.counts, ids, beyond)
        added = self._table_lookup(self.added, ids, beyond)
        cold = (seen < self.config.cold_threshold) | (added & (seen == 0))
        if self.padding_idx is not None:
            cold = cold & (ids != self.padding_idx)
        return cold

    # ------------------------------------------------------------------ save / load
    def get_config(self) -> dict[str, Any]:
        """The JSON-safe arguments that rebuild this layer (tensors are saved separately)."""
        cfg = self.config
        return {
            "input_dim": self.input_dim,
            "embedding_dim": self.embedding_dim,
            "synthesis_rate": cfg.synthesis_rate,
            "technique": cfg.technique,
            "technique_options": self.synthesizer.get_options(),
            "side_dim": None if self.side_features is None else int(self.side_features.shape[1]),
            "padding_idx": self.padding_idx,
            "base": self.base_name,
            "base_options": _encode_options(self.base_options),
            # The base's own configuration: after add_items a compressed base's layout
            # (e.g. grown tables) is not a function of input_dim alone.
            "base_config": self._base_config(),
            "adaptive": cfg.adaptive,
            "schedule": None if cfg.schedule is None else list(cfg.schedule),
            "cold_threshold": cfg.cold_threshold,
            "train_synthetic_fraction": cfg.train_synthetic_fraction,
            "check_finite": self.check_finite,
            "dtype": str(self._dtype()).removeprefix("torch."),
        }

    def _base_config(self) -> dict[str, Any] | None:
        get = getattr(self.base, "get_config", None)
        return get() if callable(get) else None

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SyntheticEmbeddingLayer:
        """Rebuild a layer (untrained, coordinates not fitted) from :meth:`get_config` output."""
        cfg = dict(config)
        side_dim = cfg.pop("side_dim", None)
        dtype_name = cfg.pop("dtype", "float32")
        dtype = getattr(torch, dtype_name, None)
        if not isinstance(dtype, torch.dtype):
            raise ConfigError(f"Unknown dtype {dtype_name!r} in the layer configuration.")
        options = cfg.pop("technique_options", {}) or {}
        schedule = cfg.pop("schedule", None)
        base_options = _decode_options(cfg.pop("base_options", {}) or {})
        base_config = cfg.pop("base_config", None)
        side = (
            None
            if side_dim is None
            else torch.zeros(int(cfg["input_dim"]), int(side_dim), dtype=dtype)
        )
        layer = cls(
            side_features=side,
            schedule=None if schedule is None else tuple(schedule),  # type: ignore[arg-type]
            base_options=base_options,
            _fit=False,
            **cfg,
            **options,
        )
        rebuild = getattr(BASES.get(layer.base_name), "from_config", None)
        if base_config is not None and callable(rebuild):
            layer.base = rebuild(base_config)
        return layer.to(dtype)

    def extra_repr(self) -> str:
        cfg = self.config
        s = f"{self.input_dim}, {self.embedding_dim}, synthesis_rate={cfg.synthesis_rate:g}, technique={cfg.technique!r}"
        if self.side_features is not None:
            s += f", side_features=({self.side_features.shape[0]}, {self.side_features.shape[1]})"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.base_name != "full":
            s += f", base={self.base_name!r}"
        if cfg.adaptive:
            s += ", adaptive=True"
        if cfg.schedule is not None:
            s += f", schedule={cfg.schedule!r}"
        if cfg.cold_threshold:
            s += f", cold_threshold={cfg.cold_threshold}"
        if cfg.train_synthetic_fraction:
            s += f", train_synthetic_fraction={cfg.train_synthetic_fraction:g}"
        if self.check_finite:
            s += ", check_finite=True"
        return s


def _refresh_after_load(module: nn.Module, incompatible: Any) -> None:
    """After ``load_state_dict``: re-derive the python-side flag from the ``added`` buffer."""
    if isinstance(module, SyntheticEmbeddingLayer):
        module._any_added = bool(module.added.any())
        module._last = None
