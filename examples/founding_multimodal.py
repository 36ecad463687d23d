"""The founding document's ``MultiModalSyntheticEmbedding``: text ids + 2048-d image features.

The image layer is ``SyntheticEmbeddingLayer(2048, 256)`` applied to float
feature vectors: a soft lookup ``x @ W`` (an id is a one-hot row, so a feature
vector is a weighted mix of rows), with the synthesizer working on the
soft-looked-up row. Features are scaled to unit norm first: the soft lookup
sums 2048 rows, and unscaled CNN features would give huge activations.

The data are seeded stand-ins for (caption word, image feature) pairs of 10
classes; a linear head predicts the class from the concatenated embedding.

Run: ``python examples/founding_multimodal.py``
"""

from __future__ import annotations

import torch
from torch import nn

from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer


class MultiModalSyntheticEmbedding(nn.Module):
    """Concatenate a text-id embedding and an image-feature embedding."""

    def __init__(self, text_vocab_size: int, image_feature_size: int, embedding_dim: int) -> None:
        super().__init__()
        self.text_embedding = SyntheticEmbeddingLayer(text_vocab_size, embedding_dim)
        self.image_embedding = SyntheticEmbeddingLayer(image_feature_size, embedding_dim)

    def forward(self, text_input: torch.Tensor, image_input: torch.Tensor) -> torch.Tensor:
        text_emb = self.text_embedding(text_input)
        image_emb = self.image_embedding(image_input)
        return torch.cat([text_emb, image_emb], dim=-1)


def make_pairs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Seeded (text id, unit-norm 2048-d image feature, class) triples of 10 classes."""
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.relu(torch.randn(10, 2048, generator=g))
    labels = torch.randint(0, 10, (n,), generator=g)
    # Each class owns 1000 of the 10,000 words; captions use one of them.
    text = labels * 1000 + torch.randint(0, 1000, (n,), generator=g)
    images = torch.relu(prototypes[labels] + 1.5 * torch.randn(n, 2048, generator=g))
    images = images / images.norm(dim=1, keepdim=True)
    return text, images, labels


def main(quick: bool = False) -> dict[str, object]:
    """Train the multi-modal embedding with a linear head; returns the losses."""
    torch.manual_seed(0)
    multi_modal_emb = MultiModalSyntheticEmbedding(
        text_vocab_size=10000, image_feature_size=2048, embedding_dim=256
    )
    head = nn.Linear(512, 10)
    optimizer = torch.optim.Adam([*multi_modal_emb.parameters(), *head.parameters()], lr=0.005)
    text, images, labels = make_pairs(512 if quick else 4096)
    losses = []
    for _ in range(15 if quick else 60):
        batch = torch.randint(0, len(labels), (128,))
        joint = multi_modal_emb(text[batch], images[batch])  # (128, 512)
        loss = nn.functional.cross_entropy(head(joint), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    print(f"joint embedding {tuple(joint.shape)}; loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    return {"joint_shape": tuple(joint.shape), "losses": losses}


if __name__ == "__main__":
    main()
