"""Tests for synthembed.viz: 2-D maps, weight heatmaps, projector export."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

from synthembed.errors import ConfigError, MissingDependencyError, NonFiniteError, ShapeError
from synthembed.layers.embedding import Embedding
from synthembed.viz import export_projector, plot_embeddings, plot_weights, reduce_2d

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def one_thread():
    """t-SNE's OpenMP threads spin for seconds on a busy shared machine; one is plenty here."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1):
        yield


def clusters(n_per: int = 15, dim: int = 6, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=5.0, size=(3, dim))
    x = np.concatenate([c + rng.normal(size=(n_per, dim)) for c in centres])
    return x, [i // n_per for i in range(3 * n_per)]


def test_plot_embeddings_writes_png_with_legend(tmp_path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    x, labels = clusters()
    target = tmp_path / "map.png"
    open_figures = plt.get_fignums()
    fig = plot_embeddings(x, labels, path=target)
    assert plt.get_fignums() == open_figures  # pyplot's global state is untouched
    assert isinstance(fig.canvas, FigureCanvasAgg)
    data = target.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5_000
    ax = fig.axes[0]
    assert ax.get_title() == "PCA of 45 embeddings"
    assert ax.get_xlabel().startswith("PC1 (") and ax.get_xlabel().endswith("% of variance)")
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["0", "1", "2"]
    assert [p.name for p in tmp_path.iterdir()] == ["map.png"]  # no temporary left behind


def test_pca_coordinates_are_the_principal_axes() -> None:
    decomposition = pytest.importorskip("sklearn.decomposition")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3)) * np.array([5.0, 1.0, 0.1]) + 3.0
    coords = reduce_2d(x)
    assert coords.shape == (200, 2)
    reference = decomposition.PCA(n_components=2).fit_transform(x)
    # The same axes as scikit-learn's PCA, up to each axis' sign.
    np.testing.assert_allclose(np.abs(coords), np.abs(reference), atol=1e-9)
    np.testing.assert_allclose(coords.mean(0), 0.0, atol=1e-9)
    assert coords[:, 0].var() > 20 * coords[:, 1].var()
    np.testing.assert_array_equal(reduce_2d(torch.from_numpy(x)), coords)  # deterministic


def test_tsne_svg_with_annotations(tmp_path) -> None:
    x, labels = clusters(n_per=8)
    words = [f"w{i}" for i in range(len(x))]
    target = tmp_path / "words.svg"
    fig = plot_embeddings(x, labels, method="tsne", annotate=words, path=target, title="words")
    text = target.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    ax = fig.axes[0]
    assert ax.get_title() == "words" and ax.get_xlabel() == "t-SNE 1"
    assert sorted(t.get_text() for t in ax.texts) == sorted(words)
    # annotate=True writes the labels; '' leaves a point blank.
    fig = plot_embeddings(x, labels, annotate=True)
    assert len(fig.axes[0].texts) == len(x)
    fig = plot_embeddings(x, annotate=["a"] + [""] * (len(x) - 1))
    assert [t.get_text() for t in fig.axes[0].texts] == ["a"]


def test_many_numeric_labels_get_a_colour_bar() -> None:
    x = np.random.default_rng(0).normal(size=(60, 4))
    fig = plot_embeddings(x, labels=np.linspace(0, 1, 60))
    assert len(fig.axes) == 2  # the map and its colour bar
    assert fig.axes[0].get_legend() is None


def test_umap_goes_through_umap_learn(monkeypatch) -> None:
    calls: dict[str, object] = {}

    class FakeUMAP:
        def __init__(self, **kwargs: object) -> None:
            calls.update(kwargs)

        def fit_transform(self, x: np.ndarray) -> np.ndarray:
            return x[:, :2] * 2

    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=FakeUMAP))
    x, labels = clusters(n_per=4)
    fig = plot_embeddings(x, labels, method="umap", seed=7)
    assert calls == {"n_components": 2, "n_neighbors": 11, "random_state": 7}
    offsets = fig.axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(offsets, x[:4, :2] * 2)


def test_umap_missing_dependency_message(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "umap", None)  # makes `import umap` fail
    with pytest.raises(MissingDependencyError, match=r"needs the optional dependency 'umap'"):
        plot_embeddings(np.random.rand(10, 3), method="umap")


def test_plot_embeddings_errors(tmp_path) -> None:
    x, labels = clusters(n_per=3)
    with pytest.raises(
        ConfigError,
        match=r"'method' parameter of plot_embeddings must be one of 'pca', 'tsne', 'umap'\. Got 'mds'",
    ):
        plot_embeddings(x, method="mds")  # type: ignore[arg-type]
    with pytest.raises(
        ConfigError,
        match=r"'path' parameter of plot_embeddings must end in one of \.png, \.svg, \.pdf\. Got '.*map\.jpg'",
    ):
        plot_embeddings(x, path=tmp_path / "map.jpg")
    with pytest.raises(ShapeError, match="got 8 labels for 9 vectors"):
        plot_embeddings(x, labels[:-1])
    with pytest.raises(ShapeError, match=r"shape \(N, D\); got \(9,\)"):
        plot_embeddings(x[:, 0])
    bad = x.copy()
    bad[0, 0] = np.inf
    with pytest.raises(NonFiniteError, match="1 infinite"):
        plot_embeddings(bad)
    with pytest.raises(ShapeError, match="method='tsne' needs at least 3 vectors; got 2"):
        plot_embeddings(x[:2], method="tsne")
    with pytest.raises(ConfigError, match="annotate=True without labels"):
        plot_embeddings(x, annotate=True)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        plot_embeddings(x, path=tmp_path / "missing" / "a.png")
    assert list(tmp_path.iterdir()) == []


def test_too_many_annotations_warn() -> None:
    x = np.random.default_rng(0).normal(size=(301, 2))
    with pytest.warns(UserWarning, match="annotating 301 points"):
        plot_embeddings(x, annotate=[str(i) for i in range(301)])


def test_plot_weights_heatmap(tmp_path) -> None:
    torch.manual_seed(0)
    layer = nn.Embedding(1000, 50)
    target = tmp_path / "weights.png"
    fig = plot_weights(layer, rows=100, path=target)
    assert target.read_bytes().startswith(PNG_MAGIC) and target.stat().st_size > 5_000
    ax = fig.axes[0]
    image = ax.images[0].get_array()
    assert image.shape == (100, 50)
    np.testing.assert_allclose(np.asarray(image), layer.weight.detach()[:100].double().numpy())
    assert ax.get_title() == "Embedding weights: rows 0-99 of 1000, 50 dims"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Embedding dimension", "Row (id)")
    # synthembed's own Embedding, a raw tensor, and rows=None.
    ours = Embedding(7, 3)
    assert plot_weights(ours).axes[0].images[0].get_array().shape == (7, 3)
    assert plot_weights(torch.ones(4, 2), rows=None).axes[0].images[0].get_array().shape == (4, 2)


def test_plot_weights_errors() -> None:
    with pytest.raises(ShapeError, match="got a ReLU without a 'weight' tensor"):
        plot_weights(nn.ReLU())
    with pytest.raises(
        ConfigError,
        match=r"'rows' parameter of plot_weights must be an int or None in the range \[1, inf\)\. Got 0",
    ):
        plot_weights(torch.ones(3, 3), rows=0)
    with pytest.raises(ShapeError, match=r"shape \(N, D\); got \(3, 4, 4\)"):
        plot_weights(nn.Conv2d(3, 2, 4).weight[0])
    with pytest.raises(ConfigError, match=r"'cmap' parameter.*Got 'nope'"):
        plot_weights(torch.ones(3, 3), cmap="nope")


def test_export_projector_single_column_parses_back(tmp_path) -> None:
    vectors = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    labels = ["cat", "dog", "a\tb", "new\nline", "fish"]
    vec_path, meta_path = export_projector(vectors, labels, tmp_path / "proj")
    assert vec_path.name == "vectors.tsv" and meta_path is not None
    back = np.loadtxt(vec_path, delimiter="\t", dtype=np.float32)
    np.testing.assert_array_equal(back, vectors.numpy())  # float32 round-trips exactly
    lines = vec_path.read_text().splitlines()
    assert len(lines) == 5 and all(len(line.split("\t")) == 4 for line in lines)
    # One column: no header line; tabs/newlines inside cells become spaces.
    assert meta_path.read_text().splitlines() == ["cat", "dog", "a b", "new line", "fish"]


def test_export_projector_multi_column_and_no_metadata(tmp_path) -> None:
    vectors = np.arange(6, dtype=np.float64).reshape(3, 2) / 7
    _, meta = export_projector(vectors, {"word": ["x", "y", "z"], "count": [3, 1, 2]}, tmp_path)
    assert meta is not None
    assert meta.read_text().splitlines() == ["word\tcount", "x\t3", "y\t1", "z\t2"]
    pd = pytest.importorskip("pandas")
    _, meta = export_projector(vectors, pd.DataFrame({"a": [1, 2, 3], "b": list("pqr")}), tmp_path)
    assert meta is not None and meta.read_text().splitlines()[0] == "a\tb"
    vec, none = export_projector(vectors, None, tmp_path / "bare")
    assert none is None and not (tmp_path / "bare" / "metadata.tsv").exists()
    np.testing.assert_allclose(np.loadtxt(vec, delimiter="\t"), vectors, rtol=1e-7)


def test_export_projector_errors(tmp_path) -> None:
    with pytest.raises(ShapeError, match="got 2 metadata values for 3 vectors"):
        export_projector(np.ones((3, 2)), ["a", "b"], tmp_path)
    with pytest.raises(ShapeError, match="got 2 values in metadata column 'w' for 3 vectors"):
        export_projector(np.ones((3, 2)), {"w": ["a", "b"]}, tmp_path)
    with pytest.raises(NonFiniteError, match="1 NaN"):
        export_projector(np.array([[1.0, np.nan]]), None, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_pca_is_scikit_learns_with_a_fixed_sign_and_degenerate_inputs() -> None:
    pytest.importorskip("sklearn.decomposition")
    from synthembed.viz import _reduce

    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 4)) * np.array([3.0, 1.0, 0.5, 0.1])
    coords, labels = _reduce(x, "pca", 0, "test")
    assert labels[0].startswith("PC1 (") and "% of variance" in labels[1]
    # Largest loading of each axis positive: flipping the data's sign flips the picture.
    np.testing.assert_allclose(reduce_2d(-x), -coords, atol=1e-9)
    assert reduce_2d(x[:1]).tolist() == [[0.0, 0.0]]  # one row: no axis
    assert reduce_2d(np.ones((4, 3))).tolist() == [[0.0, 0.0]] * 4  # no variance
    one_feature = reduce_2d(np.array([[1.0], [3.0]]))
    np.testing.assert_allclose(one_feature, [[-1.0, 0.0], [1.0, 0.0]])


def test_dense_annotations_are_thinned_to_a_readable_subset() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(250, 5))
    words = [f"word{i}" for i in range(250)]
    fig = plot_embeddings(x, annotate=words)  # "auto": past 50 labels, no overlaps
    drawn = [t.get_text() for t in fig.axes[0].texts]
    assert 10 < len(drawn) < 250
    assert drawn[0] == "word0"  # the first listed (most important) points win
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [t.get_window_extent(renderer) for t in fig.axes[0].texts]
    overlaps = sum(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert overlaps <= len(boxes) // 20  # the estimate of a label's size is close, not exact
    everything = plot_embeddings(x[:60], annotate=words[:60], declutter=False)
    assert len(everything.axes[0].texts) == 60
    with pytest.raises(ConfigError, match="declutter"):
        plot_embeddings(x, declutter="some")  # type: ignore[arg-type]


def test_colour_bar_and_legend_are_titled_by_the_labels_name() -> None:
    x = np.random.default_rng(0).normal(size=(60, 4))
    fig = plot_embeddings(x, labels=np.linspace(0, 1, 60), label_name="year")
    assert fig.axes[1].get_ylabel() == "year"
    pd = pytest.importorskip("pandas")
    fig = plot_embeddings(x, labels=pd.Series(["a", "b"] * 30, name="genre"))
    assert fig.axes[0].get_legend().get_title().get_text() == "genre"


def test_heatmap_rows_are_labelled_with_tokens() -> None:
    from synthembed import Embedding, Vocabulary

    vocab = Vocabulary.build([["the", "cat", "sat"]])
    fig = plot_weights(Embedding(vocab=vocab, embedding_dim=8), rows=None)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "<pad> (0)", "<unk> (1)", "the (2)", "cat (3)", "sat (4)",
    ]  # fmt: skip
    assert ax.get_ylabel() == "Row: token (id)"


def test_export_projector_writes_the_projector_config(tmp_path) -> None:
    export_projector(np.eye(3), ["a", "b", "c"], tmp_path)
    config = (tmp_path / "projector_config.pbtxt").read_text()
    assert 'tensor_path: "vectors.tsv"' in config and 'metadata_path: "metadata.tsv"' in config
    export_projector(np.eye(3), None, tmp_path / "bare")
    assert "metadata_path" not in (tmp_path / "bare" / "projector_config.pbtxt").read_text()
