"""Per-id state of a synthetic layer: counts, cold ids, ids past the table, new ids.

:class:`ColdStart` is the part of
:class:`~synthembed.layers.synthetic_embedding.SyntheticEmbeddingLayer` that
decides which ids are served fully synthetic (``r = 1``) and adds new ids
(:meth:`ColdStart.add_items`). The state lives in the layer's buffers
``counts`` (training-mode sightings per id) and ``added`` (ids added by
``add_items``), so it survives ``deepcopy``, ``state_dict`` and growth; both are
compact and allocated only when needed (:mod:`synthembed.layers.id_state`).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from synthembed._validation import (
    check_ids,
    check_int,
    check_integer_ids,
    check_nonnegative_ids,
)
from synthembed.errors import ConfigError, InvalidIndexError, ShapeError
from synthembed.layers.embedding import Embedding
from synthembed.layers.id_state import compact_counts, new_counts
from synthembed.layers.synthesis_config import (
    SynthesisConfig,
    align_columns,
    check_side_features,
)
from synthembed.synthesis import Synthesizer

__all__ = ["ColdStart", "check_state_size"]

_OWNER = "SyntheticEmbeddingLayer"


class ColdStart:
    """Mixin of the synthetic layer: which ids are cold, and adding new ones."""

    counts: torch.Tensor | None
    added: torch.Tensor | None
    step: torch.Tensor
    side_features: torch.Tensor | None
    side_feature_names: list[str] | None
    config: SynthesisConfig
    base: nn.Module
    base_name: str
    synthesizer: Synthesizer
    num_embeddings: int
    embedding_dim: int
    padding_idx: int | None
    training: bool
    _any_added: bool
    _count_bound: int
    _pending: Any

    def _device(self) -> torch.device:
        raise NotImplementedError

    def _seen(self, ids: torch.Tensor, beyond: bool) -> torch.Tensor:
        raise NotImplementedError

    def _ensure_counts(self, config: SynthesisConfig) -> None:
        raise NotImplementedError

    def refresh_id_state(self) -> None:
        """Re-read the per-id buffers after they were written in place.

        Beside ``counts`` and ``added`` the layer caches whether any id was added
        and a bound of the counts; ``load_state_dict`` refreshes them itself, and
        code that writes the buffers directly (a broadcast from another rank,
        ``copy_``) calls this afterwards.
        """
        self._any_added = self.added is not None and bool(self.added.any())
        counts = self.counts
        self._count_bound = int(counts.max()) if counts is not None and counts.numel() else 0

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
            seen = self._seen(ids, beyond)
            forced = seen < cfg.cold_threshold
            if self._any_added and self.added is not None:
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
            check_ids(ids, self.num_embeddings, owner)
            return False
        check_nonnegative_ids(ids, owner)
        return ids.numel() > 0 and int(ids.max()) >= self.num_embeddings

    def _check_beyond(self, ids: torch.Tensor) -> None:
        """Ids past ``input_dim`` about to be synthesized: fine unless a per-id table is needed."""
        need = None
        if self.side_features is not None:
            need = f"side features exist only for ids in [0, {self.num_embeddings - 1}]"
        elif getattr(self.synthesizer, "id_tables", False):
            need = (
                f"the {self.config.technique!r} technique keeps per-id state only for ids in "
                f"[0, {self.num_embeddings - 1}]"
            )
        if need is None:
            return
        outside = ids[ids >= self.num_embeddings]
        raise InvalidIndexError(
            f"{_OWNER} got {outside.numel()} id(s) at or beyond input_dim={self.num_embeddings} "
            f"(largest {int(outside.max())}) to synthesize; the {self.base_name!r} base takes any "
            f"64-bit id, but {need}. Add such ids with add_items (with their side features), "
            "or serve them from the base alone (synthesis_rate=0, cold_threshold=0, "
            "train_synthetic_fraction=0)."
        )

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
                the layer has side features): a tensor, numpy array, list, or pandas
                DataFrame (matched by column name when the layer was built from one).
            num_items: number of new ids when the layer has no side features
                (``len(tokens)`` when ``tokens=`` is given).
            technique_kwargs: technique-specific data, e.g. ``affinity=`` ``(n, input_dim)``
                similarities for a ``manifold`` layer built on a similarity graph, or
                ``tokens=`` the new words (the ``subword`` technique spells them; a
                bound vocabulary grows by them, keeping ids and vocabulary in step).

        Returns:
            The new ids, a ``(n,)`` long tensor.

        Raises:
            ConfigError, ShapeError, NonFiniteError: missing or malformed features.

        Note:
            Unread :meth:`get_loss` terms of forwards before the call are dropped
            (their graphs refer to the tables before they grew): read the loss
            first. The layer's own parameters and buffers are kept or extended; whether an
            optimizer built before keeps training the base table is the base's
            ``grow`` (see its notes).
        """
        old_side = self.side_features
        new_side: torch.Tensor | None = None
        if old_side is not None:
            if side_features is None:
                raise ConfigError(
                    f"This {_OWNER} has side features of size {old_side.shape[1]}; add_items needs "
                    f"the new items' side features, a tensor of shape (n, {old_side.shape[1]})."
                )
            side_features = align_columns(
                side_features, self.side_feature_names, "side_features of new items"
            )
            new_side = check_side_features(side_features, -1, "side_features of new items")
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
            if num_items is None and technique_kwargs.get("tokens") is not None:
                num_items = len(technique_kwargs["tokens"])
            checked = check_int(f"{_OWNER}.add_items", "num_items", num_items, 0)
            assert checked is not None
            n = checked
        device = self._device()
        if n == 0:
            return torch.zeros(0, dtype=torch.long, device=device)
        if (
            self.config.train_synthetic_fraction == 0.0
            and old_side is not None
            and int(self.step) > 0
        ):
            warnings.warn(
                "add_items: new ids are served by the synthesizer alone (r = 1), but this layer "
                "was trained with train_synthetic_fraction=0, so its synthesizer never learned to "
                "stand alone on the side features; expect poor vectors for the new ids. Train "
                "with train_synthetic_fraction > 0 (the default with side features is 0.3).",
                stacklevel=2,
            )
        words = self._new_words(technique_kwargs.get("tokens"), n)
        # The synthesizer validates its own inputs before changing anything.
        self.synthesizer.grow(n, new_side, old_side, **technique_kwargs)
        if words is not None:
            self.vocab.add(words)  # type: ignore[attr-defined]
        # Unread auxiliary losses of earlier forwards: their graphs hold the tables at the old
        # size (a backward through them would fail, and keeps autograd's per-leaf state alive).
        self._pending.take()
        self.synthesizer.forget()
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
        # Buffers, not parameters: optimizers hold none of them.
        old_n = self.num_embeddings
        added = self.added
        if added is None:
            added = torch.zeros(old_n, dtype=torch.bool, device=device)
        self.added = torch.cat([added, added.new_ones(n)])
        self._ensure_counts(self.config)
        assert self.counts is not None
        self.counts = torch.cat([self.counts, self.counts.new_zeros(n)])
        self.num_embeddings += n
        self._any_added = True
        return new_ids.to(device)

    def _new_words(self, tokens: Any, n: int) -> list[Any] | None:
        """The new ids' words, checked against a bound vocabulary (None without one)."""
        vocab = getattr(self, "vocab", None)
        if tokens is None or vocab is None:
            return None
        words = [tokens] if isinstance(tokens, str) else list(tokens)
        known = [w for w in words if w in vocab]
        if len(words) != n or known or len(set(words)) != n or len(vocab) != self.num_embeddings:
            raise ConfigError(
                f"add_items(tokens=...) adds {n} new words to the bound vocabulary, whose ids "
                f"must follow the layer's {self.num_embeddings}: got {len(words)} words "
                f"({len(set(words))} distinct; already in the vocabulary: {known[:5]}) for a "
                f"vocabulary of {len(vocab)} ids."
            )
        return words

    def is_cold(self, ids: torch.Tensor) -> torch.Tensor:
        """``(*)`` bool: which ids an eval-mode forward serves fully synthetic."""
        ids = check_integer_ids(ids, f"{_OWNER}.is_cold").long()
        beyond = self._check_ids(ids, f"{_OWNER}.is_cold")
        seen = self._seen(ids, beyond)
        cold = seen < self.config.cold_threshold
        if self.added is not None:
            cold = cold | (self._table_lookup(self.added, ids, beyond) & (seen == 0))
        if self.padding_idx is not None:
            cold = cold & (ids != self.padding_idx)
        return cold


def check_state_size(module: Any, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """``load_state_dict`` pre-hook: per-id state in the layer's form, of the layer's size.

    ``int64`` counts (files saved before they were compact) become ``int32``; a
    state with counts or added flags fills a layer that kept none, and a state
    without them loads as "none trained, none added".

    Raises:
        ShapeError: the saved ``counts`` buffer covers a different number of ids,
            with what to call (``add_items``, or build with the saved size).
    """
    saved = state_dict.get(prefix + "counts")
    added = state_dict.get(prefix + "added")
    have = int(module.num_embeddings)
    if isinstance(saved, torch.Tensor) and saved.dim() == 1 and int(saved.shape[0]) != have:
        _raise_size(int(saved.shape[0]), have, added)
    device = module._device()
    if isinstance(saved, torch.Tensor):
        state_dict[prefix + "counts"] = compact_counts(saved)
        if module.counts is None:
            module.counts = new_counts(have, device)
    elif module.counts is not None:
        state_dict[prefix + "counts"] = new_counts(have, device)
    if isinstance(added, torch.Tensor):
        if module.added is None and bool(added.any()):
            module.added = torch.zeros(have, dtype=torch.bool, device=device)
        elif module.added is None:
            del state_dict[prefix + "added"]  # nothing added: the layer keeps no flags
    elif module.added is not None:
        state_dict[prefix + "added"] = torch.zeros(have, dtype=torch.bool, device=device)


def _raise_size(want: int, have: int, added: Any) -> None:
    n_added = int(added.sum()) if isinstance(added, torch.Tensor) else 0
    hint = (
        f"call layer.add_items(...) with the {want - have} added items' side features "
        f"(or num_items={want - have}) first, or build it with num_embeddings={want}"
        if want > have
        else f"build it with num_embeddings={want}"
    )
    raise ShapeError(
        f"This state dict is of a {_OWNER} with {want} ids ({n_added} of them added by "
        f"add_items); this layer has {have}: {hint}. synthembed.save / synthembed.load "
        "rebuild a grown layer at its size."
    )
