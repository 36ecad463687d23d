"""Exact nearest-neighbour search by cosine similarity, and ``most_similar`` over word vectors.

When faiss is installed (the ``ann`` extra), exact search hands the queries to
``faiss.knn`` with the inner-product metric: the brute-force kernel behind
``faiss.IndexFlatIP``, BLAS products in blocks with a heap top-k, which reaches the
matrix-product bound (``benchmarks/results/pretrained.md``, "Exact search"), and reads
the unit rows in place. Without faiss, search is exact cosine similarity done as a
batched matrix product with a top-k,
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
from types import ModuleType
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch

from synthembed import _kernels
from synthembed._validation import check_choice, check_int
from synthembed.errors import ConfigError, MissingDependencyError, ShapeError, UnknownTokenError
from synthembed.vocab import Vocabulary

__all__ = [
    "SEARCH_BACKENDS",
    "NeighbourIndex",
    "Neighbours",
    "TableWords",
    "WordVectors",
    "bf16_is_faster",
    "bf16_rows",
    "check_vectors",
    "faiss_is_faster",
    "most_similar",
    "search",
]

logger = logging.getLogger(__name__)

Neighbours = list[tuple[str, float]]
SearchBackend = Literal["auto", "faiss", "torch"]
#: ``search(backend=...)`` choices: faiss when installed ("auto"), or one of them.
SEARCH_BACKENDS = ("auto", "faiss", "torch")


def _faiss() -> ModuleType | None:
    """The faiss module when installed, else None (imported on use: an optional extra)."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


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
    """``vectors`` as a word-vector store, else a :class:`ConfigError` naming ``owner``.

    A layer with a bound vocabulary (a trained :class:`~synthembed.Embedding` with
    ``vocab=``: a 2-d ``weight`` and a ``vocab``) is searched over its regular tokens'
    rows: specials (``<pad>``, ``<unk>``...) and OOV hash buckets are left out.
    """
    if isinstance(vectors, WordVectors):
        return vectors
    vocab, weight = getattr(vectors, "vocab", None), getattr(vectors, "weight", None)
    if isinstance(vocab, Vocabulary) and isinstance(weight, torch.Tensor) and weight.dim() == 2:
        return TableWords(vocab, weight)
    if isinstance(weight, torch.Tensor) and vocab is None:
        raise ConfigError(
            f"{owner} got a {type(vectors).__name__} without a vocabulary, so its rows have no "
            "words. Build the layer with vocab=, or wrap its weight with Vectors(words, weight)."
        )
    raise ConfigError(
        f"{owner} expects a synthembed.pretrained.Vectors; got {type(vectors).__name__}. "
        "Wrap a tensor with Vectors(words, tensor), or pass a layer built with vocab=."
    )


class TableWords:
    """The regular tokens' rows of a table bound to a :class:`~synthembed.vocab.Vocabulary`,
    as a read-only :class:`WordVectors` (a live view: the rows are read at each call).

    Args:
        vocab: the vocabulary; its specials and hash buckets are left out.
        weight: the ``(N, D)`` table, ``N >= len(vocab)``; row ``i`` is id ``i``.

    Example:
        >>> vocab = Vocabulary(["cat", "dog", "car"])
        >>> words = TableWords(vocab, torch.tensor(
        ...     [[0.0, 0.0], [0.5, 0.5], [1.0, 0.1], [0.9, 0.2], [0.0, 1.0]]))
        >>> list(words.index_to_key), words.index("dog")
        (['cat', 'dog', 'car'], 1)
    """

    def __init__(self, vocab: Vocabulary, weight: torch.Tensor) -> None:
        if weight.dim() != 2 or weight.shape[0] < len(vocab):
            raise ShapeError(
                f"The table {tuple(weight.shape)} must be (N, D) with N >= len(vocab) = "
                f"{len(vocab)}."
            )
        self._first = vocab.first_token_id
        self._stop = len(vocab)
        self._words = [str(t) for t in vocab.tokens]
        self._index = {w: i for i, w in enumerate(self._words)}
        self._weight = weight
        self._unit: tuple[tuple[int, int], torch.Tensor] | None = None
        self._low: dict[torch.dtype, torch.Tensor] = {}

    @property
    def dim(self) -> int:
        return int(self._weight.shape[1])

    @property
    def index_to_key(self) -> Sequence[str]:
        return self._words

    def __len__(self) -> int:
        return len(self._words)

    def index(self, word: str) -> int:
        row = self._index.get(word)
        if row is None:
            raise UnknownTokenError(
                f"The word {word!r} is not a regular token of the layer's vocabulary "
                f"({len(self._words)} tokens; specials are not searched)."
            )
        return row

    @property
    def vectors(self) -> torch.Tensor:
        """``(V, D)``: the regular tokens' rows, detached."""
        return self._weight.detach()[self._first : self._stop]

    def unit_vectors(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        rows = self.vectors
        key = (rows.data_ptr(), _kernels.tensor_version(self._weight))
        if self._unit is None or self._unit[0] != key:
            vecs = rows.float()
            self._unit = (key, vecs / vecs.norm(dim=1, keepdim=True).clamp_min(1e-12))
            self._low = {}
        if dtype == torch.float32:
            return self._unit[1]
        if dtype not in self._low:
            self._low[dtype] = self._unit[1].to(dtype)
        return self._low[dtype]


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


_FAISS_FASTER: bool | None = None  # measured once per process


def faiss_is_faster(faiss: ModuleType) -> bool:
    """Whether ``faiss.knn`` beats this module's torch search here, on a table of 16,384 x
    256 unit rows and 256 queries, best of 5 interleaved runs each, measured once per
    process.

    Measured rather than assumed: on the shared 2-core benchmark machine, issue 17 found
    faiss's flat kernel (its own OpenBLAS and OpenMP) about 1.5x faster than the torch
    path on a quiet machine, and ``benchmarks/results/pretrained.md`` found it 3x slower
    in a busy one.
    """
    global _FAISS_FASTER
    if _FAISS_FASTER is None:
        g = torch.Generator().manual_seed(0)
        rows = torch.randn(16384, 256, generator=g)
        rows = rows / rows.norm(dim=1, keepdim=True)
        queries = rows[:256].clone()
        low = rows.bfloat16() if bf16_is_faster() else None
        timings = {"faiss": float("inf"), "torch": float("inf")}
        for _ in range(5):
            start = time.perf_counter()
            _faiss_search(faiss, rows, queries, 10, None)
            timings["faiss"] = min(timings["faiss"], time.perf_counter() - start)
            start = time.perf_counter()
            search(rows, queries, 10, unit_bf16=low, backend="torch")
            timings["torch"] = min(timings["torch"], time.perf_counter() - start)
        _FAISS_FASTER = timings["faiss"] < timings["torch"]
        logger.debug("faiss exact search: %s (%s)", _FAISS_FASTER, timings)
    return _FAISS_FASTER


def search(
    unit: torch.Tensor,
    queries: torch.Tensor,
    k: int,
    *,
    exclude: torch.Tensor | None = None,
    chunk_size: int = 256,
    unit_bf16: torch.Tensor | None = None,
    backend: SearchBackend = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-``k`` inner-product search: ``queries @ unit.T`` then top-k, in chunks.

    With ``backend="faiss"`` (float32 CPU rows) the search is ``faiss.knn`` with the
    inner-product metric (what ``IndexFlatIP`` runs), asked for ``k`` plus the excluded
    ids and then cleaned of them. ``"auto"`` takes that route when faiss is installed,
    the search is large (at least 32 queries and 4,096 rows) and faiss measured faster
    here (:func:`faiss_is_faster`); else, and with ``"torch"``, the path below.

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
        unit_bf16: optional ``unit.bfloat16()`` for the prefilter (torch backend).
        backend: ``"auto"`` (faiss when installed and faster here, else torch), ``"faiss"``
            or ``"torch"``.

    Raises:
        MissingDependencyError: ``backend="faiss"`` without faiss installed.

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
    check_choice(owner, "backend", backend, SEARCH_BACKENDS)
    q_all = queries.to(unit.dtype)
    faiss = None if backend == "torch" else _faiss()
    if backend == "faiss" and faiss is None:
        raise MissingDependencyError(
            "search(backend='faiss') needs faiss: pip install 'synthembed[ann]' (faiss-cpu), "
            "or use backend='auto'."
        )
    usable = faiss is not None and unit.dtype == torch.float32 and unit.device.type == "cpu"
    if usable and backend == "auto":
        # A few queries or rows do not repay faiss's start-up (the torch path is ~20x faster
        # on 5,000 rows and 100 queries).
        large = q_all.shape[0] >= 32 and unit.shape[0] >= 4096
        usable = large and faiss_is_faster(faiss)  # type: ignore[arg-type]
    if usable:
        assert faiss is not None  # for mypy
        return _faiss_search(faiss, unit, q_all, k, exclude)
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


def _faiss_search(
    faiss: ModuleType,
    unit: torch.Tensor,
    queries: torch.Tensor,
    k: int,
    exclude: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`search` through ``faiss.knn`` (inner product), rows read in place."""
    n_exclude = 0 if exclude is None else exclude.shape[1]
    kk = min(k + n_exclude, unit.shape[0])
    rows = unit.detach().contiguous().numpy()  # (V, D) float32, no copy for unit rows
    q = np.ascontiguousarray(queries.detach().numpy(), dtype=np.float32)  # (Q, D)
    scores_np, ids_np = faiss.knn(q, rows, kk, metric=faiss.METRIC_INNER_PRODUCT)
    scores, ids = torch.from_numpy(scores_np), torch.from_numpy(ids_np)  # (Q, kk)
    if exclude is not None:
        # Excluded rows found among the k + E best sink to the end with score -inf,
        # as the torch path leaves them; the k best of the rest are exact.
        return _drop_excluded(scores, ids, exclude, k)
    return scores, ids


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
    vectors: WordVectors | torch.nn.Module,
    query: Any,
    k: int = 10,
    *,
    exclude_query: bool = True,
    index: NeighbourIndex | None = None,
    chunk_size: int = 256,
    backend: SearchBackend = "auto",
) -> Neighbours | list[Neighbours]:
    """The ``k`` words most similar to a query by cosine similarity.

    Args:
        vectors: the :class:`~synthembed.vectors.Vectors` to search, or a layer with a
            bound vocabulary (its specials and hash buckets are not searched).
        query: a word, a list of words (one search each, batched), a ``(D,)`` vector
            or a ``(Q, D)`` batch of vectors.
        k: neighbours per query.
        exclude_query: leave a query word out of its own results (as gensim does).
        index: an :class:`~synthembed.ann.ApproximateIndex` built on ``vectors``, to search
            approximately.
        chunk_size: queries scored per matrix product in exact search.
        backend: exact search's backend, see :func:`search` (faiss when installed).

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
    check_choice("most_similar", "backend", backend, SEARCH_BACKENDS)
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
            unit_bf16=None if backend == "faiss" else bf16_rows(vectors, len(queries)),
            backend=backend,
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
