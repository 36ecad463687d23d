"""Manifold synthesis: structure-preserving coordinates, mapped to ``D`` by a learnable map.

At configure time, scikit-learn's ``SpectralEmbedding`` (Laplacian eigenmaps,
Belkin & Niyogi 2003) or ``Isomap`` (Tenenbaum et al. 2000) computes
``n_components`` coordinates per id from the side features, or (spectral only)
from a user-supplied ``(V, V)`` similarity graph ``affinity=``. Coordinates are
standardised per column and kept in a buffer; the synthetic vector is
``coords[id] @ W + b``. Ids that are neighbours in feature space stay
neighbours.

Scaling (a departure from calling the learners on everything): both learners
cost at least quadratic memory or time in the number of points (Isomap holds
all geodesic distances), so above ``max_fit_items`` ids the learner is fitted
on a seeded random sample of that size and the other ids get coordinates by
the out-of-sample rule below.

Out-of-sample rule (new ids from ``add_items`` and ids outside the sample):
the inverse-distance weighted average of the coordinates of the
``n_neighbors`` nearest fitted ids in feature space (with a similarity graph:
the affinity-weighted average of the coordinates of all existing ids).
``Isomap.transform`` would also extend, but it needs the fitted scikit-learn
object, which is not saved (nothing is pickled); the rule here works the same
before and after a reload.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from synthembed._validation import check_choice, check_finite, check_int, require
from synthembed.errors import ConfigError, ShapeError
from synthembed.synthesis.base import Synthesizer, lookup_rows, register_technique

__all__ = ["Manifold", "knn_extend"]

_METHODS = ("spectral", "isomap")


def knn_extend(
    reference: torch.Tensor, coords: torch.Tensor, queries: torch.Tensor, k: int
) -> torch.Tensor:
    """Coordinates of ``queries`` as inverse-distance weighted means of their ``k`` nearest references.

    Args:
        reference: ``(R, F)`` features of points with known coordinates.
        coords: ``(R, C)`` their coordinates.
        queries: ``(Q, F)`` features of new points.
        k: number of neighbours (capped at ``R``).

    Returns:
        ``(Q, C)`` coordinates.
    """
    k = min(k, reference.shape[0])
    ref = reference.double()
    out = []
    for start in range(0, queries.shape[0], 4096):  # chunks keep (Q, R) distances small
        q = queries[start : start + 4096].double()
        dist = torch.cdist(q, ref)  # (q, R)
        d, idx = dist.topk(k, dim=1, largest=False)
        w = 1.0 / (d + 1e-8)
        w = w / w.sum(dim=1, keepdim=True)
        out.append((w.unsqueeze(-1) * coords.double()[idx]).sum(dim=1))  # (q, C)
    if not out:
        return coords.new_zeros((0, coords.shape[1]))
    return torch.cat(out).to(coords.dtype)


@register_technique("manifold")
class Manifold(Synthesizer):
    """Coordinates from a manifold learner over side features, mapped linearly to ``D``.

    Args:
        num_embeddings: number of ids served.
        embedding_dim: ``D``.
        side_dim: ``F`` (needed unless ``affinity`` is given).
        method: ``"spectral"`` (``sklearn.manifold.SpectralEmbedding``) or
            ``"isomap"`` (``sklearn.manifold.Isomap``).
        n_components: number of coordinates per id (default ``min(16, D)``).
        n_neighbors: neighbours of the kNN graph and of the out-of-sample rule.
        affinity: optional ``(V, V)`` non-negative similarity graph (spectral
            only) used instead of side features. Not saved: the coordinates are.
        max_fit_items: fit the learner on at most this many ids (see module notes).
        seed: seed of the learner and of the sample (``random_state`` is its deprecated name).

    Shape:
        ids ``(*)`` -> ``(*, D)``; soft-lookup weights ``(*, V)`` -> ``(*, D)``.

    Example:
        >>> m = Manifold(50, 8, 3, n_components=2)
        >>> m.fit(torch.rand(50, 3))
        >>> m(torch.tensor([0, 1]), torch.randn(2, 8), None).shape
        torch.Size([2, 8])
    """

    needs_side_features = True
    renamed_options: ClassVar[dict[str, str]] = {"random_state": "seed"}
    unsaved_options: ClassVar[tuple[str, ...]] = ("affinity",)  # the coordinates are saved
    uses_rows = False
    id_tables = True
    coordinates: torch.Tensor

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        side_dim: int | None,
        *,
        method: str = "spectral",
        n_components: int | None = None,
        n_neighbors: int = 10,
        affinity: Any = None,
        max_fit_items: int = 4000,
        seed: int = 0,
    ) -> None:
        check_choice("Manifold", "method", method, _METHODS)
        check_int("Manifold", "n_components", n_components, 1, optional=True)
        check_int("Manifold", "n_neighbors", n_neighbors, 1)
        check_int("Manifold", "max_fit_items", max_fit_items, 2)
        check_int("Manifold", "seed", seed, 0)
        aff = None
        if affinity is not None:
            if method != "spectral":
                raise ConfigError(
                    f"affinity= (a similarity graph) works with method='spectral'; got method={method!r}."
                )
            aff = torch.as_tensor(np.asarray(affinity), dtype=torch.float64)
            if tuple(aff.shape) != (num_embeddings, num_embeddings):
                raise ShapeError(
                    f"affinity must have shape ({num_embeddings}, {num_embeddings}) (one row and "
                    f"column per id); got {tuple(aff.shape)}."
                )
            check_finite(aff, "affinity")
            if bool((aff < 0).any()):
                raise ConfigError("affinity must be non-negative (a similarity graph).")
        super().__init__(num_embeddings, embedding_dim, side_dim)
        self.method = method
        self.n_components = n_components if n_components is not None else min(16, embedding_dim)
        self.n_neighbors = n_neighbors
        self.max_fit_items = max_fit_items
        self.seed = seed
        self._affinity = aff
        self.register_buffer("coordinates", torch.zeros(num_embeddings, self.n_components))
        self.projection = nn.Linear(self.n_components, embedding_dim)

    @classmethod
    def check_side_features(cls, side_dim: int | None, options: dict[str, Any]) -> None:
        if side_dim is None and options.get("affinity") is None:
            raise ConfigError(
                "Synthesis technique 'manifold' needs side features or a similarity graph: build "
                "the layer with side_features=<tensor of shape (input_dim, F)>, or pass "
                "affinity=<(input_dim, input_dim) tensor> (method='spectral')."
            )

    # ------------------------------------------------------------------ fitting
    def fit(self, side_features: torch.Tensor | None) -> None:
        """Compute the coordinates of every id (configure time)."""
        manifold = require("sklearn.manifold", "data", "The 'manifold' synthesis technique")
        n = self.num_embeddings
        if n < 3:
            raise ConfigError(f"The 'manifold' technique needs at least 3 ids; got {n}.")
        k = min(self.n_neighbors, n - 1)
        n_comp = self.n_components
        if n_comp >= n - 1:
            raise ConfigError(
                f"n_components={n_comp} must be smaller than the number of ids minus one ({n - 1})."
            )
        if self._affinity is not None:
            learner = manifold.SpectralEmbedding(
                n_components=n_comp, affinity="precomputed", random_state=self.seed
            )
            aff = self._affinity.numpy()
            coords = learner.fit_transform((aff + aff.T) / 2)
            full = torch.as_tensor(coords)
        else:
            assert side_features is not None
            feats = side_features.detach().double().cpu()
            rng = np.random.default_rng(self.seed)
            sample = (
                np.sort(rng.choice(n, size=self.max_fit_items, replace=False))
                if n > self.max_fit_items
                else np.arange(n)
            )
            x = feats[torch.as_tensor(sample)].numpy()
            learner = (
                manifold.SpectralEmbedding(
                    n_components=n_comp,
                    affinity="nearest_neighbors",
                    n_neighbors=k,
                    random_state=self.seed,
                )
                if self.method == "spectral"
                else manifold.Isomap(n_neighbors=k, n_components=n_comp)
            )
            fitted = torch.as_tensor(learner.fit_transform(x))  # (S, C)
            full = torch.empty(n, n_comp, dtype=torch.float64)
            full[torch.as_tensor(sample)] = fitted
            if len(sample) < n:
                rest = torch.as_tensor(np.setdiff1d(np.arange(n), sample))
                full[rest] = knn_extend(feats[torch.as_tensor(sample)], fitted, feats[rest], k)
        # Standardise so the learnable map starts on unit-variance inputs.
        mean, std = full.mean(0), full.std(0).clamp_min(1e-12)
        standardized = (full - mean) / std
        with torch.no_grad():
            self.coordinates.copy_(standardized.to(self.coordinates.dtype))

    def grow(
        self,
        n: int,
        new_side: torch.Tensor | None,
        old_side: torch.Tensor | None,
        **kwargs: Any,
    ) -> None:
        """Coordinates for ``n`` new ids by the out-of-sample rule (see the module notes).

        Args:
            n: number of new ids.
            new_side: their ``(n, F)`` side features (when the layer has side features).
            old_side: the existing ids' ``(V, F)`` side features.
            kwargs: ``affinity=`` an ``(n, V)`` similarity of the new ids to the
                existing ones, for layers built on a similarity graph.
        """
        affinity = kwargs.get("affinity")
        coords = self.coordinates
        if new_side is not None and old_side is not None:
            new = knn_extend(old_side, coords, new_side.to(old_side.dtype), self.n_neighbors)
        elif affinity is not None:
            aff = torch.as_tensor(np.asarray(affinity), dtype=torch.float64)
            if tuple(aff.shape) != (n, self.num_embeddings):
                raise ShapeError(
                    f"affinity of new items must have shape ({n}, {self.num_embeddings}); "
                    f"got {tuple(aff.shape)}."
                )
            check_finite(aff, "affinity")
            weights = aff / aff.sum(1, keepdim=True).clamp_min(1e-12)
            new = (weights @ coords.double()).to(coords.dtype)
        else:
            raise ConfigError(
                "The 'manifold' technique places new ids by their neighbours: pass the new "
                "items' side features, or affinity=<(n, input_dim) similarities to existing ids>."
            )
        self.coordinates = torch.cat([coords, new.to(coords.device)])
        self.num_embeddings += n

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        index: torch.Tensor,
        rows: torch.Tensor,
        side: torch.Tensor | None,
        visible: torch.Tensor | None = None,
    ) -> torch.Tensor:
        coords = lookup_rows(self.coordinates.to(rows.dtype), index)  # (*, C)
        return self.projection(coords)
