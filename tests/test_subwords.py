"""synthembed.subwords: fastText n-grams and buckets, the subword model and its fitting."""

from __future__ import annotations

import pytest
import torch

from synthembed.errors import ConfigError
from synthembed.subwords import SubwordEmbedding, char_ngrams, fnv1a, ngram_bags, ngram_buckets


def test_char_ngrams_in_fasttext_order() -> None:
    assert char_ngrams("where", 3, 3) == ["<wh", "whe", "her", "ere", "re>"]
    assert char_ngrams("ab", 1, 2) == ["<a", "a", "ab", "b", "b>"]
    assert char_ngrams("", 3, 6) == []
    # characters, not bytes: a multi-byte character is never split
    assert char_ngrams("né", 3, 3) == ["<né", "né>"]


@pytest.mark.parametrize("word", ["where", "naïve", "日本語テキスト", "ab", "", "<unk>"])
def test_buckets_equal_gensims_fasttext(word: str) -> None:
    fasttext = pytest.importorskip("gensim.models.fasttext")
    expected = list(fasttext.ft_ngram_hashes(word, 3, 6, 2_000_000))
    assert ngram_buckets(word, 2_000_000, 3, 6) == expected


def test_fnv1a_sign_extends_bytes_like_fasttext() -> None:
    fasttext = pytest.importorskip("gensim.models.fasttext")
    for text in ["<wh", "é", "日本", ""]:
        assert fnv1a(text) == fasttext.ft_hash_bytes(text.encode("utf-8"))
    assert fnv1a("") == 2166136261


def test_ngram_bags_flattens_with_offsets() -> None:
    flat, offsets = ngram_bags(["cat", "", "dog"], 1000, 3, 3)
    assert offsets.tolist() == [0, 3, 3, 6]
    assert flat[:3].tolist() == ngram_buckets("cat", 1000, 3, 3)
    assert flat[3:].tolist() == ngram_buckets("dog", 1000, 3, 3)
    with pytest.raises(ConfigError, match="got one string"):
        ngram_bags("cat", 1000)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_n": 0}, "1 <= min_n <= max_n; got min_n=0, max_n=6"),
        ({"min_n": 4, "max_n": 3}, "got min_n=4, max_n=3"),
        ({"num_buckets": 0}, "num_buckets must be a positive int; got 0"),
        ({"embedding_dim": 0}, "embedding_dim must be a positive int; got 0"),
    ],
)
def test_bad_settings_are_named(kwargs: dict[str, int], message: str) -> None:
    settings = {"embedding_dim": 4, **kwargs}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        SubwordEmbedding(0, **settings)


def test_forward_is_the_mean_of_ngram_rows() -> None:
    emb = SubwordEmbedding(0, 6, num_buckets=97, seed=1)
    out = emb(["cats", "x"])
    for row, word in zip(out, ["cats", "x"], strict=True):
        rows = emb.weight[ngram_buckets(word, 97)]
        torch.testing.assert_close(row, rows.mean(0))
    assert out.shape == (2, 6)
    with pytest.raises(ConfigError, match="got the string 'cats'"):
        emb("cats")


def test_seed_fixes_the_table() -> None:
    a = SubwordEmbedding(0, 4, num_buckets=50, seed=3)
    b = SubwordEmbedding(0, 4, num_buckets=50, seed=3)
    assert torch.equal(a.weight, b.weight)


def _toy_vectors() -> tuple[list[str], torch.Tensor]:
    """Words whose vectors are a sum of a stem's and a suffix's: spelling predicts them."""
    gen = torch.Generator().manual_seed(0)
    stems = ["walk", "talk", "jump", "play", "climb", "paint", "cook", "clean"]
    suffixes = ["", "s", "ed", "ing"]
    stem_vec = {s: torch.randn(8, generator=gen) for s in stems}
    suffix_vec = {s: torch.randn(8, generator=gen) for s in suffixes}
    words = [s + x for s in stems for x in suffixes]
    vecs = torch.stack([stem_vec[s] + suffix_vec[x] for s in stems for x in suffixes])
    return words, vecs


def test_fit_to_reproduces_training_words_and_generalises() -> None:
    words, vecs = _toy_vectors()
    held_out = [i for i, w in enumerate(words) if w == "cooking"]
    train = [i for i in range(len(words)) if i not in held_out]
    emb = SubwordEmbedding(0, 8, num_buckets=4096, seed=0)
    with torch.no_grad():
        before = torch.nn.functional.cosine_similarity(emb([words[i] for i in train]), vecs[train])
    emb.fit_to([words[i] for i in train], vecs[train], epochs=60, lr=0.1, seed=0)
    with torch.no_grad():
        fitted = torch.nn.functional.cosine_similarity(emb([words[i] for i in train]), vecs[train])
        unseen = torch.nn.functional.cosine_similarity(emb(["cooking"]), vecs[held_out])
    assert float(before.mean()) < 0.3
    assert float(fitted.mean()) > 0.95
    assert float(unseen) > 0.5  # "cook" and "-ing" were seen, in other words
    assert emb.num_embeddings == len(train)


def test_fit_to_checks_before_changing_anything() -> None:
    emb = SubwordEmbedding(0, 4, num_buckets=64, seed=0)
    saved = emb.weight.detach().clone()
    with pytest.raises(ConfigError, match=r"shape \(2, 4\) for 2 words; got \(2, 3\)"):
        emb.fit_to(["a", "b"], torch.zeros(2, 3))
    with pytest.raises(ConfigError, match="loss must be 'mse' or 'cosine'; got 'l1'"):
        emb.fit_to(["a", "b"], torch.zeros(2, 4), loss="l1")
    with pytest.raises(ConfigError, match="init must be 'average' or 'keep'; got 'zero'"):
        emb.fit_to(["a", "b"], torch.zeros(2, 4), init="zero")
    with pytest.raises(ConfigError, match="epochs must be a positive int; got 0"):
        emb.fit_to(["a", "b"], torch.zeros(2, 4), epochs=0)
    assert torch.equal(emb.weight, saved)


def test_average_init_answers_before_training() -> None:
    words, vecs = _toy_vectors()
    emb = SubwordEmbedding(0, 8, num_buckets=4096, seed=0)
    emb.fit_to(words, vecs, epochs=1, lr=1e-9)  # (almost) the closed-form start alone
    with torch.no_grad():
        close = torch.nn.functional.cosine_similarity(emb(words), vecs).mean()
    assert float(close) > 0.6


def test_buckets_are_stable_across_processes() -> None:
    import os
    import subprocess
    import sys

    code = (
        "from synthembed.subwords import ngram_buckets; print(ngram_buckets('naïveté', 2_000_000))"
    )
    outs = set()
    for seed in ("0", "1", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outs.add(done.stdout.strip())
    assert outs == {str(ngram_buckets("naïveté", 2_000_000))}


def test_unseen_words_get_distinct_vectors_that_depend_only_on_spelling() -> None:
    emb = SubwordEmbedding(0, 8, num_buckets=4096, seed=0)
    with torch.no_grad():
        alone = emb(["zorblat"])
        in_batch = emb(["quux", "zorblat", "florp"])
    torch.testing.assert_close(in_batch[1], alone[0])  # the same spelling, the same vector
    assert not torch.allclose(in_batch[0], in_batch[2])
    assert not torch.allclose(in_batch[0], in_batch[1])


def test_mimicking_beats_the_unk_baseline_on_held_out_words() -> None:
    words, vecs = _toy_vectors()
    held = [i for i, w in enumerate(words) if w.endswith("ing") and w.startswith(("walk", "cook"))]
    train = [i for i in range(len(words)) if i not in held]
    emb = SubwordEmbedding(0, 8, num_buckets=4096, seed=0)
    emb.fit_to([words[i] for i in train], vecs[train], seed=0)
    with torch.no_grad():
        guess = emb([words[i] for i in held])
    unk = vecs[train].mean(0).expand_as(guess)  # what <unk> would serve: the mean vector
    ours = (guess - vecs[held]).pow(2).sum(1).mean()
    baseline = (unk - vecs[held]).pow(2).sum(1).mean()
    assert float(ours) < 0.75 * float(baseline)  # measured 0.59x
