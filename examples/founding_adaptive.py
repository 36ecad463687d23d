"""The founding document's ``AdaptiveSyntheticEmbedding``: a learnable synthesis rate.

The subclass holds ``self.synthesis_rate = nn.Parameter(torch.tensor(0.1))`` and
passes ``torch.sigmoid(self.synthesis_rate)`` to ``super().forward``; the rate
is a 0-d tensor that requires grad, so the parameter learns with the rest.
(Built-in alternative: ``SyntheticEmbeddingLayer(..., adaptive=True)``.)

Run: ``python examples/founding_adaptive.py``
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer


class AdaptiveSyntheticEmbedding(SyntheticEmbeddingLayer):
    """A synthetic embedding whose blend rate is a trained parameter."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.synthesis_rate = nn.Parameter(torch.tensor(0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        synthesis_rate = torch.sigmoid(self.synthesis_rate)
        return super().forward(x, synthesis_rate=synthesis_rate)


def main(quick: bool = False) -> dict[str, object]:
    """Train on id % 10 labels; returns losses, the rate's history and its first gradient."""
    torch.manual_seed(0)
    adaptive_embedding = AdaptiveSyntheticEmbedding(input_dim=1000, embedding_dim=128)
    head = nn.Linear(128, 10)
    optimizer = torch.optim.Adam([*adaptive_embedding.parameters(), *head.parameters()], lr=0.01)
    losses, rates = [], []
    first_grad = None
    for _ in range(30 if quick else 200):
        ids = torch.randint(0, 1000, (256,))
        loss = nn.functional.cross_entropy(head(adaptive_embedding(ids)), ids % 10)
        optimizer.zero_grad()
        loss.backward()
        if first_grad is None:
            first_grad = float(adaptive_embedding.synthesis_rate.grad)  # type: ignore[arg-type]
        optimizer.step()
        losses.append(loss.item())
        rates.append(torch.sigmoid(adaptive_embedding.synthesis_rate).item())
    print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}; rate {rates[0]:.3f} -> {rates[-1]:.3f}")
    return {"losses": losses, "rates": rates, "rate_grad": first_grad}


if __name__ == "__main__":
    main()
