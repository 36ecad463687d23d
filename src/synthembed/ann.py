"""Approximate nearest-neighbour search with faiss (the ``ann`` extra): IVF-Flat with
``nprobe`` calibrated to a recall goal, or HNSW."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import torch

from synthembed._validation import check_choice, check_float, check_int, require
from synthembed.errors import ConfigError, ShapeError
from synthembed.search import check_vectors, search
from synthembed.vectors import Vectors

__all__ = ["ApproximateIndex"]

logger = logging.getLogger(__name__)


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
        check_vectors(vectors, owner)
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
