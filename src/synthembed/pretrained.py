"""Former home of word vectors, kept so ``synthembed.pretrained`` imports still work.

Storage and alignment live in :mod:`synthembed.vectors`, the file formats and
their cache in :mod:`synthembed.formats`.
"""

from synthembed.vectors import (
    CoverageReport,
    Vectors,
    align,
    default_cache_dir,
    load_vectors,
    save_vectors,
)

__all__ = [
    "CoverageReport",
    "Vectors",
    "align",
    "default_cache_dir",
    "load_vectors",
    "save_vectors",
]
