"""A vocabulary-bound synthetic layer spells words it never saw instead of serving <unk>."""

from __future__ import annotations

import pytest
import torch

import synthembed as se
from synthembed.errors import ConfigError
from synthembed.layers.token_lookup import lookup_tokens

SENTENCES = [["the", "cat", "sat"], ["the", "cats", "ran"]]


def _layer(vocab: se.Vocabulary, technique: str = "subword") -> se.SyntheticEmbeddingLayer:
    torch.manual_seed(0)
    options = {"tokens": vocab.index_to_key} if technique == "subword" else {}
    return se.SyntheticEmbeddingLayer(
        len(vocab), 8, technique=technique, synthesis_rate=0.5, **options
    ).eval()


def test_shapes_follow_the_tokens() -> None:
    vocab = se.Vocabulary.build(SENTENCES)
    layer = _layer(vocab)
    assert lookup_tokens(layer, vocab, "cat").shape == (8,)
    assert lookup_tokens(layer, vocab, ["cat", "sat", "zzz"]).shape == (3, 8)
    assert lookup_tokens(layer, vocab, [["cat"], ["the", "cats"]]).shape == (2, 2, 8)


def test_known_words_are_the_layer_output() -> None:
    vocab = se.Vocabulary.build(SENTENCES)
    layer = _layer(vocab)
    ids = torch.tensor([vocab["cat"], vocab["ran"]])
    torch.testing.assert_close(lookup_tokens(layer, vocab, ["cat", "ran"]), layer(ids))


def test_unseen_word_is_spelled_not_unk() -> None:
    vocab = se.Vocabulary.build(SENTENCES)
    layer = _layer(vocab)
    spelled = layer.synthesizer.synthesize_tokens(["catz"])[0]
    out = lookup_tokens(layer, vocab, [["the", "catz"], ["catz"]])
    torch.testing.assert_close(out[0, 1], spelled)
    torch.testing.assert_close(out[1, 0], spelled)
    torch.testing.assert_close(out[1, 1], layer(torch.tensor(vocab.pad_id)))  # padding
    torch.testing.assert_close(lookup_tokens(layer, vocab, "catz"), spelled)
    assert not torch.allclose(spelled, layer(torch.tensor(vocab.unk_id)))


def test_spelling_trains() -> None:
    vocab = se.Vocabulary.build(SENTENCES)
    layer = _layer(vocab).train()
    lookup_tokens(layer, vocab, ["catz"]).sum().backward()
    grad = layer.synthesizer.model.weight.grad
    assert grad is not None and float(grad.abs().sum()) > 0


def test_oov_error_vocabulary_still_spells() -> None:
    vocab = se.Vocabulary.build(SENTENCES, oov="error")
    layer = _layer(vocab)
    out = lookup_tokens(layer, vocab, ["cat", "dogz"])
    torch.testing.assert_close(out[1], layer.synthesizer.synthesize_tokens(["dogz"])[0])


def test_other_techniques_follow_the_oov_policy() -> None:
    vocab = se.Vocabulary.build(SENTENCES)
    layer = _layer(vocab, technique="combination")
    torch.testing.assert_close(
        lookup_tokens(layer, vocab, ["zzz"])[0], layer(torch.tensor(vocab.unk_id))
    )
    strict = se.Vocabulary.build(SENTENCES, oov="error")
    with pytest.raises(se.UnknownTokenError, match="'zzz' is not in the vocabulary"):
        lookup_tokens(_layer(strict, technique="combination"), strict, ["zzz"])


def test_no_vocabulary_says_how() -> None:
    vocab = se.Vocabulary.build(SENTENCES)
    with pytest.raises(ConfigError, match=r"vocab=Vocabulary.build\(...\)"):
        lookup_tokens(_layer(vocab), None, ["cat"])


def test_bound_vocabulary_sets_sizes_and_words() -> None:
    vocab = se.Vocabulary.build(SENTENCES)
    layer = se.SyntheticEmbeddingLayer(embedding_dim=8, vocab=vocab, technique="subword").eval()
    assert layer.num_embeddings == len(vocab)
    assert layer.padding_idx == vocab.pad_id
    assert layer.synthesizer.tokens == [str(t) for t in vocab.index_to_key]
    spelled = layer.synthesizer.synthesize_tokens(["catz"])[0]
    torch.testing.assert_close(layer.lookup(["the", "catz"])[1], spelled)
    torch.testing.assert_close(layer.lookup("cat"), layer(torch.tensor(vocab["cat"])))


def test_add_items_with_tokens_grows_the_vocabulary_in_step() -> None:
    vocab = se.Vocabulary.build(SENTENCES)
    layer = se.SyntheticEmbeddingLayer(embedding_dim=8, vocab=vocab, technique="subword").eval()
    ids = layer.add_items(tokens=["catnap", "dogs"])
    assert ids.tolist() == [vocab["catnap"], vocab["dogs"]] == [len(vocab) - 2, len(vocab) - 1]
    torch.testing.assert_close(layer.lookup(["catnap"]), layer(ids[:1]))
    with pytest.raises(ConfigError, match=r"already in the vocabulary: \['cat'\]"):
        layer.add_items(tokens=["cat"])
    assert layer.num_embeddings == len(vocab)


def test_bound_layer_saves_its_vocabulary(tmp_path) -> None:
    vocab = se.Vocabulary.build(SENTENCES)
    layer = se.SyntheticEmbeddingLayer(embedding_dim=8, vocab=vocab, technique="subword").eval()
    se.save(layer, tmp_path / "words.safetensors")
    loaded = se.load(tmp_path / "words.safetensors").eval()
    assert loaded.vocab == vocab
    assert torch.equal(loaded.lookup(["cat", "catz"]), layer.lookup(["cat", "catz"]))


def test_vocabulary_larger_than_the_layer_is_refused() -> None:
    vocab = se.Vocabulary.build(SENTENCES)
    with pytest.raises(ConfigError, match=f"has {len(vocab)} ids but num_embeddings=3"):
        se.SyntheticEmbeddingLayer(3, 8, vocab=vocab)
