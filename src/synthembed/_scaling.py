"""The one feature scaler of the library: min-max or standardisation, fitted once, then reused.

A fitted scaler is an affine map per feature,

    ``x -> (x - shift) / spread * (high - low) + low``  (optionally clipped to ``[low, high]``)

with ``shift, spread = min, max - min`` (``"minmax"``) or ``mean, std`` (``"standard"``,
population std). A constant feature (``spread == 0``) is divided by 1 instead, so it maps
to ``low``; :meth:`AffineScaler.inverse_transform` maps it back to its constant.

Three public objects use it: the numerical columns of
:class:`~synthembed.layers.tabular.TabularEmbedding`, :class:`synthembed.data.Scaler` and
the standardisation of :class:`~synthembed.autoencoder_embedder.AutoencoderEmbedder`.
It is plain torch (scikit-learn's ``MinMaxScaler`` / ``StandardScaler`` would do the same,
but the core install has no scikit-learn). Tensors in, tensors out, in the input's dtype;
the fitted parameters keep the dtype of the data they were fitted on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from synthembed.errors import ConfigError

__all__ = ["SCALINGS", "AffineScaler", "ScalingKind"]

ScalingKind = Literal["minmax", "standard"]
SCALINGS: tuple[str, ...] = ("minmax", "standard")


@dataclass(frozen=True, eq=False)
class AffineScaler:
    """A fitted per-feature affine scaling; build it with :meth:`fit` or :meth:`from_dict`.

    Attributes:
        kind: ``"minmax"`` or ``"standard"``.
        shift: ``(F,)`` (or 0-d for one global scaling) minimum or mean.
        spread: ``max - min`` or the standard deviation (0 for a constant feature).
        feature_range: ``(low, high)`` that ``[min, max]`` maps to (``(0, 1)`` for
            ``"standard"``, where it leaves the standardised value unchanged).
        clip: clip transformed values to ``feature_range``.
    """

    kind: ScalingKind
    shift: torch.Tensor
    spread: torch.Tensor
    feature_range: tuple[float, float] = (0.0, 1.0)
    clip: bool = False
    divisor: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in SCALINGS:
            raise ConfigError(
                f"The scaling kind must be one of {list(SCALINGS)}; got {self.kind!r}."
            )
        if self.shift.shape != self.spread.shape:
            raise ConfigError(
                f"A scaler needs 'shift' and 'spread' of one shape; got {tuple(self.shift.shape)} "
                f"and {tuple(self.spread.shape)}."
            )
        # ``spread`` with 1 where a feature is constant (so it maps to ``low``).
        divisor = torch.where(self.spread > 0, self.spread, torch.ones_like(self.spread))
        object.__setattr__(self, "divisor", divisor)

    @classmethod
    def fit(
        cls,
        x: torch.Tensor,
        kind: ScalingKind,
        *,
        dim: int | None = 0,
        feature_range: tuple[float, float] = (0.0, 1.0),
        clip: bool = False,
    ) -> AffineScaler:
        """Fit on ``x`` (reduced over ``dim``; ``None`` for one global scaling), non-empty, finite."""
        if kind == "minmax":
            if dim is None:
                shift, top = x.min(), x.max()
            else:
                shift, top = x.amin(dim), x.amax(dim)
            spread = top - shift
        else:
            shift = x.mean() if dim is None else x.mean(dim)
            spread = x.std(correction=0) if dim is None else x.std(dim, correction=0)
        return cls(kind, shift, spread, (float(feature_range[0]), float(feature_range[1])), clip)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """Scale ``x`` (``(*, F)`` or anything broadcasting with ``shift``)."""
        low, high = self.feature_range
        out = (x - self.shift) / self.divisor
        if (low, high) != (0.0, 1.0):  # (0, 1) leaves the values as they are: skip two passes
            out = out * (high - low) + low
        return out.clamp(low, high) if self.clip else out

    def inverse_transform(self, x: torch.Tensor) -> torch.Tensor:
        """Map scaled values back to the original units (a constant feature to its constant)."""
        low, high = self.feature_range
        return (x - low) / (high - low) * self.spread + self.shift

    def to(self, *args: Any, **kwargs: Any) -> AffineScaler:
        """The same scaler with its parameters moved / cast (``Tensor.to``'s arguments)."""
        return AffineScaler(
            self.kind,
            self.shift.to(*args, **kwargs),
            self.spread.to(*args, **kwargs),
            self.feature_range,
            self.clip,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe parameters; :meth:`from_dict` restores them exactly (float64 round trip)."""
        return {
            "kind": self.kind,
            "shift": self.shift.tolist(),
            "spread": self.spread.tolist(),
            "feature_range": list(self.feature_range),
            "clip": self.clip,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, dtype: torch.dtype = torch.float64) -> AffineScaler:
        """Rebuild a scaler from :meth:`to_dict` output."""
        low, high = data.get("feature_range", (0.0, 1.0))
        return cls(
            data["kind"],
            torch.tensor(data["shift"], dtype=dtype),
            torch.tensor(data["spread"], dtype=dtype),
            (float(low), float(high)),
            bool(data.get("clip", False)),
        )
