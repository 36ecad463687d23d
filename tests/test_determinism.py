"""seed_everything: the same seed gives bit-identical training of every layer on the CPU.

Each case seeds, builds a layer (initialisation is random), draws random
training data (python ``random``, numpy and torch generators all used), trains a
few steps with Adam, and returns every parameter and buffer as raw bytes. Two
runs with one seed must match byte for byte; a run with another seed must not
(so the comparison can fail).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from synthembed.determinism import seed_everything
from synthembed.errors import ConfigError
from synthembed.layers.compressed import (
    DHEEmbedding,
    HashEmbedding,
    LowRankEmbedding,
    MixedDimEmbedding,
    QREmbedding,
)
from synthembed.layers.embedding import Embedding
from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer
from synthembed.layers.tabular import TabularEmbedding

V, D, STEPS, BATCH = 30, 8, 4, 16


def _fingerprint(module: nn.Module) -> dict[str, bytes]:
    out = {}
    for name, t in module.state_dict().items():
        c = t.detach().cpu().contiguous().reshape(-1)
        out[name] = c.view(torch.uint8).numpy().tobytes() if c.numel() else b""
    return out


def _train_ids(layer: nn.Module, *, sparse: bool = False) -> dict[str, bytes]:
    """A few Adam steps regressing random targets from random ids (both drawn after seeding)."""
    ids = torch.randint(0, V, (STEPS, BATCH))
    targets = torch.from_numpy(np.random.standard_normal((STEPS, BATCH, D)).astype(np.float32))
    order = list(range(STEPS))
    random.shuffle(order)  # python's generator takes part too
    params = [p for p in layer.parameters() if p.requires_grad]
    discriminator = (
        set(layer.discriminator_parameters())
        if isinstance(layer, SyntheticEmbeddingLayer) and layer.technique == "gan"
        else set()
    )
    main = [p for p in params if p not in discriminator]
    opt: torch.optim.Optimizer = (
        torch.optim.SparseAdam(main, lr=0.05) if sparse else torch.optim.Adam(main, lr=0.05)
    )
    opt_d = torch.optim.Adam(list(discriminator), lr=0.05) if discriminator else None
    layer.train()
    for step in order:
        out = layer(ids[step])
        loss = (out - targets[step]).pow(2).mean()
        extra = getattr(layer, "get_loss", None)
        if callable(extra):
            loss = loss + extra()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if opt_d is not None:
            assert isinstance(layer, SyntheticEmbeddingLayer)
            opt_d.zero_grad()
            layer.discriminator_loss().backward()
            opt_d.step()
    return _fingerprint(layer)


def _synthetic(technique: str) -> Callable[[], dict[str, bytes]]:
    def run() -> dict[str, bytes]:
        side = torch.rand(V, 5)
        layer = SyntheticEmbeddingLayer(
            V,
            D,
            synthesis_rate=0.3,
            technique=technique,
            side_features=side,
            train_synthetic_fraction=0.25,  # random per step: seeded too
        )
        return _train_ids(layer)

    return run


def _tabular() -> dict[str, bytes]:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(np.random.randint(0, 2**31))  # seeded through numpy's global
    n = 40
    frame = pd.DataFrame(
        {
            "city": rng.choice(["a", "b", "c", "d"], n),
            "age": rng.normal(40, 10, n),
            "tags": ["|".join(rng.choice(["x", "y", "z"], 2)) for _ in range(n)],
        }
    )
    layer = TabularEmbedding.from_frame(frame, embedding_dim=3, numerical_embedding="periodic")
    batch = layer.encode(frame)
    target = torch.randn(n, layer.output_dim)
    opt = torch.optim.Adam(layer.parameters(), lr=0.05)
    for _ in range(STEPS):
        loss = (layer(batch) - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return _fingerprint(layer)


CASES: dict[str, Callable[[], dict[str, bytes]]] = {
    "embedding": lambda: _train_ids(Embedding(V, D)),
    "embedding-sparse": lambda: _train_ids(Embedding(V, D, sparse=True), sparse=True),
    "embedding-max-norm": lambda: _train_ids(Embedding(V, D, padding_idx=0, max_norm=1.0)),
    "synthetic-combination": _synthetic("combination"),
    "synthetic-autoencoder": _synthetic("autoencoder"),
    "synthetic-gan": _synthetic("gan"),
    "synthetic-manifold": _synthetic("manifold"),
    "synthetic-qr-base": lambda: _train_ids(
        SyntheticEmbeddingLayer(V, D, synthesis_rate=0.5, base="qr")
    ),
    "hash": lambda: _train_ids(HashEmbedding(V, D, num_buckets=8)),
    "qr": lambda: _train_ids(QREmbedding(V, D)),
    "dhe": lambda: _train_ids(DHEEmbedding(V, D, num_hashes=16, hidden_dims=(16,))),
    "lowrank": lambda: _train_ids(LowRankEmbedding(V, D, rank=2)),
    "mixed": lambda: _train_ids(MixedDimEmbedding(V, D, counts=list(range(V, 0, -1)))),
    "tabular": _tabular,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_seed_same_training_bit_for_bit(case: str) -> None:
    seed_everything(1234)
    first = CASES[case]()
    seed_everything(1234)
    second = CASES[case]()
    assert first.keys() == second.keys()
    assert first == second
    seed_everything(99)
    other = CASES[case]()
    assert other != first  # the fingerprint really depends on the seed


def test_seed_everything_seeds_python_numpy_and_torch() -> None:
    seed_everything(7)
    a = (random.random(), float(np.random.rand()), torch.rand(1).item())
    seed_everything(7)
    b = (random.random(), float(np.random.rand()), torch.rand(1).item())
    seed_everything(8)
    c = (random.random(), float(np.random.rand()), torch.rand(1).item())
    assert a == b
    assert all(x != y for x, y in zip(a, c))


def test_seed_everything_returns_nothing() -> None:
    assert seed_everything(0) is None  # type: ignore[func-returns-value]


def test_seed_everything_deterministic_algorithms_flag() -> None:
    before = torch.are_deterministic_algorithms_enabled()
    try:
        seed_everything(0, deterministic_algorithms=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(before)


@pytest.mark.parametrize(
    ("seed", "match"),
    [
        (-1, r"'seed' parameter of seed_everything must be an int in the range \[0, 4294967295\]"),
        (2**32, r"Got 4294967296 instead"),
        (1.5, r"Got 1.5 instead"),
        (True, r"Got True instead"),
        ("1", r"Got '1' instead"),
    ],
)
def test_seed_everything_rejects_bad_seeds(seed: object, match: str) -> None:
    state = torch.random.get_rng_state()
    with pytest.raises(ConfigError, match=match):
        seed_everything(seed)  # type: ignore[arg-type]
    assert torch.equal(torch.random.get_rng_state(), state)


def test_seed_everything_rejects_non_bool_flag() -> None:
    with pytest.raises(ConfigError, match=r"'deterministic_algorithms'.*must be a bool"):
        seed_everything(0, deterministic_algorithms=1)  # type: ignore[arg-type]
