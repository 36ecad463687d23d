"""Exact nearest-neighbour search by cosine similarity, and ``most_similar`` over word vectors.

Search is exact cosine similarity done as a batched matrix product with a top-k,
over rows normalised once and cached (``Vectors.unit_vectors``), in chunks of
queries so the score matrix stays small; on CPUs with native bfloat16 the
candidates come from a bfloat16 product and are rescored in float32, with a
worst-case error bound that keeps the result exact. For very many queries an
approximate index (:class:`synthembed.ann.ApproximateIndex`) trades a little
recall for much more speed.

This module works on anything shaped like :class:`synthembed.vectors.Vectors`
(the :class:`WordVectors` protocol), so the storage class can offer
``Vectors.most_similar`` without an import cycle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from synthembed import _kernels
from synthembed._validation import check_int
from synthembed.errors import ConfigError, ShapeError

__all__ = [
    "NeighbourIndex",
    "Neighbours",
    "WordVectors",
    "bf16_is_faster",
    "bf16_rows",
    "check_vectors",
    "most_similar",
    "search",
]

logger = logging.getLogger(__name__)

Neighbours = list[tuple[str, float]]


@runtime_checkable
class WordVectors(Protocol):
    """What search needs of a word-vector store (:class:`synthembed.vectors.Vectors` has it)."""

    @property
    def dim(self) -> int: ...

    @property
    def index_to_key(self) -> Sequence[str]: ...

    def __len__(self) -> int: ...

    def index(self, word: str) -> int: ...

    def unit_vectors(self, dtype: torch.dtype = torch.float32) -> torch.Tensor: ...


class NeighbourIndex(Protocol):
    """An index answering top-``k`` inner-product queries (e.g. ``ApproximateIndex``)."""

    def search(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]: ...


def check_vectors(vectors: Any, owner: str) -> WordVectors:
    """``vectors`` if it is a word-vector store, else a :class:`ConfigError` naming ``owner``."""
    if not isinstance(vectors, WordVectors):
        raise ConfigError(
            f"{owner} expects a synthembed.pretrained.Vectors; got {type(vectors).__name__}. "
            "Wrap a tensor with Vectors(words, tensor)."
        )
    return vectors


# ---------------------------------------------------------------------------- exact search
# Worst-case error of a bfloat16 product of two vectors of L2 norm <= 1, accumulated in
# float32 and rounded to bfloat16. bfloat16 keeps 8 significant bits, so rounding is a
# relative error <= u = 2**-9 per element: |q~.u~ - q.u| <= ||q~ - q|| ||u~|| + ||q|| ||u~ - u||
# <= u (1 + u) + u = 2**-8 + 2**-18; products of bf16 values are exact in float32 and the
# float32 sum of D <= 4096 of them errs by < D * 2**-24 * sum|products| <= 2**-12; the score
# (|s| <= 1 + 2**-8) is rounded to bfloat16 once more, <= 2**-8 (half an ulp of [1, 2)).
_BF16_BOUND = 2.0**-8 + 2.0**-18 + 2.0**-12 + 2.0**-8
# Candidates kept from the bf16 pass beyond k (rescored in float32); fewer means less
# rescoring but more queries redone in float32 when neighbours are too close to call.
_M_EXTRA = 24
_BF16_FASTER: bool | None = None  # measured once per process


def bf16_is_faster() -> bool:
    """Whether bfloat16 matrix products beat float32 here (CPUs with native bf16 do ~3x).

    Measured once per process on a small product, which must also stay within the
    error bound the exact search relies on.
    """
    global _BF16_FASTER
    if _BF16_FASTER is None:
        g = torch.Generator().manual_seed(0)
        a = torch.randn(128, 256, generator=g)
        a = a / a.norm(dim=1, keepdim=True)
        b = torch.randn(8192, 256, generator=g)
        b = b / b.norm(dim=1, keepdim=True)
        ab, bb = a.bfloat16(), b.bfloat16()
        exact = a @ b.T
        err = float((ab @ bb.T).float().sub(exact).abs().max())
        # Best of 7 runs each, interleaved: on a shared machine one slow run must not decide.
        timings = {"f32": float("inf"), "bf16": float("inf")}
        for _ in range(7):
            for name, x, y in (("f32", a, b), ("bf16", ab, bb)):
                start = time.perf_counter()
                x @ y.T
                timings[name] = min(timings[name], time.perf_counter() - start)
        _BF16_FASTER = err <= _BF16_BOUND / 2 and timings["bf16"] < 0.7 * timings["f32"]
        logger.debug("bf16 search prefilter: %s (%s, max error %.2g)", _BF16_FASTER, timings, err)
    return _BF16_FASTER


def search(
    unit: torch.Tensor,
    queries: torch.Tensor,
    k: int,
    *,
    exclude: torch.Tensor | None = None,
    chunk_size: int = 256,
    unit_bf16: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-``k`` inner-product search: ``queries @ unit.T`` then top-k, in chunks.

    With ``unit_bf16`` (a bfloat16 copy of ``unit``; rows and queries must have L2
    norm <= 1, as unit vectors do) candidates come from a bfloat16 product, several
    times faster on CPUs with native bf16, and are rescored in float32. The result
    stays exact: a query whose float32 ``k``-th score does not beat every
    non-candidate's bf16 score plus the worst-case bf16 error is redone in float32.

    Args:
        unit: ``(V, D)`` rows to search (normalise them first for cosine similarity).
        queries: ``(Q, D)`` query vectors.
        k: neighbours per query (at most ``V``).
        exclude: optional ``(Q, E)`` long tensor of row ids each query must not
            return (e.g. the query words themselves); ``-1`` entries are ignored.
        chunk_size: queries scored at a time; bounds the ``(chunk, V)`` score matrix.
        unit_bf16: optional ``unit.bfloat16()`` for the prefilter.

    Shape:
        ``(V, D)``, ``(Q, D)`` -> scores ``(Q, k)`` (descending) and row ids ``(Q, k)``.

    Example:
        >>> unit = torch.eye(3)
        >>> scores, ids = search(unit, torch.tensor([[0.0, 0.6, 0.8]]), 2)
        >>> ids.tolist(), scores.tolist()
        ([[2, 1]], [[0.800000011920929, 0.6000000238418579]])
    """
    owner = "search"
    if unit.dim() != 2 or queries.dim() != 2 or queries.shape[1] != unit.shape[1]:
        raise ShapeError(
            f"search needs unit (V, D) and queries (Q, D) with the same D; got "
            f"{tuple(unit.shape)} and {tuple(queries.shape)}."
        )
    check_int(owner, "k", k, 1, unit.shape[0])
    check_int(owner, "chunk_size", chunk_size, 1)
    if unit_bf16 is not None and tuple(unit_bf16.shape) != tuple(unit.shape):
        raise ShapeError(
            f"unit_bf16 must have the shape of unit {tuple(unit.shape)}; got {tuple(unit_bf16.shape)}."
        )
    q_all = queries.to(unit.dtype)
    n, size = q_all.shape[0], unit.shape[0]
    out_scores = torch.empty(n, k, dtype=unit.dtype)
    out_ids = torch.empty(n, k, dtype=torch.long)
    # Candidates per query for the bf16 prefilter; too few for a large k makes it pointless.
    m = min(size, k + _M_EXTRA)
    use_bf16 = unit_bf16 is not None and m < size
    # One score buffer for every chunk, in huge pages: a fresh (chunk, V) product per chunk
    # spent a third of its time in page faults.
    buffer = _kernels.empty(
        min(chunk_size, n), size, dtype=torch.bfloat16 if use_bf16 else unit.dtype
    )
    with torch.inference_mode():
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            q = q_all[start:stop]
            scores = buffer[: stop - start]  # (chunk, V)
            if use_bf16:
                assert unit_bf16 is not None  # for mypy
                torch.matmul(q.bfloat16(), unit_bf16.T, out=scores)  # bf16
            else:
                torch.matmul(q, unit.T, out=scores)
            if exclude is not None:
                ex = exclude[start:stop]
                rows = torch.arange(stop - start).unsqueeze(1).expand_as(ex)
                keep = ex >= 0
                scores[rows[keep], ex[keep]] = -torch.inf
            if not use_bf16:
                top = scores.topk(k, dim=1)
                out_scores[start:stop] = top.values
                out_ids[start:stop] = top.indices
                continue
            cand = scores.topk(m, dim=1)  # (chunk, m) bf16 values, ids
            threshold = cand.values[:, -1].float()  # no non-candidate scores above this in bf16
            exact = torch.bmm(unit[cand.indices], q.unsqueeze(2)).squeeze(2)  # (chunk, m) f32
            exact = exact.masked_fill(torch.isneginf(cand.values), -torch.inf)
            best = exact.topk(k, dim=1)
            ids = cand.indices.gather(1, best.indices)
            ok = best.values[:, -1] > threshold + _BF16_BOUND
            if not bool(ok.all()):
                # Rare: neighbours too close to call in bf16. Redo these queries in float32.
                redo = torch.nonzero(~ok).squeeze(1)
                full = q[redo] @ unit.T
                if exclude is not None:
                    full = full.masked_fill(torch.isneginf(scores[redo]), -torch.inf)
                top = full.topk(k, dim=1)
                best.values[redo] = top.values
                ids[redo] = top.indices
            out_scores[start:stop] = best.values
            out_ids[start:stop] = ids
    return out_scores, out_ids


def _as_queries(vectors: WordVectors, query: Any) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
    """Turn a word, words, a vector or vectors into ``(Q, D)`` unit queries and excluded rows."""
    unit = vectors.unit_vectors()
    if isinstance(query, str):
        row = vectors.index(query)
        return unit[row : row + 1], torch.tensor([[row]]), True
    if isinstance(query, (torch.Tensor, np.ndarray)):
        t = torch.as_tensor(query, dtype=torch.float32)
        single = t.dim() == 1
        t = t.unsqueeze(0) if single else t
        if t.dim() != 2 or t.shape[1] != vectors.dim:
            raise ShapeError(
                f"Query vectors must have shape (D,) or (Q, D) with D={vectors.dim}; got "
                f"{tuple(torch.as_tensor(query).shape)}."
            )
        return t / t.norm(dim=1, keepdim=True).clamp_min(1e-12), None, single
    words = list(query)
    if not all(isinstance(w, str) for w in words):
        raise ConfigError("A query must be a word, a list of words, or a (D,) / (Q, D) tensor.")
    rows = torch.tensor([vectors.index(w) for w in words], dtype=torch.long)
    return unit[rows], rows.unsqueeze(1), False


def most_similar(
    vectors: WordVectors,
    query: Any,
    k: int = 10,
    *,
    exclude_query: bool = True,
    index: NeighbourIndex | None = None,
    chunk_size: int = 256,
) -> Neighbours | list[Neighbours]:
    """The ``k`` words most similar to a query by cosine similarity.

    Args:
        vectors: the :class:`~synthembed.vectors.Vectors` to search.
        query: a word, a list of words (one search each, batched), a ``(D,)`` vector
            or a ``(Q, D)`` batch of vectors.
        k: neighbours per query.
        exclude_query: leave a query word out of its own results (as gensim does).
        index: an :class:`~synthembed.ann.ApproximateIndex` built on ``vectors``, to search
            approximately.
        chunk_size: queries scored per matrix product in exact search.

    Returns:
        For one word or one vector, a list of ``(word, cosine)`` pairs, best first; for
        a batch, one such list per query.

    Raises:
        UnknownTokenError: a query word without a vector.

    Example:
        >>> from synthembed.vectors import Vectors
        >>> v = Vectors(["cat", "dog", "car"], torch.tensor([[1.0, 0.1], [0.9, 0.2], [0.0, 1.0]]))
        >>> [w for w, _ in most_similar(v, "cat", k=2)]
        ['dog', 'car']
        >>> [[w for w, _ in r] for r in most_similar(v, ["cat", "car"], k=1)]
        [['dog'], ['dog']]
    """
    vectors = check_vectors(vectors, "most_similar")
    check_int("most_similar", "k", k, 1)
    queries, rows, single = _as_queries(vectors, query)
    exclude = rows if exclude_query else None
    n_exclude = 0 if exclude is None else exclude.shape[1]
    kk = min(k + n_exclude, len(vectors)) if index is not None else min(k, len(vectors) - n_exclude)
    if kk < 1:
        raise ConfigError(f"Only {len(vectors)} vectors: nothing is left to return for this query.")
    if index is not None:
        scores, ids = index.search(queries, kk)
        if exclude is not None:
            scores, ids = _drop_excluded(scores, ids, exclude, k)
    else:
        scores, ids = search(
            vectors.unit_vectors(),
            queries,
            kk,
            exclude=exclude,
            chunk_size=chunk_size,
            unit_bf16=bf16_rows(vectors, len(queries)),
        )
    words = vectors.index_to_key
    results = [
        [(words[i], float(s)) for i, s in zip(id_row, s_row) if i >= 0]
        for id_row, s_row in zip(ids.tolist(), scores.tolist())
    ]
    return results[0] if single else results


def bf16_rows(
    vectors: WordVectors, n_queries: int, limit: int | None = None
) -> torch.Tensor | None:
    """The bf16 unit rows (the first ``limit``) for :func:`search`'s prefilter, or None
    when it does not pay off for ``n_queries`` queries here."""
    # A handful of queries does not repay building the bf16 copy of the table.
    if n_queries < 32 or len(vectors) < 4096 or not bf16_is_faster():
        return None
    low = vectors.unit_vectors(torch.bfloat16)
    return low if limit is None else low[:limit]


def _drop_excluded(
    scores: torch.Tensor, ids: torch.Tensor, exclude: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    hit = (ids.unsqueeze(2) == exclude.unsqueeze(1)).any(dim=2)  # (Q, kk)
    scores = scores.masked_fill(hit, -torch.inf)
    order = scores.argsort(dim=1, descending=True, stable=True)[:, :k]
    return scores.gather(1, order), ids.gather(1, order)
