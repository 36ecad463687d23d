"""The 'subword' technique: a vocabulary-bound layer synthesizes words from their spelling."""

from __future__ import annotations

import pytest
import torch

import synthembed as se
import synthembed.synthesis.subword
from synthembed.errors import ConfigError
from synthembed.synthesis.subword import Subword

TOKENS = ["<pad>", "<unk>", "cat", "cats", "dog", "dogs", "catalog"]


def _layer(**kwargs: object) -> se.SyntheticEmbeddingLayer:
    torch.manual_seed(0)
    options = {"synthesis_rate": 1.0, "technique": "subword", "tokens": TOKENS, **kwargs}
    return se.SyntheticEmbeddingLayer(len(TOKENS), 8, **options)


def test_rate_one_serves_the_spelling_vectors() -> None:
    layer = _layer().eval()
    synth = layer.synthesizer
    assert isinstance(synth, Subword)
    ids = torch.tensor([[2, 3], [4, 6]])
    out = layer(ids)
    expected = synth.synthesize_tokens(["cat", "cats", "dog", "catalog"]).reshape(2, 2, 8)
    torch.testing.assert_close(out, expected)


def test_words_sharing_ngrams_share_gradient() -> None:
    layer = _layer()
    layer(torch.tensor([3])).sum().backward()  # "cats"
    grad = layer.synthesizer.model.weight.grad
    assert grad is not None
    touched = (
        set(grad.coalesce().indices()[0].tolist())
        if grad.is_sparse
        else set(grad.abs().sum(1).nonzero().flatten().tolist())
    )
    from synthembed.subwords import ngram_buckets

    assert set(ngram_buckets("cats", 1 << 18)) == touched


def test_save_and_load_round_trip(tmp_path) -> None:
    layer = _layer().eval()
    path = tmp_path / "words.safetensors"
    se.save(layer, path)
    loaded = se.load(path).eval()
    ids = torch.tensor([2, 5, 6])
    assert torch.equal(loaded(ids), layer(ids))
    assert loaded.synthesizer.tokens == TOKENS


def test_add_items_takes_the_new_words() -> None:
    layer = _layer().eval()
    ids = layer.add_items(num_items=2, tokens=["catdog", "dogcat"])
    assert ids.tolist() == [7, 8]
    torch.testing.assert_close(
        layer(ids), layer.synthesizer.synthesize_tokens(["catdog", "dogcat"])
    )


def test_unseen_word_gets_a_vector_not_unk() -> None:
    layer = _layer().eval()
    unseen = layer.synthesizer.synthesize_tokens(["catalogs"])
    unk = layer(torch.tensor([1]))
    assert not torch.allclose(unseen, unk)
    near = torch.nn.functional.cosine_similarity(unseen, layer(torch.tensor([6])))
    far = torch.nn.functional.cosine_similarity(unseen, layer(torch.tensor([4])))
    assert float(near.detach()) > float(
        far.detach()
    )  # "catalogs" shares most n-grams with "catalog"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tokens": None}, "technique_options=\\{'tokens': vocab.index_to_key\\}"),
        ({"tokens": ["a", "b"]}, "tokens has 2 words for a layer of 7 ids"),
        ({"tokens": "abc"}, "tokens must be a list of strings; got str"),
        ({"tokens": [1] * 7}, "tokens must be strings; got 1 \\(int\\)"),
    ],
)
def test_bad_tokens_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _layer(**kwargs)


def test_add_items_without_tokens_says_how() -> None:
    layer = _layer()
    with pytest.raises(ConfigError, match=r"add_items\(tokens=\[...\]\)"):
        layer.add_items(num_items=1)
    assert layer.num_embeddings == len(TOKENS)
