"""Word-vector file formats: GloVe, word2vec (text and binary), fastText ``.vec``; a cache.

:func:`read_vectors` and :func:`write_vectors` work on words and a float32 array;
:func:`synthembed.vectors.load_vectors` and :func:`~synthembed.vectors.save_vectors`
are the user-facing calls that wrap them in a :class:`~synthembed.vectors.Vectors`.
"""

from synthembed.formats.cache import default_cache_dir
from synthembed.formats.files import (
    AUTO_CACHE_MIN_BYTES,
    ERROR_POLICIES,
    READ_FORMATS,
    WRITE_FORMATS,
    VectorFile,
    read_vectors,
    write_vectors,
)
from synthembed.formats.text import arrow_available

__all__ = [
    "AUTO_CACHE_MIN_BYTES",
    "ERROR_POLICIES",
    "READ_FORMATS",
    "WRITE_FORMATS",
    "VectorFile",
    "arrow_available",
    "default_cache_dir",
    "read_vectors",
    "write_vectors",
]
