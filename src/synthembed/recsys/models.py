"""Matrix factorisation with ranking losses, for any user and item embedding modules.

:class:`MatrixFactorization` scores a user-item pair as the dot product of the
user's and the item's vectors, plus an optional learned item bias; the two
embedding modules can be anything that maps ``(*)`` ids to ``(*, D)``: a plain
:class:`~synthembed.Embedding`, a
:class:`~synthembed.layers.synthetic_embedding.SyntheticEmbeddingLayer` serving
cold items from their side features, or a compressed base. :func:`train_bpr`
trains it with Bayesian personalised ranking (Rendle et al., 2009) by default:
for each observed pair ``(u, i)`` and a uniformly drawn item ``j`` from the
training items, minimise ``-log sigmoid(s(u, i) - s(u, j))`` plus an L2 penalty
on the vectors of the batch, plus any auxiliary loss the embedding modules
report through ``get_loss()`` (reconstruction, adversarial). ``BPRConfig``
also draws several negatives per pair and swaps in sampled softmax or WARP
(:mod:`synthembed.recsys.losses`), what it takes to match LightFM on warm items.

Negatives are drawn only from items that occur in training, so items that are
cold by the protocol never receive a gradient: a plain table keeps their
random initial rows, and a synthetic layer never sees their side features.

Every call is seeded and deterministic on the CPU: initialisation, sampling and
any randomness inside the modules draw from a forked torch generator seeded by
``seed``, leaving the caller's global random state untouched.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from synthembed._validation import check_choice, check_float, check_int
from synthembed.errors import ConfigError, ShapeError
from synthembed.layers.embedding import Embedding
from synthembed.recsys.losses import LOSSES, ranking_loss

__all__ = [
    "BPRConfig",
    "MatrixFactorization",
    "plain_mf",
    "popularity_scores",
    "random_scores",
    "seeded",
    "synthetic_mf",
    "train_bpr",
]

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's CPU generator seeded, restoring the caller's state after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _aux_loss(module: nn.Module) -> torch.Tensor | None:
    get_loss = getattr(module, "get_loss", None)
    if get_loss is None:
        return None
    loss = get_loss()
    if loss is None:
        return None
    if not isinstance(loss, torch.Tensor):
        loss = torch.as_tensor(float(loss))
    return loss


def _num_ids(module: nn.Module) -> int:
    """Ids a module serves: its ``num_embeddings`` (or ``input_dim``, the synthetic layer's name)."""
    for name in ("num_embeddings", "input_dim"):
        value = getattr(module, name, None)
        if isinstance(value, int):
            return value
    raise ConfigError(
        f"{type(module).__name__} has neither 'num_embeddings' nor 'input_dim'; "
        "MatrixFactorization needs embedding modules that say how many ids they serve."
    )


class MatrixFactorization(nn.Module):
    """Dot-product recommender: ``score(u, i) = <user_embedding(u), item_embedding(i)> + b_i``.

    Args:
        user_embedding: maps ``(*)`` user ids to ``(*, D)``.
        item_embedding: maps ``(*)`` item ids to ``(*, D)``.
        item_bias: learn a scalar bias ``b_i`` per item (initialised to 0), as
            LightFM does. Items that never train keep ``b_i = 0``; under a
            ranking loss each step moves positive and negative biases in
            opposite directions, so 0 stays near the trained items' mean.

    Shape:
        ``users (*)`` and ``items (*)`` -> scores ``(*)``.

    Example:
        >>> mf = plain_mf(3, 5, 4, seed=0)
        >>> mf(torch.tensor([0, 2]), torch.tensor([1, 4])).shape
        torch.Size([2])
        >>> mf.score_matrix().shape
        (3, 5)
    """

    item_bias: nn.Parameter | None

    def __init__(
        self, user_embedding: nn.Module, item_embedding: nn.Module, *, item_bias: bool = False
    ) -> None:
        super().__init__()
        self.user_embedding = user_embedding
        self.item_embedding = item_embedding
        if item_bias:
            self.item_bias = nn.Parameter(torch.zeros(_num_ids(item_embedding)))
        else:
            self.register_parameter("item_bias", None)

    @property
    def num_users(self) -> int:
        """Number of user ids."""
        return _num_ids(self.user_embedding)

    @property
    def num_items(self) -> int:
        """Number of item ids."""
        return _num_ids(self.item_embedding)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        scores = (self.user_embedding(users) * self.item_embedding(items)).sum(dim=-1)
        return scores if self.item_bias is None else scores + self.item_bias[items]

    def aux_loss(self) -> torch.Tensor | None:
        """Sum of the embedding modules' ``get_loss()`` of the last forward, if any."""
        losses = [
            loss
            for loss in (_aux_loss(self.user_embedding), _aux_loss(self.item_embedding))
            if loss is not None
        ]
        if not losses:
            return None
        total = losses[0]
        for loss in losses[1:]:
            total = total + loss
        return total

    @torch.no_grad()
    def item_vectors(self, items: torch.Tensor | None = None) -> np.ndarray:
        """Item vectors in evaluation mode (cold items as the module serves them).

        Shape:
            ``(V,)`` ids (default all) -> ``(V, D)`` float32 numpy array.
        """
        was = self.training
        self.eval()
        try:
            ids = torch.arange(self.num_items) if items is None else items
            return self.item_embedding(ids).detach().float().cpu().numpy()
        finally:
            self.train(was)

    @torch.no_grad()
    def user_vectors(self) -> np.ndarray:
        """All user vectors in evaluation mode: ``(U, D)`` float32 numpy array."""
        was = self.training
        self.eval()
        try:
            return self.user_embedding(torch.arange(self.num_users)).detach().float().cpu().numpy()
        finally:
            self.train(was)

    @torch.no_grad()
    def item_biases(self) -> np.ndarray:
        """``(V,)`` float32 item biases (zeros without ``item_bias``)."""
        if self.item_bias is None:
            return np.zeros(self.num_items, dtype=np.float32)
        return self.item_bias.detach().float().cpu().numpy().copy()

    def score_matrix(self) -> np.ndarray:
        """Scores of every user for every item: ``(U, V)`` float32 numpy array."""
        scores = self.user_vectors() @ self.item_vectors().T
        if self.item_bias is not None:
            scores += self.item_biases()[None, :]
        return scores


def plain_mf(
    num_users: int,
    num_items: int,
    embedding_dim: int,
    *,
    init_std: float = 0.1,
    item_bias: bool = False,
    seed: int,
) -> MatrixFactorization:
    """Matrix factorisation with plain :class:`~synthembed.Embedding` tables.

    Rows start as ``N(0, init_std^2)``: the ``N(0, 1)`` of ``nn.Embedding`` makes
    initial scores of size ``D`` and saturates the BPR sigmoid. ``item_bias``
    adds a learned bias per item (see :class:`MatrixFactorization`).
    """
    check_int("plain_mf", "num_users", num_users, 1)
    check_int("plain_mf", "num_items", num_items, 1)
    check_int("plain_mf", "embedding_dim", embedding_dim, 1)
    check_float("plain_mf", "init_std", init_std, 0.0, low_closed=False)
    with seeded(seed):
        users = Embedding(num_users, embedding_dim)
        items = Embedding(num_items, embedding_dim)
        nn.init.normal_(users.weight, std=init_std)
        nn.init.normal_(items.weight, std=init_std)
    return MatrixFactorization(users, items, item_bias=item_bias)


@dataclass(frozen=True)
class BPRConfig:
    """Training budget and regularisation of :func:`train_bpr`.

    Attributes:
        epochs: passes over the training pairs.
        batch_size: pairs per step.
        lr: Adam learning rate.
        l2: weight of the L2 penalty on the batch's user, positive and negative
            vectors (mean over the batch; the usual BPR regulariser).
        aux_weight: weight of the modules' auxiliary losses.
        weight_decay: Adam weight decay on every parameter (0 = none).
        negatives: negatives drawn per observed pair.
        loss: ``"bpr"`` (Rendle et al.), ``"softmax"`` (sampled softmax) or
            ``"warp"`` (LightFM's loss, batched); see :mod:`synthembed.recsys.losses`.
    """

    epochs: int = 40
    batch_size: int = 1024
    lr: float = 5e-3
    l2: float = 1e-4
    aux_weight: float = 1.0
    weight_decay: float = 0.0
    negatives: int = 1
    loss: str = "bpr"

    def __post_init__(self) -> None:
        check_int("BPRConfig", "epochs", self.epochs, 0)
        check_int("BPRConfig", "batch_size", self.batch_size, 1)
        check_float("BPRConfig", "lr", self.lr, 0.0, low_closed=False)
        check_float("BPRConfig", "l2", self.l2, 0.0)
        check_float("BPRConfig", "aux_weight", self.aux_weight, 0.0)
        check_float("BPRConfig", "weight_decay", self.weight_decay, 0.0)
        check_int("BPRConfig", "negatives", self.negatives, 1)
        check_choice("BPRConfig", "loss", self.loss, LOSSES)


def train_bpr(
    model: MatrixFactorization,
    train_pairs: np.ndarray,
    config: BPRConfig,
    *,
    seed: int,
    negative_items: np.ndarray | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``model`` with a ranking loss on ``(user, item)`` pairs.

    Each observed pair is scored against ``config.negatives`` items drawn
    uniformly from ``negative_items``, under ``config.loss`` (BPR by default;
    sampled softmax; WARP), with the model's item biases if it has them.

    Args:
        model: the recommender (trained in place).
        train_pairs: ``(N, 2)`` int array of observed ``(user, item)`` pairs.
        config: the training budget.
        seed: seed of shuffling, negative sampling and module randomness.
        negative_items: the items negatives are drawn from (uniformly);
            defaults to the items that occur in ``train_pairs``.
        on_epoch: called after every epoch with ``(epoch, mean loss)`` (for
            progress bars).

    Returns:
        The mean training loss of each epoch.

    Raises:
        ShapeError: ``train_pairs`` is not ``(N, 2)`` with ``N >= 1``.
        ConfigError: ``negative_items`` is empty.
    """
    pairs = np.asarray(train_pairs)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or len(pairs) == 0:
        raise ShapeError(
            f"train_bpr expects train_pairs of shape (N, 2) with N >= 1; got {pairs.shape}."
        )
    pool = np.unique(pairs[:, 1]) if negative_items is None else np.asarray(negative_items)
    if pool.size == 0:
        raise ConfigError("train_bpr got an empty negative_items pool; pass at least one item.")
    users_all = torch.as_tensor(pairs[:, 0], dtype=torch.long)
    items_all = torch.as_tensor(pairs[:, 1], dtype=torch.long)
    pool_t = torch.as_tensor(pool, dtype=torch.long)
    adversaries: list[Any] = [
        m
        for m in (model.user_embedding, model.item_embedding)
        if callable(getattr(m, "discriminator_parameters", None)) and m.discriminator_parameters()  # type: ignore[operator]
    ]
    disc_params: list[nn.Parameter] = [p for m in adversaries for p in m.discriminator_parameters()]
    disc_ids = {id(p) for p in disc_params}
    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad and id(p) not in disc_ids],
        lr=config.lr,
        weight_decay=config.weight_decay,
    )
    disc_optimizer = torch.optim.Adam(disc_params, lr=config.lr) if disc_params else None
    n = len(pairs)
    steps = math.ceil(n / config.batch_size)
    loss_fn = ranking_loss(config.loss)
    num_items = max(2, int(pool.size))
    history: list[float] = []
    model.train()
    with seeded(seed):
        gen = torch.Generator().manual_seed(seed)
        for epoch in range(config.epochs):
            order = torch.randperm(n, generator=gen)
            negatives = pool_t[torch.randint(len(pool_t), (n, config.negatives), generator=gen)]
            total = 0.0
            for step in range(steps):
                idx = order[step * config.batch_size : (step + 1) * config.batch_size]
                u, i, j = users_all[idx], items_all[idx], negatives[idx]  # j: (B, N)
                user_vec = model.user_embedding(u)  # (B, D)
                both = torch.cat([i.unsqueeze(1), j], dim=1)  # (B, 1 + N)
                item_vec = model.item_embedding(both)  # (B, 1 + N, D)
                scores = (user_vec.unsqueeze(1) * item_vec).sum(dim=-1)  # (B, 1 + N)
                if model.item_bias is not None:
                    scores = scores + model.item_bias[both]
                loss = loss_fn(scores[:, 0], scores[:, 1:], num_items)
                if config.l2 > 0:
                    # User, positive and the mean negative (with one negative: the
                    # usual BPR regulariser of the three vectors).
                    norms = item_vec.pow(2).sum(dim=-1)  # (B, 1 + N)
                    if model.item_bias is not None:
                        norms = norms + model.item_bias[both].pow(2)
                    reg = (
                        user_vec.pow(2).sum(dim=-1) + norms[:, 0] + norms[:, 1:].mean(dim=1)
                    ).mean()
                    loss = loss + config.l2 * reg
                aux = model.aux_loss()
                if aux is not None and config.aux_weight > 0:
                    loss = loss + config.aux_weight * aux
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if disc_optimizer is not None:
                    # The GAN's discriminator: its own loss on the batch's real and
                    # (detached) generated rows, its own parameters.
                    d_loss = torch.stack([m.discriminator_loss() for m in adversaries]).sum()
                    disc_optimizer.zero_grad(set_to_none=True)
                    d_loss.backward()
                    disc_optimizer.step()
                total += float(loss.detach())
            history.append(total / steps)
            if on_epoch is not None:
                on_epoch(epoch, history[-1])
            logger.debug("BPR epoch %d: loss %.4f", epoch, history[-1])
    model.eval()
    return history


def synthetic_mf(
    num_users: int,
    side_features: np.ndarray | torch.Tensor,
    embedding_dim: int,
    *,
    technique: str | None = None,
    synthesis_rate: float | None = None,
    train_synthetic_fraction: float | None = None,
    cold_threshold: int = 1,
    init_std: float = 0.1,
    item_bias: bool = False,
    seed: int,
    **technique_options: Any,
) -> MatrixFactorization:
    """Matrix factorisation whose items are a :class:`SyntheticEmbeddingLayer`.

    Users keep a plain table (the data has no user side features). Items blend
    a stored row with a vector synthesized from their side features; items
    seen fewer than ``cold_threshold`` times in training (with the default 1:
    never) are served fully synthetic in evaluation, and in training a random
    ``train_synthetic_fraction`` of the items is served fully synthetic without
    its row, so the synthesizer learns to rank on its own (DropoutNet's idea).

    Args:
        num_users: number of user ids.
        side_features: ``(V, F)`` item side features; ``V`` is the number of items.
        embedding_dim: size ``D`` of user and item vectors.
        technique: a registered synthesis technique (None: the layer's default).
        synthesis_rate: the blend rate of warm items (None: the layer's default).
        train_synthetic_fraction: training-mode fraction of fully synthetic
            items (None: the layer's default).
        cold_threshold: evaluation-mode count below which items are fully synthetic.
        init_std: standard deviation of the initial user and item rows.
        item_bias: learn a bias per item (see :class:`MatrixFactorization`).
        seed: seed of the initialisation (and of manifold coordinates).
        technique_options: options of the technique.

    Returns:
        An untrained :class:`MatrixFactorization`.

    Example:
        >>> feats = torch.rand(20, 5)
        >>> mf = synthetic_mf(4, feats, 8, technique="combination", synthesis_rate=0.5, seed=0)
        >>> mf.score_matrix().shape
        (4, 20)
    """
    from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer

    side = torch.as_tensor(np.asarray(side_features), dtype=torch.float32)
    if side.dim() != 2:
        raise ShapeError(f"side_features must have shape (V, F); got {tuple(side.shape)}.")
    check_int("synthetic_mf", "num_users", num_users, 1)
    check_float("synthetic_mf", "init_std", init_std, 0.0, low_closed=False)
    if technique == "manifold":
        technique_options.setdefault("seed", seed)
    # Only what the caller set reaches the layer: None keeps the layer's defaults.
    given = {
        name: value
        for name, value in (
            ("technique", technique),
            ("synthesis_rate", synthesis_rate),
            ("train_synthetic_fraction", train_synthetic_fraction),
        )
        if value is not None
    }
    with seeded(seed):
        users = Embedding(num_users, embedding_dim)
        nn.init.normal_(users.weight, std=init_std)
        items = SyntheticEmbeddingLayer(
            int(side.shape[0]),
            embedding_dim,
            side_features=side,
            cold_threshold=cold_threshold,
            **given,
            **technique_options,
        )
        nn.init.normal_(items.weight, std=init_std)
    return MatrixFactorization(users, items, item_bias=item_bias)


def popularity_scores(
    train_pairs: np.ndarray, num_users: int, num_items: int, *, seed: int
) -> np.ndarray:
    """Popularity floor: every user gets each item's training count.

    Ties (e.g. among cold items, all zero) are broken by a seeded random
    perturbation smaller than one count, so a tie is a random order rather
    than the index order.

    Shape:
        ``(N, 2)`` pairs -> ``(num_users, num_items)`` float32 scores.
    """
    counts = np.bincount(np.asarray(train_pairs)[:, 1], minlength=num_items).astype(np.float64)
    jitter = np.random.default_rng(seed).random(num_items) * 0.5
    return np.broadcast_to((counts + jitter).astype(np.float32), (num_users, num_items)).copy()


def random_scores(num_users: int, num_items: int, *, seed: int) -> np.ndarray:
    """Random floor: independent uniform scores, ``(num_users, num_items)`` float32."""
    return np.random.default_rng(seed).random((num_users, num_items), dtype=np.float32)
