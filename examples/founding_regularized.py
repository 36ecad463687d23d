"""The founding document's ``RegularizedSyntheticEmbedding``: an L2 term read with ``get_loss()``.

The subclass computes ``l2_lambda * sum(embeddings ** 2)`` in ``forward`` and
returns it from ``get_loss()``, which the training loop adds to the task loss.
Everything else is the founding document's loop.

Run: ``python examples/founding_regularized.py``
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer


class RegularizedSyntheticEmbedding(SyntheticEmbeddingLayer):
    """A synthetic embedding with an L2 penalty on its outputs."""

    def __init__(self, *args: Any, l2_lambda: float = 0.01, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.l2_lambda = l2_lambda

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        embeddings = super().forward(x)
        self.l2_loss = self.l2_lambda * torch.sum(embeddings**2)
        return embeddings

    def get_loss(self) -> torch.Tensor:
        return self.l2_loss


def main(quick: bool = False) -> dict[str, object]:
    """Train a regression of 8 targets per id; returns the total losses and the L2 terms."""
    torch.manual_seed(0)
    model = RegularizedSyntheticEmbedding(input_dim=1000, embedding_dim=128, l2_lambda=1e-4)
    head = nn.Linear(128, 8)
    targets_by_id = torch.randn(1000, 8)
    criterion = nn.MSELoss()
    optimizer = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=0.01)
    num_epochs = 3 if quick else 10
    dataloader = [torch.randint(0, 1000, (128,)) for _ in range(10 if quick else 30)]
    losses, l2_terms = [], []
    for _ in range(num_epochs):
        for batch in dataloader:
            optimizer.zero_grad()
            output = head(model(batch))
            loss = criterion(output, targets_by_id[batch]) + model.get_loss()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            l2_terms.append(model.get_loss().item())
    print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    return {"losses": losses, "l2": l2_terms}


if __name__ == "__main__":
    main()
