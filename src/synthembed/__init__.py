"""synthembed: dense vectors for discrete and mixed data in PyTorch."""

from synthembed.errors import (
    ConfigError,
    FileFormatError,
    InvalidIndexError,
    MissingDependencyError,
    NonFiniteError,
    NotFittedError,
    ShapeError,
    SynthembedError,
    UnknownTokenError,
)
from synthembed.io import load, load_weights, save, save_weights
from synthembed.layers.embedding import Embedding
from synthembed.vocab import EncodedBatch, Vocabulary

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Embedding",
    "EncodedBatch",
    "FileFormatError",
    "InvalidIndexError",
    "MissingDependencyError",
    "NonFiniteError",
    "NotFittedError",
    "ShapeError",
    "SynthembedError",
    "UnknownTokenError",
    "Vocabulary",
    "__version__",
    "load",
    "load_weights",
    "save",
    "save_weights",
]
