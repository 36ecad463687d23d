"""The founding document's usage example, plus a short training loop.

Builds ``SyntheticEmbeddingLayer(input_dim=1000, embedding_dim=128,
synthesis_rate=0.1)``, runs the documented forward on
``torch.randint(0, 1000, (1, 10))``, then trains the layer with a linear head
to predict a label of each id (``id % 10``) and returns the losses.

Run: ``python examples/founding_usage.py``
"""

from __future__ import annotations

import torch
from torch import nn

from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer


def main(quick: bool = False) -> dict[str, object]:
    """Run the example; ``quick`` trains for fewer steps. Returns the output shape and losses."""
    torch.manual_seed(0)
    # Initialize a Synthetic Embedding layer (as in the founding document).
    synthetic_embedding_layer = SyntheticEmbeddingLayer(
        input_dim=1000, embedding_dim=128, synthesis_rate=0.1
    )
    input_tensor = torch.randint(0, 1000, (1, 10))
    output = synthetic_embedding_layer.forward(input_tensor)
    print("Output from Synthetic Embedding layer:", tuple(output.shape))

    # A short training loop: predict id % 10 from the embedding.
    head = nn.Linear(128, 10)
    params = [*synthetic_embedding_layer.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(params, lr=0.01)
    losses = []
    for _ in range(30 if quick else 200):
        ids = torch.randint(0, 1000, (256,))
        loss = nn.functional.cross_entropy(head(synthetic_embedding_layer(ids)), ids % 10)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    return {"output_shape": tuple(output.shape), "losses": losses}


if __name__ == "__main__":
    main()
