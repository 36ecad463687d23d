"""Row-wise sparse and fused optimizers for embedding tables.

- :mod:`.sparse`: :class:`SparseSGD`, :class:`SparseAdagrad`, :class:`RowWiseAdagrad`
  and :class:`SparseAdamW`, ``torch.optim`` optimizers for ``sparse=True`` tables.
- :mod:`.fused`: the same optimizers fused into a table's backward
  (``synthembed.Embedding(..., fused_optimizer=RowWiseAdagrad(lr=0.01))``), and
  :func:`dense_parameters` for the optimizer of the rest of the model.
- :mod:`.growth`: :func:`grow_state` after ``grow`` / ``add_items``, and the
  :class:`StaleStateError` a stale optimizer state raises.
- :mod:`.serialization`: :func:`save_optimizer` / :func:`load_optimizer` (safetensors + JSON).
"""

from synthembed.optim.fused import dense_parameters, fused_parameters
from synthembed.optim.growth import StaleStateError, grow_state
from synthembed.optim.serialization import load_optimizer, save_optimizer
from synthembed.optim.sparse import (
    RowWiseAdagrad,
    SparseAdagrad,
    SparseAdamW,
    SparseRowOptimizer,
    SparseSGD,
)

__all__ = [
    "RowWiseAdagrad",
    "SparseAdagrad",
    "SparseAdamW",
    "SparseRowOptimizer",
    "SparseSGD",
    "StaleStateError",
    "dense_parameters",
    "fused_parameters",
    "grow_state",
    "load_optimizer",
    "save_optimizer",
]
