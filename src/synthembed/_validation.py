"""One place that words every argument and input error.

The wording follows scikit-learn's parameter validation: *"The 'x' parameter of
Thing must be an int in the range [1, inf). Got 0 instead."*
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Collection
from types import ModuleType
from typing import Any

import torch

from synthembed import _kernels
from synthembed.errors import (
    ConfigError,
    InvalidIndexError,
    MissingDependencyError,
    NonFiniteError,
    ShapeError,
)


def _fmt_bound(value: float, closed: bool, left: bool) -> str:
    if math.isinf(value):
        return "(-inf" if left else "inf)"
    text = f"{value:g}" if isinstance(value, float) else str(value)
    if left:
        return ("[" if closed else "(") + text
    return text + ("]" if closed else ")")


def check_int(
    owner: str,
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    optional: bool = False,
) -> int | None:
    """Check that ``value`` is an int in ``[low, high]`` (or None when optional)."""
    if value is None and optional:
        return None
    ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    if not ok:
        kind = "an int" + (" or None" if optional else "")
        interval = f"{_fmt_bound(low, True, True)}, {_fmt_bound(high, True, False)}"
        raise ConfigError(
            f"The '{name}' parameter of {owner} must be {kind} in the range {interval}. "
            f"Got {value!r} instead."
        )
    return int(value)


def check_float(
    owner: str,
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_closed: bool = True,
    high_closed: bool = True,
    optional: bool = False,
) -> float | None:
    """Check that ``value`` is a finite real number in the given interval."""
    if value is None and optional:
        return None
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = (
            not math.isnan(v)
            and (v >= low if low_closed else v > low)
            and (v <= high if high_closed else v < high)
        )
    if not ok:
        kind = "a float" + (" or None" if optional else "")
        interval = f"{_fmt_bound(low, low_closed, True)}, {_fmt_bound(high, high_closed, False)}"
        raise ConfigError(
            f"The '{name}' parameter of {owner} must be {kind} in the range {interval}. "
            f"Got {value!r} instead."
        )
    return float(value)


def check_choice(owner: str, name: str, value: Any, choices: Collection[Any]) -> Any:
    """Check that ``value`` is one of ``choices``; the error lists them all."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ConfigError(
            f"The '{name}' parameter of {owner} must be one of {listed}. Got {value!r} instead."
        )
    return value


def check_ids(ids: torch.Tensor, num_embeddings: int, owner: str) -> None:
    """Raise :class:`InvalidIndexError` unless every id lies in ``[0, num_embeddings)``.

    The message names the smallest and largest offending id, how many there
    were, and the valid range. Empty tensors always pass, and so does anything
    inside a ``torch.func`` transform, where values cannot be read. Under
    ``torch.compile``, ``torch.export`` or TorchScript the check becomes an
    assertion inside the graph (a ``RuntimeError`` with the valid range, raised
    when the compiled program runs), since the ids' values cannot be read there.
    """
    if _kernels.tracing():
        high = max(num_embeddings - 1, 0)
        _kernels.assert_in_range(
            ids,
            num_embeddings,
            f"{owner} got id(s) outside the valid range [0, {high}] in a compiled or "
            f"exported graph (which cannot name them); map ids into [0, {num_embeddings}) "
            "first, or run eagerly to see the offending ids.",
        )
        return
    if ids.numel() == 0:
        return
    if _kernels.functorch_active():
        # Inside torch.func (vmap, grad) values cannot be inspected; torch's kernels still
        # reject out-of-range ids there, with their own message.
        return
    lo, hi = _kernels.id_range(ids)
    if lo >= 0 and hi < num_embeddings:
        return
    bad = (ids < 0) | (ids >= num_embeddings)
    bad_values = ids[bad]
    count = int(bad_values.numel())
    smallest, largest = int(bad_values.min()), int(bad_values.max())
    if num_embeddings == 0:
        valid = "none: the table has 0 rows"
    else:
        valid = f"[0, {num_embeddings - 1}]"
    hint = (
        "negative ids are never valid; map unknown values to an id first "
        "(a Vocabulary with oov='unk' or 'hash')"
        if smallest < 0
        else f"grow the table or build it with num_embeddings > {largest}"
    )
    raise InvalidIndexError(
        f"{owner} got {count} id(s) outside the valid range {valid} "
        f"(smallest offending id {smallest}, largest {largest}); {hint}."
    )


def check_integer_ids(ids: Any, owner: str) -> torch.Tensor:
    """Return ``ids`` as an integer tensor, rejecting bools and floats with a clear error."""
    if not isinstance(ids, torch.Tensor):
        raise ShapeError(
            f"{owner} expects ids as a torch.Tensor of dtype torch.long; got {type(ids).__name__}. "
            "Wrap them with torch.as_tensor(ids, dtype=torch.long)."
        )
    if ids.dtype == torch.bool:
        raise ShapeError(
            f"{owner} got a boolean tensor of shape {tuple(ids.shape)} as ids; ids must be "
            "integers (torch.long). If this is a mask, pass it as mask=."
        )
    if ids.is_floating_point() or ids.is_complex():
        raise ShapeError(
            f"{owner} got ids of dtype {ids.dtype}; ids must be integers (torch.long). "
            "Cast with ids.long() if they are whole numbers."
        )
    return ids


def check_finite(x: torch.Tensor, what: str) -> None:
    """Raise :class:`NonFiniteError` if ``x`` holds NaN or infinity."""
    if x.is_floating_point() and x.numel() and not bool(torch.isfinite(x).all()):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(torch.isinf(x).sum())
        raise NonFiniteError(
            f"{what} contains {n_nan} NaN and {n_inf} infinite value(s); "
            "replace or impute them before the call."
        )


def check_last_dim(x: torch.Tensor, expected: int, what: str, hint: str = "") -> None:
    """Raise :class:`ShapeError` unless ``x.shape[-1] == expected``."""
    if x.dim() == 0 or x.shape[-1] != expected:
        raise ShapeError(
            f"{what} must have shape (*, {expected}); got {tuple(x.shape)}."
            + (f" {hint}" if hint else "")
        )


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import an optional dependency or raise a clear :class:`MissingDependencyError`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs the optional dependency '{module}', which is not installed. "
            f"Install it with: pip install 'synthembed[{extra}]'"
        ) from exc


MAX_ID = (1 << 63) - 1


def check_nonnegative_ids(ids: torch.Tensor, owner: str) -> None:
    """Raise :class:`InvalidIndexError` on negative ids, for layers that take any 64-bit id.

    Hashing bases (and layers built on them) accept every id in ``[0, 2**63 - 1]``.
    """
    if ids.numel() == 0:
        return
    low = int(ids.min())
    if low >= 0:
        return
    count = int((ids < 0).sum())
    raise InvalidIndexError(
        f"{owner} got {count} negative id(s) (smallest offending id {low}); ids must be "
        f"integers in [0, {MAX_ID}] (this layer hashes them, so any non-negative 64-bit id is "
        "valid); map unknown values to an id first (a Vocabulary with oov='unk' or 'hash')."
    )


def check_output_finite(out: torch.Tensor, ids: torch.Tensor | None, owner: str) -> None:
    """For ``check_finite=True`` layers: raise :class:`NonFiniteError` naming the ids at fault.

    ``out`` is ``(*, D)`` for ids of shape ``(*)`` (plain lookup) or ``(*, L)``
    (pooled bags); with ``ids=None`` (soft lookup, dense rows) no ids are named.
    """
    bad = ~torch.isfinite(out)
    if not bool(bad.any()):
        return
    culprit: list[int] = []
    if ids is not None and ids.numel():
        per_row = bad.any(-1)  # (*): one output row per id, or per bag of ids (*, L)
        if per_row.shape in (ids.shape, ids.shape[:-1]):
            culprit = torch.unique(ids[per_row]).tolist()[:10]
    where = f" from ids {culprit}" if culprit else ""
    raise NonFiniteError(
        f"{owner} produced NaN/inf{where}. Lower the learning rate, clip gradients, or check "
        "the side features of those ids."
    )
