"""The founding document's ``RecommenderSystem``: user and item layers and a dot product.

Ratings come from a seeded low-rank model (users x items with 8 hidden
factors plus noise); the model learns them with a mean squared error. The
class is the founding document's, unchanged.

Run: ``python examples/founding_recommender.py``
"""

from __future__ import annotations

import torch
from torch import nn

from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer


class RecommenderSystem(nn.Module):
    """Score = dot product of a user's and an item's synthetic embeddings."""

    def __init__(self, num_users: int, num_items: int, embedding_dim: int) -> None:
        super().__init__()
        self.user_embedding = SyntheticEmbeddingLayer(num_users, embedding_dim)
        self.item_embedding = SyntheticEmbeddingLayer(num_items, embedding_dim)

    def forward(self, user_ids: torch.Tensor, item_ids: torch.Tensor) -> torch.Tensor:
        user_emb = self.user_embedding(user_ids)
        item_emb = self.item_embedding(item_ids)
        return torch.sum(user_emb * item_emb, dim=1)


def make_ratings(num_users: int, num_items: int, n: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Seeded ratings from 8 hidden factors plus noise: (user_ids, item_ids, ratings)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(num_users, 8, generator=g)
    v = torch.randn(num_items, 8, generator=g)
    users = torch.randint(0, num_users, (n,), generator=g)
    items = torch.randint(0, num_items, (n,), generator=g)
    ratings = (u[users] * v[items]).sum(1) / 8**0.5 + 0.1 * torch.randn(n, generator=g)
    return users, items, ratings


def main(quick: bool = False) -> dict[str, object]:
    """Train the recommender; returns the per-epoch training losses."""
    torch.manual_seed(0)
    num_users, num_items = 300, 500
    users, items, ratings = make_ratings(num_users, num_items, 4000 if quick else 20000)
    model = RecommenderSystem(num_users, num_items, embedding_dim=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(8 if quick else 30):
        order = torch.randperm(len(users))
        total = 0.0
        for start in range(0, len(order), 512):
            batch = order[start : start + 512]
            pred = model(users[batch], items[batch])
            loss = nn.functional.mse_loss(pred, ratings[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        losses.append(total / len(order))
    print(f"epoch MSE {losses[0]:.3f} -> {losses[-1]:.3f}")
    return {"losses": losses}


if __name__ == "__main__":
    main()
