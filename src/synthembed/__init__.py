"""synthembed: dense vectors for discrete and mixed data in PyTorch.

The core (vocabularies, layers, save/load) imports eagerly; modules that pull
in heavier optional dependencies (scikit-learn, matplotlib, transformers) are
imported on first use of one of their names.
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING

from synthembed import optim
from synthembed._kernels import get_kernels, set_kernels, use_kernels
from synthembed.determinism import seed_everything
from synthembed.errors import (
    ConfigError,
    FileFormatError,
    InvalidIndexError,
    MissingDependencyError,
    NonFiniteError,
    NotFittedError,
    PathError,
    ShapeError,
    SynthembedError,
    UnknownTokenError,
)

# Imported eagerly: the function shares its name with its module, and a lazy name would
# be shadowed by the module as soon as anything imports synthembed.extract first.
from synthembed.extract import extract
from synthembed.io import load, load_weights, save, save_weights
from synthembed.layers.bases import (
    DHEEmbedding,
    HashEmbedding,
    LowRankEmbedding,
    MixedDimEmbedding,
    QREmbedding,
    make_base,
    register_base,
)
from synthembed.layers.embedding import Embedding
from synthembed.layers.ensemble import SyntheticEnsemble
from synthembed.layers.quantized import QuantizedEmbedding
from synthembed.layers.synthetic_embedding import (
    TECHNIQUES,
    SynthesisConfig,
    SyntheticEmbeddingLayer,
    register_technique,
)
from synthembed.layers.tabular import (
    CategoricalSpec,
    MultiLabelSpec,
    NumericalSpec,
    TabularEmbedding,
)
from synthembed.memory import memory_report
from synthembed.quantize import quantize
from synthembed.subwords import SubwordEmbedding
from synthembed.tokenize import RegexTokenizer, TextAsTokenWarning, get_tokenizer
from synthembed.vocab import EncodedBatch, Vocabulary

if _TYPE_CHECKING:
    from synthembed.ann import ApproximateIndex
    from synthembed.autoencoder_embedder import AutoencoderEmbedder
    from synthembed.encoders import EmbeddingEncoder
    from synthembed.evaluation import analogy, evaluate_analogies, evaluate_similarity
    from synthembed.search import most_similar
    from synthembed.text import TextEncoder
    from synthembed.vectors import CoverageReport, Vectors, align, load_vectors, save_vectors
    from synthembed.viz import export_projector, plot_embeddings, plot_weights

__version__ = "0.1.0"

# name -> module that defines it, imported on first access.
_LAZY = {
    "Vectors": "synthembed.vectors",
    "CoverageReport": "synthembed.vectors",
    "align": "synthembed.vectors",
    "load_vectors": "synthembed.vectors",
    "save_vectors": "synthembed.vectors",
    "most_similar": "synthembed.search",
    "ApproximateIndex": "synthembed.ann",
    "analogy": "synthembed.evaluation",
    "evaluate_similarity": "synthembed.evaluation",
    "evaluate_analogies": "synthembed.evaluation",
    "TextEncoder": "synthembed.text",
    "EmbeddingEncoder": "synthembed.encoders",
    "AutoencoderEmbedder": "synthembed.autoencoder_embedder",
    "plot_embeddings": "synthembed.viz",
    "plot_weights": "synthembed.viz",
    "export_projector": "synthembed.viz",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'synthembed' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    # The public API only (what __all__ lists), not the helpers this module imports.
    return sorted(__all__)


__all__ = [
    "TECHNIQUES",
    "ApproximateIndex",
    "AutoencoderEmbedder",
    "CategoricalSpec",
    "ConfigError",
    "CoverageReport",
    "DHEEmbedding",
    "Embedding",
    "EmbeddingEncoder",
    "EncodedBatch",
    "FileFormatError",
    "HashEmbedding",
    "InvalidIndexError",
    "LowRankEmbedding",
    "MissingDependencyError",
    "MixedDimEmbedding",
    "MultiLabelSpec",
    "NonFiniteError",
    "NotFittedError",
    "NumericalSpec",
    "PathError",
    "QREmbedding",
    "QuantizedEmbedding",
    "RegexTokenizer",
    "ShapeError",
    "SubwordEmbedding",
    "SynthembedError",
    "SynthesisConfig",
    "SyntheticEmbeddingLayer",
    "SyntheticEnsemble",
    "TabularEmbedding",
    "TextAsTokenWarning",
    "TextEncoder",
    "UnknownTokenError",
    "Vectors",
    "Vocabulary",
    "__version__",
    "align",
    "analogy",
    "evaluate_analogies",
    "evaluate_similarity",
    "export_projector",
    "extract",
    "get_kernels",
    "get_tokenizer",
    "load",
    "load_vectors",
    "load_weights",
    "make_base",
    "memory_report",
    "most_similar",
    "optim",
    "plot_embeddings",
    "plot_weights",
    "quantize",
    "register_base",
    "register_technique",
    "save",
    "save_vectors",
    "save_weights",
    "seed_everything",
    "set_kernels",
    "use_kernels",
]
