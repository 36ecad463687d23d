"""Peer baselines the layer is measured against, written plainly.

- :class:`ContentMLPItems` and :func:`content_mlp_mf`: the 20-line model a
  practitioner writes by hand: an ``nn.Embedding`` plus a two-layer MLP over
  the item side features, blended at 0.5, with a share of ids (30%) served by
  the MLP alone in training (DropoutNet's idea) and never-trained ids served by
  the MLP alone in evaluation. Plain torch on purpose: it is the bar, not a
  product.
- :func:`lightfm_scores`: LightFM (Kula, 2015) with WARP, item features =
  identity + side features, cold items scored from their side features alone
  (their identity feature never trained). Needs the optional ``lightfm``
  package (``pip install lightfm-next``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from synthembed._validation import check_float, check_int, require
from synthembed.errors import ShapeError
from synthembed.layers.embedding import Embedding
from synthembed.recsys.models import MatrixFactorization, seeded

if TYPE_CHECKING:
    from synthembed.recsys.split import ColdStartSplit

__all__ = ["ContentMLPItems", "content_mlp_mf", "lightfm_available", "lightfm_scores"]


class ContentMLPItems(nn.Module):
    """Item vectors ``(1 - r) * table[i] + r * mlp(features[i])``, the hand-written peer.

    In training mode each looked-up id is served by the MLP alone with
    probability ``mlp_only_fraction`` (else blended at ``rate``), and ids are
    marked as trained. In evaluation mode ids never marked are served by the
    MLP alone.

    Args:
        side_features: ``(V, F)`` item side features.
        embedding_dim: size ``D`` of the vectors.
        hidden: width of the MLP's hidden layer.
        rate: blend weight of the MLP for trained ids.
        mlp_only_fraction: training share of lookups served by the MLP alone.

    Shape:
        ``(*)`` ids -> ``(*, D)``.

    Example:
        >>> items = ContentMLPItems(torch.rand(6, 3), 4)
        >>> items(torch.tensor([[0, 5]])).shape
        torch.Size([1, 2, 4])
    """

    trained: torch.Tensor
    features: torch.Tensor

    def __init__(
        self,
        side_features: np.ndarray | torch.Tensor,
        embedding_dim: int,
        *,
        hidden: int = 256,
        rate: float = 0.5,
        mlp_only_fraction: float = 0.3,
    ) -> None:
        feats = torch.as_tensor(np.asarray(side_features), dtype=torch.float32)
        if feats.dim() != 2 or feats.shape[0] < 1 or feats.shape[1] < 1:
            raise ShapeError(
                f"ContentMLPItems expects side_features of shape (V, F) with V, F >= 1; "
                f"got {tuple(feats.shape)}."
            )
        check_int("ContentMLPItems", "embedding_dim", embedding_dim, 1)
        check_int("ContentMLPItems", "hidden", hidden, 1)
        check_float("ContentMLPItems", "rate", rate, 0.0, 1.0)
        check_float("ContentMLPItems", "mlp_only_fraction", mlp_only_fraction, 0.0, 1.0)
        super().__init__()
        self.num_embeddings = int(feats.shape[0])
        self.embedding_dim = embedding_dim
        self.rate = rate
        self.mlp_only_fraction = mlp_only_fraction
        self.table = nn.Embedding(self.num_embeddings, embedding_dim)
        self.mlp = nn.Sequential(
            nn.Linear(feats.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, embedding_dim)
        )
        self.register_buffer("features", feats)
        self.register_buffer("trained", torch.zeros(self.num_embeddings, dtype=torch.bool))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        row = self.table(ids)  # (*, D)
        # The MLP once per distinct id (the same vectors, computed fewer times).
        distinct, inverse = torch.unique(ids, return_inverse=True)
        content = self.mlp(self.features[distinct])[inverse]  # (*, D)
        rate = torch.full(ids.shape, self.rate, dtype=row.dtype)  # (*)
        if self.training:
            self.trained[ids] = True
            rate = torch.where(torch.rand(ids.shape) < self.mlp_only_fraction, 1.0, rate)
        else:
            rate = torch.where(self.trained[ids], rate, torch.ones_like(rate))
        r = rate.unsqueeze(-1)  # (*, 1)
        return (1 - r) * row + r * content


def content_mlp_mf(
    num_users: int,
    side_features: np.ndarray | torch.Tensor,
    embedding_dim: int,
    *,
    hidden: int = 256,
    rate: float = 0.5,
    mlp_only_fraction: float = 0.3,
    init_std: float = 0.1,
    item_bias: bool = False,
    seed: int,
) -> MatrixFactorization:
    """Matrix factorisation with a user table and :class:`ContentMLPItems` items.

    Example:
        >>> mf = content_mlp_mf(3, torch.rand(5, 2), 4, seed=0)
        >>> mf.score_matrix().shape
        (3, 5)
    """
    check_int("content_mlp_mf", "num_users", num_users, 1)
    check_float("content_mlp_mf", "init_std", init_std, 0.0, low_closed=False)
    with seeded(seed):
        users = Embedding(num_users, embedding_dim)
        nn.init.normal_(users.weight, std=init_std)
        items = ContentMLPItems(
            side_features,
            embedding_dim,
            hidden=hidden,
            rate=rate,
            mlp_only_fraction=mlp_only_fraction,
        )
        nn.init.normal_(items.table.weight, std=init_std)
    return MatrixFactorization(users, items, item_bias=item_bias)


def lightfm_available() -> bool:
    """Whether the optional ``lightfm`` package imports."""
    try:
        import lightfm  # noqa: F401
    except ImportError:
        return False
    return True


def lightfm_scores(
    split: ColdStartSplit,
    side_features: np.ndarray,
    *,
    embedding_dim: int = 64,
    epochs: tuple[int, ...] = (30,),
    learning_rate: float = 0.05,
    seed: int,
) -> dict[int, np.ndarray]:
    """Scores of LightFM (WARP) on ``split`` after each epoch count in ``epochs``.

    Item features are the identity plus ``side_features``; cold items (never in
    training) are scored from their side features alone. The score includes
    LightFM's item bias.

    Returns:
        ``{epochs: (num_users, num_items) float32 scores}``.

    Raises:
        MissingDependencyError: ``lightfm`` is not installed.
        ShapeError: ``side_features`` does not have one row per item.
    """
    require("lightfm", "peers", "The LightFM baseline")
    import scipy.sparse as sp
    from lightfm import LightFM

    feats = np.asarray(side_features, dtype=np.float32)
    nu, ni = split.num_users, split.num_items
    if feats.ndim != 2 or feats.shape[0] != ni:
        raise ShapeError(
            f"lightfm_scores expects side_features of shape ({ni}, F); got {feats.shape}."
        )
    check_int("lightfm_scores", "embedding_dim", embedding_dim, 1)
    for count in epochs:
        check_int("lightfm_scores", "epochs", count, 1)
    x = sp.coo_matrix(
        (np.ones(len(split.train), dtype=np.float32), (split.train[:, 0], split.train[:, 1])),
        shape=(nu, ni),
    ).tocsr()
    side = sp.csr_matrix(feats)
    train_features = sp.hstack([sp.identity(ni, format="csr", dtype=np.float32), side]).tocsr()
    keep = np.ones(ni, dtype=np.float32)
    keep[split.cold_items] = 0.0
    score_features = sp.hstack([sp.diags(keep).tocsr(), side]).tocsr()
    model = LightFM(
        no_components=embedding_dim, loss="warp", learning_rate=learning_rate, random_state=seed
    )
    out: dict[int, np.ndarray] = {}
    done = 0
    for target in sorted(set(epochs)):
        model.fit_partial(x, item_features=train_features, epochs=target - done, num_threads=1)
        done = target
        item_bias, item_vec = model.get_item_representations(score_features)
        _, user_vec = model.get_user_representations()
        out[target] = (user_vec @ item_vec.T + item_bias[None, :]).astype(np.float32)
    return out
