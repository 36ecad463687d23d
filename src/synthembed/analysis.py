"""Nearest neighbours, analogies and word-similarity benchmarks over :class:`Vectors`.

Search is exact cosine similarity done as a batched matrix product with a top-k,
over the rows normalised once and cached (:meth:`Vectors.unit_vectors`), in
chunks of queries so the score matrix stays small; on CPUs with native bfloat16
the candidates come from a bfloat16 product and are rescored in float32, with a
worst-case error bound that keeps the result exact. For very many queries an
approximate index (:class:`ApproximateIndex`: faiss IVF-Flat with ``nprobe``
calibrated to a recall goal, or HNSW; the ``ann`` extra) trades a little recall
for much more speed.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthembed._validation import check_choice, check_float, check_int, require
from synthembed.errors import ConfigError, FileFormatError, ShapeError
from synthembed.pretrained import Vectors, _huge_empty

__all__ = [
    "AnalogyResult",
    "ApproximateIndex",
    "SimilarityResult",
    "analogy",
    "bf16_is_faster",
    "evaluate_analogies",
    "evaluate_similarity",
    "most_similar",
    "search",
]

logger = logging.getLogger(__name__)

Neighbours = list[tuple[str, float]]


def _check_vectors(vectors: Any, owner: str) -> Vectors:
    if not isinstance(vectors, Vectors):
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
_LAST_REDO = 0  # queries redone in float32 by the last search (for benchmarks and tests)
_BF16_FASTER: bool | None = None  # measured once per process


def bf16_is_faster() -> bool:
    """Whether bfloat16 matrix products beat float32 here (CPUs with native bf16 do ~3x).

    Measured once per process on a small product, which must also stay within the
    error bound the exact search relies on.
    """
    global _BF16_FASTER
    if _BF16_FASTER is None:
        import time

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
    global _LAST_REDO
    _LAST_REDO = 0
    use_bf16 = unit_bf16 is not None and m < size
    # One score buffer for every chunk, in huge pages: a fresh (chunk, V) product per chunk
    # spent a third of its time in page faults.
    buffer = _huge_empty((min(chunk_size, n), size), torch.bfloat16 if use_bf16 else unit.dtype)
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
                _LAST_REDO += len(redo)
                full = q[redo] @ unit.T
                if exclude is not None:
                    full = full.masked_fill(torch.isneginf(scores[redo]), -torch.inf)
                top = full.topk(k, dim=1)
                best.values[redo] = top.values
                ids[redo] = top.indices
            out_scores[start:stop] = best.values
            out_ids[start:stop] = ids
    return out_scores, out_ids


def _as_queries(vectors: Vectors, query: Any) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
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
    vectors: Vectors,
    query: Any,
    k: int = 10,
    *,
    exclude_query: bool = True,
    index: ApproximateIndex | None = None,
    chunk_size: int = 256,
) -> Neighbours | list[Neighbours]:
    """The ``k`` words most similar to a query by cosine similarity.

    Args:
        vectors: the :class:`~synthembed.pretrained.Vectors` to search.
        query: a word, a list of words (one search each, batched), a ``(D,)`` vector
            or a ``(Q, D)`` batch of vectors.
        k: neighbours per query.
        exclude_query: leave a query word out of its own results (as gensim does).
        index: an :class:`ApproximateIndex` built on ``vectors`` to search approximately.
        chunk_size: queries scored per matrix product in exact search.

    Returns:
        For one word or one vector, a list of ``(word, cosine)`` pairs, best first; for
        a batch, one such list per query.

    Raises:
        UnknownTokenError: a query word without a vector.

    Example:
        >>> v = Vectors(["cat", "dog", "car"], torch.tensor([[1.0, 0.1], [0.9, 0.2], [0.0, 1.0]]))
        >>> [w for w, _ in most_similar(v, "cat", k=2)]
        ['dog', 'car']
        >>> [[w for w, _ in r] for r in most_similar(v, ["cat", "car"], k=1)]
        [['dog'], ['dog']]
    """
    vectors = _check_vectors(vectors, "most_similar")
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
            unit_bf16=_bf16_copy(vectors, len(queries)),
        )
    words = vectors._words
    results = [
        [(words[i], float(s)) for i, s in zip(id_row, s_row) if i >= 0]
        for id_row, s_row in zip(ids.tolist(), scores.tolist())
    ]
    return results[0] if single else results


def _bf16_copy(vectors: Vectors, n_queries: int, limit: int | None = None) -> torch.Tensor | None:
    """The bf16 unit rows for the exact-search prefilter, when it pays off here."""
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


# ---------------------------------------------------------------------------- approximate
class ApproximateIndex:
    """An approximate nearest-neighbour index (faiss) over a :class:`Vectors`' unit rows.

    Two methods (both from the ``ann`` extra: ``pip install 'synthembed[ann]'``, faiss-cpu):

    - ``"ivf"`` (default): an inverted file of flat lists. k-means splits the rows into
      ``nlist`` cells; a query scans the ``nprobe`` cells nearest to it. Builds in seconds;
      by default ``nprobe`` is calibrated at build time to the smallest power of two whose
      recall@10 against exact search reaches ``target_recall``, on up to 256 of the
      indexed rows used as queries (the :attr:`calibrated_recall` it reached is kept).
    - ``"hnsw"``: a navigable small-world graph; strong recall for one query at a time,
      but builds take minutes on 100,000 rows.

    Vectors without neighbourhood structure (e.g. isotropic Gaussian noise) defeat
    every approximate index: calibration then raises ``nprobe`` to nearly all cells.

    Args:
        vectors: the vectors to index (cosine similarity).
        method: ``"ivf"`` or ``"hnsw"``.
        target_recall: recall@10 that calibration aims for (``"ivf"`` with ``nprobe=None``).
        nlist: IVF cells; default ``4 * sqrt(V)`` (at most ``V // 39``, faiss' minimum
            training points per cell).
        nprobe: IVF cells scanned per query; None calibrates it.
        m: HNSW graph degree; larger gives better recall and a bigger, slower build.
        ef_construction: HNSW candidate list size while building.
        ef_search: HNSW candidate list size while searching (raise it for recall).

    Shape:
        ``search``: ``(Q, D)`` unit queries -> scores and row ids ``(Q, k)``.

    Example:
        >>> v = Vectors([f"w{i}" for i in range(50)], torch.randn(50, 8))
        >>> index = ApproximateIndex(v)  # doctest: +SKIP
        >>> v.most_similar("w0", k=3, index=index)  # doctest: +SKIP
    """

    def __init__(
        self,
        vectors: Vectors,
        *,
        method: str = "ivf",
        target_recall: float = 0.95,
        nlist: int | None = None,
        nprobe: int | None = None,
        m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 128,
    ) -> None:
        owner = "ApproximateIndex"
        vectors = _check_vectors(vectors, owner)
        check_choice(owner, "method", method, ("ivf", "hnsw"))
        check_float(owner, "target_recall", target_recall, 0.0, 1.0)
        check_int(owner, "nlist", nlist, 1, max(1, len(vectors)), optional=True)
        check_int(owner, "nprobe", nprobe, 1, optional=True)
        check_int(owner, "m", m, 2)
        check_int(owner, "ef_construction", ef_construction, 1)
        check_int(owner, "ef_search", ef_search, 1)
        faiss = require("faiss", "ann", "ApproximateIndex")
        self.method = method
        self.dim = vectors.dim
        self.size = len(vectors)
        self.m = m
        self.ef_construction = ef_construction
        self.calibrated_recall: float | None = None
        self._faiss = faiss
        data = np.ascontiguousarray(vectors.unit_vectors().numpy(), dtype=np.float32)
        if method == "hnsw":
            self._index = faiss.IndexHNSWFlat(self.dim, m, faiss.METRIC_INNER_PRODUCT)
            self._index.hnsw.efConstruction = ef_construction
            self._index.add(data)
            self.ef_search = ef_search
            return
        if nlist is None:
            nlist = max(1, min(int(4 * self.size**0.5), self.size // 39))
        self.nlist = nlist
        self._quantizer = faiss.IndexFlatIP(self.dim)  # kept alive: the index refers to it
        self._index = faiss.IndexIVFFlat(
            self._quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT
        )
        self._index.cp.niter = 10  # k-means iterations: 10 place the cells well enough
        self._index.cp.seed = 1234
        self._index.train(data)
        self._index.add(data)
        if nprobe is None:
            nprobe = self._calibrate(vectors, target_recall)
        self.nprobe = nprobe

    def _calibrate(self, vectors: Vectors, target_recall: float) -> int:
        """The smallest power-of-two ``nprobe`` reaching ``target_recall`` on sample rows."""
        unit = vectors.unit_vectors()
        g = torch.Generator().manual_seed(0)
        rows = torch.randperm(self.size, generator=g)[: min(256, self.size)]
        k = min(10, self.size - 1)
        if k < 1:
            return 1
        _, exact = search(unit, unit[rows], k, exclude=rows.unsqueeze(1))
        wanted = [set(r) for r in exact.tolist()]
        nprobe = 1
        while True:
            self._index.nprobe = nprobe
            _, got = self._index.search(np.ascontiguousarray(unit[rows].numpy()), k + 1)
            hits = [len(w & (set(r) - {int(q)})) for w, r, q in zip(wanted, got.tolist(), rows)]
            recall = sum(hits) / (k * len(wanted))
            if recall >= target_recall or nprobe >= self.nlist:
                nprobe = min(nprobe, self.nlist)
                self.calibrated_recall = recall
                logger.info("ApproximateIndex: nprobe=%d gives recall@%d %.3f", nprobe, k, recall)
                if nprobe * 4 > self.nlist:
                    warnings.warn(
                        f"ApproximateIndex: recall {target_recall} needs nprobe={nprobe} of "
                        f"{self.nlist} cells: these vectors have little neighbourhood structure "
                        "and exact search (most_similar without index=) is likely faster.",
                        stacklevel=3,
                    )
                return nprobe
            nprobe *= 2

    @property
    def nprobe(self) -> int:
        """IVF cells scanned per query (``method="ivf"``)."""
        self._require_method("ivf", "nprobe")
        return int(self._index.nprobe)

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self._require_method("ivf", "nprobe")
        check_int("ApproximateIndex", "nprobe", value, 1, self.nlist)
        self._index.nprobe = value

    @property
    def ef_search(self) -> int:
        """Candidate list size at search time (``method="hnsw"``)."""
        self._require_method("hnsw", "ef_search")
        return int(self._index.hnsw.efSearch)

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        self._require_method("hnsw", "ef_search")
        check_int("ApproximateIndex", "ef_search", value, 1)
        self._index.hnsw.efSearch = value

    def _require_method(self, method: str, name: str) -> None:
        if self.method != method:
            raise ConfigError(
                f"ApproximateIndex.{name} applies to method={method!r}; this index uses "
                f"method={self.method!r}."
            )

    def search(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Approximate top-``k`` by inner product; missing results have id ``-1``."""
        check_int("ApproximateIndex.search", "k", k, 1, self.size)
        if queries.dim() != 2 or queries.shape[1] != self.dim:
            raise ShapeError(
                f"Queries must have shape (Q, {self.dim}); got {tuple(queries.shape)}."
            )
        q = np.ascontiguousarray(queries.detach().cpu().numpy(), dtype=np.float32)
        scores, ids = self._index.search(q, k)
        return torch.from_numpy(scores), torch.from_numpy(ids.astype(np.int64))

    def __repr__(self) -> str:
        if self.method == "hnsw":
            detail = f"m={self.m}, ef_search={self.ef_search}"
        else:
            detail = f"nlist={self.nlist}, nprobe={self.nprobe}"
        return (
            f"ApproximateIndex(method={self.method!r}, size={self.size}, dim={self.dim}, {detail})"
        )


# ---------------------------------------------------------------------------- analogies
def _lookup_table(vectors: Vectors, limit: int, case_insensitive: bool) -> dict[str, int]:
    """Word -> row over the first ``limit`` rows; case-folded like gensim (the first row wins)."""
    words = vectors._words[:limit]
    if not case_insensitive:
        return {w: i for i, w in enumerate(words)}
    table: dict[str, int] = {}
    for i in range(len(words) - 1, -1, -1):
        table[words[i].upper()] = i
    return table


def _fold(word: str, case_insensitive: bool) -> str:
    return word.upper() if case_insensitive else word


def analogy(vectors: Vectors, a: str, b: str, c: str, k: int = 1) -> Neighbours:
    """Solve ``a : b :: c : ?`` by 3CosAdd: the words nearest ``b - a + c`` (unit vectors).

    ``a``, ``b`` and ``c`` are never answers, as in gensim and the original word2vec.

    Returns:
        ``k`` pairs ``(word, cosine)``, best first.

    Example:
        >>> v = Vectors(["man", "king", "woman", "queen", "apple"], torch.tensor(
        ...     [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0]]))
        >>> analogy(v, "man", "king", "woman")[0][0]
        'queen'
    """
    vectors = _check_vectors(vectors, "analogy")
    check_int("analogy", "k", k, 1)
    unit = vectors.unit_vectors()
    rows = [vectors.index(w) for w in (a, b, c)]
    query = (unit[rows[1]] - unit[rows[0]] + unit[rows[2]]).unsqueeze(0)
    query = query / query.norm().clamp_min(1e-12)
    kk = min(k, len(vectors) - len(set(rows)))
    if kk < 1:
        raise ConfigError("Too few vectors: every word is part of the question.")
    scores, ids = search(unit, query, kk, exclude=torch.tensor([rows]))
    return [(vectors._words[i], float(s)) for i, s in zip(ids[0].tolist(), scores[0].tolist())]


@dataclass(frozen=True)
class AnalogyResult:
    """Accuracy on analogy questions.

    Attributes:
        accuracy: correct / answered (0 when none answered).
        correct: questions answered right.
        answered: questions whose four words all had vectors.
        skipped: questions with a word that had no vector.
        sections: per section name, ``(correct, answered)``.
    """

    accuracy: float
    correct: int
    answered: int
    skipped: int
    sections: dict[str, tuple[int, int]] = field(default_factory=dict)


def _read_lines(source: Any, what: str) -> list[str]:
    if isinstance(source, (str, os.PathLike)):
        p = Path(os.fspath(source))
        if not p.is_file():
            raise FileNotFoundError(f"No {what} file at '{p}'.")
        return p.read_text(encoding="utf-8").splitlines()
    return [str(line) for line in source]


def evaluate_analogies(
    vectors: Vectors,
    questions: str | os.PathLike[str] | Iterable[str],
    *,
    restrict_vocab: int | None = 300_000,
    case_insensitive: bool = True,
    chunk_size: int = 256,
) -> AnalogyResult:
    """Accuracy on analogy questions in the word2vec ``questions-words.txt`` format.

    ``: section`` lines start a section; each other line is ``a b c d``, asking
    ``a : b :: c : ?`` with answer ``d``. Like gensim's ``evaluate_word_analogies``, only
    the first ``restrict_vocab`` words are searched, questions with a word outside
    them are skipped, and with ``case_insensitive`` words match whatever their case
    (the most frequent variant wins) and the case variants of ``a``, ``b`` and ``c`` are
    never answers. The numbers match gensim's on the same vectors.

    Args:
        vectors: the vectors to evaluate.
        questions: a path, or the lines themselves.
        restrict_vocab: search only the first N rows (files are usually by frequency).
        case_insensitive: match words ignoring case, as gensim does by default.
        chunk_size: questions scored per matrix product.

    Raises:
        FileFormatError: a question line without exactly four words.

    Example:
        >>> v = Vectors(["man", "king", "woman", "queen"], torch.tensor(
        ...     [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0]]))
        >>> evaluate_analogies(v, [": royal", "man king woman queen"]).accuracy
        1.0
    """
    vectors = _check_vectors(vectors, "evaluate_analogies")
    check_int("evaluate_analogies", "restrict_vocab", restrict_vocab, 1, optional=True)
    limit = len(vectors) if restrict_vocab is None else min(restrict_vocab, len(vectors))
    table = _lookup_table(vectors, limit, case_insensitive)
    section = "default"
    quads: list[list[int]] = []
    names: list[str] = []
    skipped = 0
    for number, line in enumerate(_read_lines(questions, "analogy questions"), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith(":"):
            section = text[1:].strip()
            continue
        parts = text.split()
        if len(parts) != 4:
            raise FileFormatError(
                f"Analogy question line {number} must have 4 words; got {len(parts)}: {text!r}."
            )
        rows = [table.get(_fold(w, case_insensitive)) for w in parts]
        if any(r is None for r in rows):
            skipped += 1
            continue
        quads.append(rows)  # type: ignore[arg-type]
        names.append(section)
    sections: dict[str, list[int]] = {}
    correct_total = 0
    if quads:
        unit = vectors.unit_vectors()[:limit]
        q = torch.tensor(quads, dtype=torch.long)  # (N, 4)
        query = unit[q[:, 1]] - unit[q[:, 0]] + unit[q[:, 2]]  # (N, D)
        query = query / query.norm(dim=1, keepdim=True).clamp_min(1e-12)
        # Like gensim: take the top 5 (the question words excluded) and answer with the
        # first whose case-folded form is not one of the question's words.
        _, top = search(
            unit,
            query,
            min(5, limit - 3),
            exclude=q[:, :3],
            chunk_size=chunk_size,
            unit_bf16=_bf16_copy(vectors, len(quads), limit),
        )
        words = vectors._words
        hits = []
        for question, candidates in zip(quads, top.tolist()):
            asked = {_fold(words[r], case_insensitive) for r in question[:3]}
            answer = _fold(words[question[3]], case_insensitive)
            guess = next(
                (g for g in candidates if _fold(words[g], case_insensitive) not in asked), None
            )
            hits.append(guess is not None and _fold(words[guess], case_insensitive) == answer)
        for name, hit in zip(names, hits):
            counts = sections.setdefault(name, [0, 0])
            counts[0] += int(hit)
            counts[1] += 1
        correct_total = int(sum(hits))
    answered = len(quads)
    return AnalogyResult(
        accuracy=correct_total / answered if answered else 0.0,
        correct=correct_total,
        answered=answered,
        skipped=skipped,
        sections={k: (v[0], v[1]) for k, v in sections.items()},
    )


# ---------------------------------------------------------------------------- similarity
@dataclass(frozen=True)
class SimilarityResult:
    """Agreement of cosine similarities with human similarity scores.

    Attributes:
        spearman: Spearman rank correlation over the pairs used (nan if fewer than 2).
        pearson: Pearson correlation over the same pairs.
        pairs_used: pairs whose two words had vectors.
        pairs_skipped: pairs with a word that had no vector.
    """

    spearman: float
    pearson: float
    pairs_used: int
    pairs_skipped: int

    @property
    def oov_ratio(self) -> float:
        """Share of pairs skipped for a missing word."""
        total = self.pairs_used + self.pairs_skipped
        return self.pairs_skipped / total if total else 0.0


def _rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank (scipy's ``rankdata(method="average")``)."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def evaluate_similarity(
    vectors: Vectors,
    pairs: str | os.PathLike[str] | Iterable[Sequence[Any]],
    *,
    case_insensitive: bool = True,
    restrict_vocab: int | None = 300_000,
    delimiter: str = "\t",
) -> SimilarityResult:
    """Spearman (and Pearson) correlation of cosine similarity with human judgements.

    Args:
        vectors: the vectors to evaluate.
        pairs: a file in the WordSim-353 / SimLex-999 layout of gensim's test data
            (``word1<TAB>word2<TAB>score`` lines, ``#`` comments), or ``(word1, word2,
            score)`` triples.
        case_insensitive: match words ignoring case (the most frequent variant wins), as
            gensim's ``evaluate_word_pairs`` does by default.
        restrict_vocab: look words up among the first N rows only.
        delimiter: field separator of a file.

    Raises:
        FileFormatError: a file line without a word pair and a numeric score.

    Example:
        >>> v = Vectors(["a", "b", "c"], torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]))
        >>> evaluate_similarity(v, [("a", "b", 9.0), ("a", "c", 1.0), ("b", "c", 2.0)]).spearman
        1.0
    """
    vectors = _check_vectors(vectors, "evaluate_similarity")
    check_int("evaluate_similarity", "restrict_vocab", restrict_vocab, 1, optional=True)
    limit = len(vectors) if restrict_vocab is None else min(restrict_vocab, len(vectors))
    table = _lookup_table(vectors, limit, case_insensitive)
    triples: list[tuple[str, str, float]] = []
    if isinstance(pairs, (str, os.PathLike)):
        for number, line in enumerate(_read_lines(pairs, "word-pair"), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.rstrip("\r\n").split(delimiter)
            try:
                triples.append((parts[0], parts[1], float(parts[2])))
            except (IndexError, ValueError):
                raise FileFormatError(
                    f"Word-pair line {number} must be 'word1{delimiter!r}word2{delimiter!r}score'; "
                    f"got {line!r}."
                ) from None
    else:
        for item in pairs:
            if isinstance(item, str) or len(item) != 3:
                raise ConfigError(f"Each pair must be (word1, word2, score); got {item!r}.")
            triples.append((str(item[0]), str(item[1]), float(item[2])))
    left: list[int] = []
    right: list[int] = []
    human: list[float] = []
    skipped = 0
    for a, b, score in triples:
        ra = table.get(_fold(a, case_insensitive))
        rb = table.get(_fold(b, case_insensitive))
        if ra is None or rb is None:
            skipped += 1
            continue
        left.append(ra)
        right.append(rb)
        human.append(score)
    if not left:
        return SimilarityResult(float("nan"), float("nan"), 0, skipped)
    unit = vectors.unit_vectors()
    model = (unit[torch.tensor(left)] * unit[torch.tensor(right)]).sum(dim=1).double().numpy()
    truth = np.asarray(human, dtype=np.float64)
    return SimilarityResult(
        spearman=_pearson(_rankdata(model), _rankdata(truth)),
        pearson=_pearson(model, truth),
        pairs_used=len(left),
        pairs_skipped=skipped,
    )
