"""The exception types users catch.

Every error subclasses both :class:`SynthembedError` and the built-in type a
user would already catch (``IndexError``, ``ValueError``, ``TypeError``,
``KeyError``, ``ImportError``), so ``except IndexError`` keeps working around
our layers exactly as it does around ``torch.nn.Embedding``.

Messages follow one wording: what went wrong, the offending value, the valid
range, and the likely fix.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "FileFormatError",
    "InvalidIndexError",
    "MissingDependencyError",
    "NonFiniteError",
    "NotFittedError",
    "PathError",
    "ShapeError",
    "SynthembedError",
    "UnknownTokenError",
]


class SynthembedError(Exception):
    """Base class of every error synthembed raises on purpose."""


class InvalidIndexError(SynthembedError, IndexError):
    """An id outside the table's valid range ``[0, num_embeddings)``."""


class UnknownTokenError(SynthembedError, KeyError):
    """A token that is not in the vocabulary under the ``"error"`` OOV policy."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class ShapeError(SynthembedError, ValueError):
    """An input whose shape or dtype the call cannot take."""


class ConfigError(SynthembedError, ValueError):
    """An argument outside its valid range or set of choices."""


class NonFiniteError(SynthembedError, ValueError):
    """NaN or infinity where finite numbers are required."""


class FileFormatError(SynthembedError, ValueError):
    """A file that is malformed, truncated, tampered with or of an unknown version."""


class NotFittedError(SynthembedError, RuntimeError, ValueError, AttributeError):
    """A method that needs fitted state was called before ``fit``.

    A ``RuntimeError`` (what synthembed raised first) and, like scikit-learn's
    ``NotFittedError``, a ``ValueError`` and an ``AttributeError``.
    """


class PathError(SynthembedError, OSError):
    """A path that cannot be read or written as asked: a missing directory, a
    directory where a file is expected, a file where a directory is expected,
    or no permission. The message names the user's path, never a temporary file.
    """


class MissingDependencyError(SynthembedError, ImportError):
    """An optional dependency is needed for this call and is not installed."""
