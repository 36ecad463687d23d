"""How a :class:`~synthembed.layers.synthetic_embedding.SyntheticEmbeddingLayer` synthesizes.

:class:`SynthesisConfig` (frozen; validated in one place), the layer's methods
that read and change it (:class:`SynthesisControl`: the rate, the synthesizer,
``configure_synthesis``), and the small checks and encoders of its arguments.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import torch
from torch import nn

from synthembed._validation import (
    check_choice,
    check_finite,
    check_float,
    check_int,
    check_integer_ids,
)
from synthembed.errors import ConfigError, ShapeError
from synthembed.layers.bases import BASES
from synthembed.layers.id_state import COUNT_CAP, COUNT_REF, count_rate, initial_rate_k
from synthembed.optim.fused import FUSED_OPTIMIZER
from synthembed.optim.sparse import SparseRowOptimizer
from synthembed.synthesis import Synthesizer, get_technique, make_synthesizer

__all__ = [
    "COUNT_REF",
    "KEEP",
    "SynthesisConfig",
    "SynthesisControl",
    "align_columns",
    "check_side_features",
    "column_names",
    "decode_options",
    "default_technique",
    "encode_options",
    "fused_options",
    "third_positional_moved",
]

_OWNER = "SyntheticEmbeddingLayer"
_Control = TypeVar("_Control", bound="SynthesisControl")
_SCHEDULES = ("linear",)
_ADAPTIVE = (False, True, "count")


class _Keep:
    """Sentinel: an argument of :meth:`configure_synthesis` that was left out."""

    def __repr__(self) -> str:
        return "<keep>"


KEEP: Any = _Keep()
"""Default of :meth:`configure_synthesis` arguments: keep the current value."""


#: The default technique with side features, and without. Chosen on validation
#: cold + warm Recall@20 of three MovieLens splits (benchmarks/default_technique.py,
#: results/default_technique.md): with side features the autoencoder (a tanh
#: bottleneck aligned with the trained rows) beat the content tower on the mean of
#: every split (ColdRec 2 of 3 seeds, new releases and ratings >= 4 3 of 3).
TECHNIQUE_WITH_SIDE, TECHNIQUE_WITHOUT_SIDE = "autoencoder", "combination"


def default_technique(owner: str, has_side: bool, options: dict[str, Any]) -> str:
    """The technique a layer gets when none is named: ``"autoencoder"`` with side
    features, ``"combination"`` without.

    Raises:
        ConfigError: ``options`` holds an option of the content tower (``hidden_dims``...)
            that the default with side features does not take: the message says to name
            the technique. Other unknown options fail when the synthesizer is built.
    """
    name = TECHNIQUE_WITH_SIDE if has_side else TECHNIQUE_WITHOUT_SIDE
    if not has_side:
        return name
    accepted = get_technique(name).option_names()
    tower = get_technique(TECHNIQUE_WITHOUT_SIDE).option_names()
    foreign = sorted(o for o in set(options) - set(accepted) if o in tower)
    if foreign:
        raise ConfigError(
            f"{owner} got option(s) {foreign}, which the default technique with side "
            f"features, {name!r}, does not take (it accepts {sorted(accepted)}). Name the "
            f"technique they belong to, e.g. technique={TECHNIQUE_WITHOUT_SIDE!r} for the content "
            "tower's options."
        )
    return name


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
        adaptive: ``False``: the rate is fixed. ``True``: learn one rate,
            ``r = sigmoid(rate_logit)`` starting at ``synthesis_rate``. ``"count"``:
            a rate per id that follows how much training the id has had,
            ``r_i = k / (k + count_i)`` with ``k = softplus(rate_k)`` learned: warm
            ids keep their row, rare ids lean on the synthesizer, never-trained
            ids are fully synthetic. ``k`` starts where an id trained
            :data:`COUNT_REF` (10) times gets ``synthesis_rate``.
        schedule: ``("linear", warmup_steps)``: ``r`` rises linearly from 0 to the
            rate over the first ``warmup_steps`` training-mode forwards; None: constant.
        cold_threshold: in eval mode, ids seen fewer than this many times in
            training mode are served fully synthetic (``r = 1``). 0 disables.
        train_synthetic_fraction: in training mode, this fraction of the ids
            (drawn per forward) is served fully synthetic without its base row,
            so the synthesizer learns to stand alone for cold ids (the idea of
            DropoutNet, Volkovs et al., NeurIPS 2017). 0 disables; 0.2 to 0.5
            suits cold-start work. The layer's default (None) resolves to 0.3 with
            side features and 0 without (nothing but a row to synthesize from).
        distill_weight: weight of the distillation loss added to ``get_loss()``:
            ``1 - cos(synthetic_i, row_i.detach())``, averaged over the positions
            of ids served fully synthetic in training (see ``train_synthetic_fraction``)
            that have trained at least ``distill_min_count`` times, so cold vectors
            live in the warm rows' space (as DeepMusic and ALDI distil a warm
            model). 0 disables.
        distill_min_count: training count from which an id's row is a target of the
            alignment loss.
        options: the technique's own options (see its class).
    """

    technique: str = "combination"
    synthesis_rate: float = 0.1
    adaptive: bool | str = False
    schedule: tuple[str, int] | None = None
    cold_threshold: int = 0
    train_synthetic_fraction: float = 0.0
    distill_weight: float = 0.0
    distill_min_count: int = 10
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def count_rate(self) -> bool:
        """True with ``adaptive="count"`` (a rate per id that follows its training count)."""
        return isinstance(self.adaptive, str)

    def counts_needed(self) -> bool:
        """Does this configuration read per-id training counts (cold ids, count rate, alignment)?"""
        return self.cold_threshold > 0 or self.count_rate or self.distill_weight > 0

    def validate(self) -> SynthesisConfig:
        """Check every field; return a normalised copy. Raises :class:`ConfigError`."""
        get_technique(self.technique)
        rate = check_float(_OWNER, "synthesis_rate", self.synthesis_rate, 0.0, 1.0)
        if not any(self.adaptive is a for a in _ADAPTIVE) and self.adaptive != "count":
            raise ConfigError(
                f"The 'adaptive' parameter of {_OWNER} must be False, True or 'count'. "
                f"Got {self.adaptive!r} instead."
            )
        if self.adaptive and not 0.0 < float(self.synthesis_rate) < 1.0:
            how = "through a sigmoid" if self.adaptive is True else "as k / (k + count)"
            raise ConfigError(
                f"adaptive={self.adaptive!r} learns the rate {how}, so synthesis_rate must start "
                f"in the open range (0, 1). Got {self.synthesis_rate!r} instead."
            )
        adaptive: bool | str = "count" if self.adaptive == "count" else bool(self.adaptive)
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
        threshold = check_int(_OWNER, "cold_threshold", self.cold_threshold, 0, COUNT_CAP)
        frac = check_float(
            _OWNER, "train_synthetic_fraction", self.train_synthetic_fraction, 0.0, 1.0
        )
        align = check_float(_OWNER, "distill_weight", self.distill_weight, 0.0)
        min_count = check_int(_OWNER, "distill_min_count", self.distill_min_count, 1, COUNT_CAP)
        assert rate is not None and threshold is not None and frac is not None
        assert align is not None and min_count is not None
        return replace(
            self,
            synthesis_rate=rate,
            adaptive=adaptive,
            schedule=schedule,
            cold_threshold=threshold,
            train_synthetic_fraction=frac,
            distill_weight=align,
            distill_min_count=min_count,
            options=dict(self.options),
        )


def encode_options(options: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe copy of base options (``torch.dtype`` values become tagged strings, a fused
    optimizer its hyperparameters, which the bases accept as they are)."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, torch.dtype):
            out[key] = {"torch.dtype": str(value).removeprefix("torch.")}
        elif isinstance(value, SparseRowOptimizer):
            out[key] = FUSED_OPTIMIZER.encode(value)
        else:
            out[key] = value
    json.dumps(out)  # raises TypeError for anything else that is not JSON-safe
    return out


def decode_options(options: dict[str, Any]) -> dict[str, Any]:
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


def column_names(side: Any) -> list[str] | None:
    """The column names of a DataFrame of side features (as strings), else None."""
    cols = getattr(side, "columns", None)
    if cols is None or not hasattr(side, "to_numpy"):
        return None
    return [str(c) for c in cols]


def align_columns(side: Any, names: list[str] | None, what: str) -> Any:
    """A DataFrame's columns put in the order of ``names`` (the layer's); others as given.

    Raises:
        ShapeError: columns of ``names`` missing from the DataFrame, or extra ones.
    """
    got = column_names(side)
    if got is None or names is None:
        return side
    label = dict(zip(got, side.columns))
    missing = [n for n in names if n not in label]
    extra = [n for n in got if n not in set(names)]
    if missing or extra:
        raise ShapeError(
            f"{what} must have the columns the layer was built with, {names}; missing "
            f"{missing}, unexpected {extra}."
        )
    return side[[label[n] for n in names]]


def check_side_features(side: Any, rows: int, what: str) -> torch.Tensor:
    """``(rows, F)`` float tensor from a tensor, numpy array, list or pandas DataFrame."""
    if column_names(side) is not None:
        try:
            side = side.to_numpy(dtype="float64", copy=True)
        except (TypeError, ValueError) as exc:
            raise ShapeError(f"{what} must hold numbers only; {exc}") from exc
    if not isinstance(side, torch.Tensor):
        try:
            side = torch.as_tensor(side)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ShapeError(
                f"{what} must be a 2-d tensor of shape ({rows}, F); got {type(side).__name__}."
            ) from exc
    if rows < 0:  # any number of rows (new items)
        rows = int(side.shape[0]) if side.dim() >= 1 else 0
    if side.dim() != 2 or side.shape[0] != rows or side.shape[1] == 0:
        raise ShapeError(
            f"{what} must have shape ({rows}, F) with F >= 1 (one row of features per id); "
            f"got {tuple(side.shape)}."
        )
    if not side.is_floating_point():
        side = side.to(torch.get_default_dtype())
    check_finite(side, what)
    return side


class SynthesisControl:
    """Mixin of the synthetic layer: the rate it blends with, and changing how it synthesizes."""

    config: SynthesisConfig
    synthesizer: Synthesizer
    side_features: torch.Tensor | None
    rate_logit: nn.Parameter | None
    rate_k: nn.Parameter | None
    counts: torch.Tensor | None
    _check_ids: Callable[[torch.Tensor, str], bool]  # ColdStart's (a stub here would shadow it)
    step: torch.Tensor
    num_embeddings: int
    embedding_dim: int
    _synth_ran: bool
    _pending: Any

    def _device(self) -> torch.device:
        raise NotImplementedError

    def _dtype(self) -> torch.dtype:
        raise NotImplementedError

    def _build_synthesizer(self, config: SynthesisConfig, *, fit: bool) -> Synthesizer:
        side = self.side_features
        synth = make_synthesizer(
            config.technique,
            self.num_embeddings,
            self.embedding_dim,
            None if side is None else int(side.shape[1]),
            **config.options,
        )
        synth.to(device=self._device(), dtype=self._dtype())
        if fit:
            synth.fit(side)
        return synth

    def _set_adaptive(self, config: SynthesisConfig) -> None:
        rate = config.synthesis_rate
        self.rate_logit = self.rate_k = None
        if config.adaptive is True:
            # (1,) rather than 0-d, like ``step``: saved files checksum tensors as bytes.
            self.rate_logit = self._scalar(math.log(rate / (1 - rate)))
        elif config.count_rate:
            self.rate_k = self._scalar(initial_rate_k(rate))

    def _scalar(self, value: float) -> nn.Parameter:
        return nn.Parameter(torch.full((1,), value, dtype=self._dtype(), device=self._device()))

    def _ensure_counts(self, config: SynthesisConfig) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ rate
    def current_rate(self, synthesis_rate: Any = None) -> float | torch.Tensor:
        """The blend rate the next forward uses (before per-id overrides).

        With ``adaptive="count"`` the rate is per id (see :meth:`rates`); this is
        then the rate of an id trained :data:`COUNT_REF` (10) times.

        Args:
            synthesis_rate: a per-call rate (float in ``[0, 1]`` or a 0-d tensor), or None.
        """
        if synthesis_rate is None and self.rate_k is not None:
            return self._scheduled(count_rate(torch.tensor(COUNT_REF), self.rate_k).reshape(()))
        r = self._shared_rate(synthesis_rate)
        assert r is not None
        return r

    def rates(self, ids: torch.Tensor) -> torch.Tensor:
        """``(*)`` ids -> ``(*)`` the rate each id gets in the next training-mode forward.

        Before per-id overrides (cold ids, ``train_synthetic_fraction``: ``r = 1``).

        Raises:
            InvalidIndexError, ShapeError: ids the layer's forward would refuse.
        """
        ids = check_integer_ids(ids, f"{_OWNER}.rates").long()
        beyond = self._check_ids(ids, f"{_OWNER}.rates")
        with torch.no_grad():
            shared = self._shared_rate(None)
            if shared is not None:
                return torch.as_tensor(shared, dtype=self._dtype()).expand(ids.shape).clone()
            return self._id_rates(ids.reshape(-1), beyond).reshape(ids.shape)

    def _seen(self, ids: torch.Tensor, beyond: bool) -> torch.Tensor:
        raise NotImplementedError

    def _id_rates(self, ids: torch.Tensor, beyond: bool) -> torch.Tensor:
        """``(N,)`` ids -> ``(N, 1)`` count-aware rates (``adaptive="count"``), scheduled."""
        assert self.rate_k is not None
        return self._scheduled(count_rate(self._seen(ids, beyond), self.rate_k))

    def _shared_rate(self, synthesis_rate: Any) -> float | torch.Tensor | None:
        """The rate shared by every id of the next forward; None when it is per id."""
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
        if self.rate_k is not None:
            return None
        r: float | torch.Tensor = (
            torch.sigmoid(self.rate_logit).reshape(())
            if self.rate_logit is not None
            else self.config.synthesis_rate
        )
        return self._scheduled(r)

    def _scheduled(self, r: Any) -> Any:
        schedule = self.config.schedule
        if schedule is not None:
            warmup = schedule[1]
            r = r * (1.0 if warmup == 0 else min(1.0, int(self.step) / warmup))
        return r

    # ------------------------------------------------------------------ configuration
    def configure_synthesis(
        self: _Control,
        technique: Any = KEEP,
        synthesis_rate: Any = KEEP,
        schedule: Any = KEEP,
        cold_threshold: Any = KEEP,
        *,
        adaptive: Any = KEEP,
        train_synthetic_fraction: Any = KEEP,
        distill_weight: Any = KEEP,
        distill_min_count: Any = KEEP,
        **options: Any,
    ) -> _Control:
        """Change how the layer synthesizes; everything is validated before anything changes.

        Arguments left out keep their current value; ``schedule=None`` removes a
        schedule. A new ``technique`` (or new technique options) builds a fresh
        synthesizer with new parameters (and, for ``manifold``, fits its
        coordinates now): rebuild optimizers that held the old parameters.
        Options given without a technique update the current technique's options.
        A layer that kept no counts (its configuration read none) starts counting
        when one that reads them is set: until then every id counts as untrained.

        Args:
            technique: a registered technique name.
            synthesis_rate: new rate in ``[0, 1]`` (resets a learnable rate to it).
            schedule: ``("linear", warmup_steps)`` or None.
            cold_threshold: eval-mode count below which ids are fully synthetic.
            adaptive: ``False``, ``True`` (learn one rate) or ``"count"`` (per id).
            train_synthetic_fraction: training-mode fraction of fully synthetic ids.
            distill_weight, distill_min_count: the distillation loss (see :class:`SynthesisConfig`).
            options: the technique's options.

        Returns:
            self.

        Raises:
            ConfigError: any value out of range, an unknown technique or option.

        Example:
            >>> from synthembed import SyntheticEmbeddingLayer
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
            ("distill_weight", distill_weight),
            ("distill_min_count", distill_min_count),
        ):
            if value is not KEEP:
                changes[name] = value
        new_technique = technique is not KEEP and technique != old.technique
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
            self._pending.take()  # the old synthesizer's forwards: their losses train nothing now
        if new.adaptive != old.adaptive or (
            new.adaptive and new.synthesis_rate != old.synthesis_rate
        ):
            self._set_adaptive(new)
        self._ensure_counts(new)
        return self


def third_positional_moved(init: Any) -> Any:
    """For one release: a third positional argument was ``synthesis_rate`` before it became
    ``padding_idx`` (torch.nn.Embedding's order). A float is taken as the rate (in
    ``__init__``, with a DeprecationWarning); an int is taken as ``padding_idx``, with a
    FutureWarning, since it may be meant as a rate of 0 or 1."""

    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) >= 3 and isinstance(args[2], int) and not isinstance(args[2], bool):
            warnings.warn(
                f"{_OWNER}(n, d, {args[2]}): the third positional argument is padding_idx "
                "(as in torch.nn.Embedding); it was synthesis_rate before. Pass padding_idx= "
                "or synthesis_rate= by keyword to silence this warning.",
                FutureWarning,
                stacklevel=2,
            )
        init(self, *args, **kwargs)

    return wrapper


def fused_options(owner: str, base: str, fused_optimizer: Any) -> dict[str, Any]:
    """``{"fused_optimizer": ...}`` for a base that takes it; {} when none is given."""
    if fused_optimizer is None:
        return {}
    cls = BASES.get(base)
    if cls is None or "fused_optimizer" not in inspect.signature(cls).parameters:
        raise ConfigError(
            f"{owner}(fused_optimizer=...) needs a base that takes fused_optimizer=; the "
            f"{base!r} base does not. Use an optimizer over layer.parameters() instead."
        )
    return {"fused_optimizer": fused_optimizer}
