"""Data: loaders of the offline datasets and preparation helpers."""

from synthembed.data.movielens import NO_GENRE, MovieLens, movielens

__all__ = ["NO_GENRE", "MovieLens", "movielens"]
