"""Pictures of embeddings: 2-D maps, weight heatmaps, TensorBoard projector export.

Figures are built with matplotlib's object API on an Agg canvas, never through
``pyplot``: nothing here touches the global backend or pyplot's figure list,
so the functions are safe in scripts, servers and tests, and the returned
:class:`~matplotlib.figure.Figure` still displays inline in Jupyter.
matplotlib and scikit-learn (PCA, t-SNE) come with ``synthembed[viz]``;
UMAP needs ``umap-learn``.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn

from synthembed._validation import check_choice, check_finite, check_int, require
from synthembed.errors import ConfigError, ShapeError
from synthembed.io import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["export_projector", "plot_embeddings", "plot_weights", "reduce_2d"]

logger = logging.getLogger(__name__)

Method = Literal["pca", "tsne", "umap"]
_METHODS = ("pca", "tsne", "umap")
_IMAGE_SUFFIXES = (".png", ".svg", ".pdf")
_MAX_LEGEND = 20  # more distinct numeric labels than this get a colour bar instead
_MAX_ANNOTATIONS = 300
_THIN_ABOVE = 50  # declutter="auto" leaves out overlapping labels past this many
_FONT_SIZE = 8


def _as_matrix(vectors: Any, owner: str, what: str = "vectors") -> np.ndarray:
    """Return ``vectors`` as a finite 2-D float array."""
    if isinstance(vectors, nn.Module):
        raise ShapeError(
            f"{owner} got a module as {what}; pass a tensor or array (for a layer's table "
            "use layer.weight)."
        )
    if isinstance(vectors, torch.Tensor):
        tensor = vectors.detach().to("cpu")
    else:
        try:
            tensor = torch.as_tensor(np.asarray(vectors))
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ShapeError(
                f"{owner} needs {what} as a 2-D tensor or array of numbers; got "
                f"{type(vectors).__name__} ({exc})."
            ) from exc
    if tensor.dim() != 2:
        raise ShapeError(f"{owner} needs {what} of shape (N, D); got {tuple(tensor.shape)}.")
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise ShapeError(f"{owner} needs real-valued {what}; got dtype {tensor.dtype}.")
    tensor = tensor.to(torch.float64)
    check_finite(tensor, f"{owner}: {what}")
    return tensor.numpy()


def _check_image_path(path: str | os.PathLike[str] | None, owner: str) -> Path | None:
    if path is None:
        return None
    target = Path(path)
    if target.suffix.lower() not in _IMAGE_SUFFIXES:
        raise ConfigError(
            f"The 'path' parameter of {owner} must end in one of "
            f"{', '.join(_IMAGE_SUFFIXES)}. Got {str(path)!r} instead."
        )
    if not target.parent.is_dir():
        raise FileNotFoundError(f"{owner} cannot write {str(target)!r}: no such directory.")
    return target


def _new_figure(figsize: tuple[float, float]) -> Figure:
    require("matplotlib", "viz", "Plotting")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path | None) -> None:
    if path is None:
        return
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format=path.suffix.lower().lstrip("."), dpi=150)
    logger.info("wrote %s", path)


def _pca_2d(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project onto the top two principal axes; return ``(coords, explained ratios)``.

    scikit-learn's ``PCA`` (full SVD, deterministic). A single row, a single feature or
    vectors without variance have fewer than two axes: the missing ones are zero.
    """
    decomposition = require("sklearn.decomposition", "viz", "plot_embeddings(method='pca')")
    n, d = x.shape
    coords = np.zeros((n, 2))
    ratios = np.zeros(2)
    k = min(2, n - 1, d)  # n - 1: one row (or two) spans at most n - 1 axes around its mean
    centred = x - x.mean(0)
    if k < 1 or not np.any(centred):
        return coords, ratios
    pca = decomposition.PCA(n_components=k, svd_solver="full")
    projected = pca.fit_transform(x)
    # Fix each axis' sign (largest loading positive) so the picture is the same whatever
    # convention the installed scikit-learn follows.
    axes = pca.components_
    signs = np.sign(axes[np.arange(k), np.abs(axes).argmax(1)])
    coords[:, :k] = projected * np.where(signs == 0, 1.0, signs)
    ratios[:k] = pca.explained_variance_ratio_
    return coords, ratios


def reduce_2d(vectors: Any, method: Method = "pca", *, seed: int = 0) -> np.ndarray:
    """Map vectors to 2-D coordinates with PCA, t-SNE or UMAP.

    Args:
        vectors: ``(N, D)`` tensor or array, finite.
        method: ``"pca"`` (scikit-learn's PCA, deterministic), ``"tsne"`` (scikit-learn,
            perplexity ``min(30, (N - 1) / 3)``, PCA initialisation) or
            ``"umap"`` (``umap-learn``).
        seed: random state of t-SNE and UMAP.

    Shape:
        ``(N, D)`` -> ``(N, 2)``

    Returns:
        A float64 numpy array of 2-D coordinates.

    Raises:
        ConfigError: unknown method.
        ShapeError: fewer than 3 rows for t-SNE/UMAP, or not 2-D.
        MissingDependencyError: scikit-learn / umap-learn is missing.

    Example:
        >>> reduce_2d(np.random.rand(10, 5)).shape
        (10, 2)
    """
    owner = "reduce_2d"
    check_choice(owner, "method", method, _METHODS)
    check_int(owner, "seed", seed, 0)
    x = _as_matrix(vectors, owner)
    return _reduce(x, method, seed, owner)[0]


def _reduce(x: np.ndarray, method: str, seed: int, owner: str) -> tuple[np.ndarray, list[str]]:
    n = len(x)
    if n == 0:
        raise ShapeError(f"{owner} got 0 vectors; there is nothing to plot.")
    if method == "pca":
        coords, ratios = _pca_2d(x)
        return coords, [f"PC{i + 1} ({100 * r:.1f}% of variance)" for i, r in enumerate(ratios)]
    if n < 3:
        raise ShapeError(f"{owner} with method={method!r} needs at least 3 vectors; got {n}.")
    if method == "tsne":
        manifold = require("sklearn.manifold", "viz", "plot_embeddings(method='tsne')")
        perplexity = min(30.0, (n - 1) / 3)
        tsne = manifold.TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
        return np.asarray(tsne.fit_transform(x)), ["t-SNE 1", "t-SNE 2"]
    umap = require("umap", "umap", "plot_embeddings(method='umap')")
    reducer = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), random_state=seed)
    with warnings.catch_warnings():
        # umap warns that a fixed random_state disables parallelism; that is the point.
        warnings.filterwarnings("ignore", message=".*random_state.*", category=UserWarning)
        coords = reducer.fit_transform(x)
    return np.asarray(coords, dtype=np.float64), ["UMAP 1", "UMAP 2"]


def _is_numeric(values: Sequence[Any]) -> bool:
    return all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        for v in values
    )


def _as_list(values: Any, owner: str, name: str, n: int) -> list[Any]:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ShapeError(f"{owner} needs {name} as a 1-D sequence; got shape {values.shape}.")
        values = values.tolist()
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        try:
            values = list(values)
        except TypeError as exc:
            raise ShapeError(
                f"{owner} needs {name} as a sequence; got {type(values).__name__}."
            ) from exc
    if len(values) != n:
        raise ShapeError(f"{owner} got {len(values)} {name} for {n} vectors; pass one per vector.")
    return list(values)


def _readable_subset(
    coords: np.ndarray, texts: list[str], figsize: tuple[float, float]
) -> list[int]:
    """Indices of the labels to draw so that no two label boxes overlap.

    Greedy in the given order (so callers list the important points first, e.g.
    words by frequency): a label is kept when its box, estimated from the font
    size in axes fractions, meets no box kept before it.
    """
    span = coords.max(0) - coords.min(0)
    span[span == 0] = 1.0
    unit = (coords - coords.min(0)) / span  # (N, 2) in [0, 1] of the data box
    # Points of an 8 pt font over the axes' size in points (about 70% of the figure,
    # a little less than it is: an overestimate costs a label, an underestimate an overlap).
    width_per_char = 0.65 * _FONT_SIZE / (figsize[0] * 72 * 0.7)
    height = 1.5 * _FONT_SIZE / (figsize[1] * 72 * 0.7)
    kept: list[int] = []
    boxes = np.empty((0, 4))  # x0, y0, x1, y1 of kept labels
    for i, text in enumerate(texts):
        if not text:
            continue
        x0, y0 = unit[i]
        box = np.array([x0, y0, x0 + width_per_char * len(text), y0 + height])
        clash = (
            (boxes[:, 0] < box[2])
            & (box[0] < boxes[:, 2])
            & (boxes[:, 1] < box[3])
            & (box[1] < boxes[:, 3])
        )
        if not clash.any():
            kept.append(i)
            boxes = np.vstack([boxes, box])
    return kept


def plot_embeddings(
    vectors: Any,
    labels: Sequence[Any] | np.ndarray | torch.Tensor | None = None,
    *,
    method: Method = "pca",
    annotate: Sequence[str] | bool | None = None,
    declutter: bool | Literal["auto"] = "auto",
    label_name: str | None = None,
    path: str | os.PathLike[str] | None = None,
    title: str | None = None,
    seed: int = 0,
    figsize: tuple[float, float] = (7.0, 6.0),
) -> Figure:
    """Draw a 2-D map of embeddings (PCA, t-SNE or UMAP), coloured by label.

    Args:
        vectors: ``(N, D)`` embeddings (tensor, array or nested lists).
        labels: optional label per vector. Up to 20 distinct values (or any
            non-numeric labels) get one colour each and a legend; more numeric
            values get a continuous colour map and a colour bar.
        method: ``"pca"``, ``"tsne"`` or ``"umap"``; see :func:`reduce_2d`.
        annotate: text written beside each point (words, ids), or ``True`` to
            write the labels. List the important points first: when labels
            would overlap, the later ones are left out (see ``declutter``).
        declutter: leave out annotations whose text would overlap one drawn
            before it, so that dense regions stay readable. ``"auto"`` does so
            past 50 annotations; ``True`` always; ``False`` draws every one
            (more than 300 then draws a warning).
        label_name: title of the legend or colour bar; defaults to the labels'
            ``name`` (a pandas Series) or ``"label"``.
        path: optional ``.png``, ``.svg`` or ``.pdf`` file, written atomically.
        title: figure title; defaults to the method and the number of vectors.
        seed: random state of t-SNE / UMAP.
        figsize: figure size in inches.

    Shape:
        vectors: ``(N, D)``; labels and annotate: ``(N,)``.

    Returns:
        The :class:`matplotlib.figure.Figure` (Agg canvas; not registered with pyplot).

    Raises:
        ConfigError: unknown method or unsupported file suffix.
        ShapeError: vectors not 2-D, or labels/annotations of the wrong length.
        NonFiniteError: NaN or infinite vectors.
        MissingDependencyError: matplotlib, scikit-learn or umap-learn is missing.

    Example:
        >>> fig = plot_embeddings(np.random.rand(30, 8), labels=[i % 3 for i in range(30)])
        >>> fig.axes[0].get_title()
        'PCA of 30 embeddings'
    """
    owner = "plot_embeddings"
    check_choice(owner, "method", method, _METHODS)
    check_choice(owner, "declutter", declutter, (True, False, "auto"))
    check_int(owner, "seed", seed, 0)
    target = _check_image_path(path, owner)
    x = _as_matrix(vectors, owner)
    n = len(x)
    if label_name is None:
        series_name = getattr(labels, "name", None)
        label_name = str(series_name) if series_name is not None else "label"
    label_list = _as_list(labels, owner, "labels", n) if labels is not None else None
    texts: list[str] | None
    if annotate is True:
        if label_list is None:
            raise ConfigError(f"{owner} got annotate=True without labels; pass labels= too.")
        texts = [str(v) for v in label_list]
    elif annotate is None or annotate is False:
        texts = None
    else:
        texts = [str(v) for v in _as_list(annotate, owner, "annotations", n)]
    thin = texts is not None and (
        declutter is True or (declutter == "auto" and sum(map(bool, texts)) > _THIN_ABOVE)
    )
    if texts is not None and not thin and len(texts) > _MAX_ANNOTATIONS:
        warnings.warn(
            f"{owner} is annotating {len(texts)} points; the labels will overlap. Annotate a "
            "subset (pass '' for the points to leave blank) or pass declutter=True.",
            stacklevel=2,
        )

    coords, axis_names = _reduce(x, method, seed, owner)

    fig = _new_figure(figsize)
    ax = fig.add_subplot()
    size = float(np.clip(3000 / max(n, 1), 4, 60))
    if label_list is None:
        ax.scatter(coords[:, 0], coords[:, 1], s=size, alpha=0.8, linewidths=0)
    else:
        distinct = sorted(set(label_list), key=lambda v: (str(type(v)), v))
        if _is_numeric(label_list) and len(distinct) > _MAX_LEGEND:
            points = ax.scatter(
                coords[:, 0],
                coords[:, 1],
                c=np.asarray(label_list, dtype=float),
                s=size,
                cmap="viridis",
                alpha=0.8,
                linewidths=0,
            )
            fig.colorbar(points, ax=ax, label=label_name)
        else:
            from matplotlib import colormaps

            cmap = colormaps["tab10" if len(distinct) <= 10 else "tab20"]
            values = np.asarray([str(v) for v in label_list])
            for i, value in enumerate(distinct):
                chosen = values == str(value)
                ax.scatter(
                    coords[chosen, 0],
                    coords[chosen, 1],
                    s=size,
                    alpha=0.8,
                    linewidths=0,
                    color=cmap(i % cmap.N),
                    label=str(value),
                )
            if len(distinct) > _MAX_LEGEND:
                logger.info("%s: %d labels, legend omitted", owner, len(distinct))
            else:
                ax.legend(
                    title=label_name,
                    loc="center left",
                    bbox_to_anchor=(1.0, 0.5),
                    frameon=False,
                    markerscale=max(1.0, 6.0 / math.sqrt(size)),
                )
    if texts is not None:
        chosen = _readable_subset(coords, texts, figsize) if thin else range(n)
        for i in chosen:
            if texts[i]:
                ax.annotate(
                    texts[i],
                    (coords[i, 0], coords[i, 1]),
                    xytext=(3, 3),
                    textcoords="offset points",
                    fontsize=_FONT_SIZE,
                )
        if thin and len(texts) > _MAX_ANNOTATIONS:
            warnings.warn(
                f"{owner} is annotating {len(texts)} points; only the {len(chosen)} labels that "
                "do not overlap are drawn (list important points first; declutter=False draws "
                "them all).",
                stacklevel=2,
            )
        elif thin:
            logger.info("%s: %d of %d labels drawn (the rest overlapped)", owner, len(chosen), n)
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    pretty = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}[method]
    ax.set_title(title if title is not None else f"{pretty} of {n} embeddings")
    _save(fig, target)
    return fig


def plot_weights(
    layer_or_tensor: nn.Module | torch.Tensor | np.ndarray,
    rows: int | None = 100,
    *,
    path: str | os.PathLike[str] | None = None,
    title: str | None = None,
    cmap: str = "viridis",
    figsize: tuple[float, float] = (8.0, 5.0),
) -> Figure:
    """Heatmap of an embedding table: one row per id, one column per dimension.

    Args:
        layer_or_tensor: an embedding layer (anything with a 2-D ``weight``,
            e.g. ``nn.Embedding``, ``synthembed.Embedding``, ``nn.Linear``) or a
            2-D tensor / array. A layer with a vocabulary (``layer.vocab``) gets
            its rows labelled with their tokens.
        rows: show the first ``rows`` rows (``None``: all of them).
        path: optional ``.png``, ``.svg`` or ``.pdf`` file, written atomically.
        title: figure title; defaults to what is shown.
        cmap: matplotlib colour map name.
        figsize: figure size in inches.

    Shape:
        weight: ``(num_embeddings, embedding_dim)``

    Returns:
        The :class:`matplotlib.figure.Figure`.

    Raises:
        ShapeError: no 2-D weight.
        ConfigError: ``rows`` < 1, unknown colour map or unsupported file suffix.

    Example:
        >>> fig = plot_weights(nn.Embedding(1000, 50), rows=100)
        >>> fig.axes[0].get_ylabel()
        'Row (id)'
    """
    owner = "plot_weights"
    check_int(owner, "rows", rows, 1, optional=True)
    target = _check_image_path(path, owner)
    if isinstance(layer_or_tensor, nn.Module):
        weight = getattr(layer_or_tensor, "weight", None)
        if not isinstance(weight, torch.Tensor):
            raise ShapeError(
                f"{owner} got a {type(layer_or_tensor).__name__} without a 'weight' tensor; "
                "pass an embedding layer or the table itself."
            )
        name = type(layer_or_tensor).__name__
        vocab = getattr(layer_or_tensor, "vocab", None)
    else:
        weight, name, vocab = layer_or_tensor, "Embedding", None
    table = _as_matrix(weight, owner, "the weight")
    total = len(table)
    shown = table if rows is None else table[:rows]
    matplotlib = require("matplotlib", "viz", "Plotting")
    if cmap not in matplotlib.colormaps:
        raise ConfigError(
            f"The 'cmap' parameter of {owner} must be a matplotlib colour map name. "
            f"Got {cmap!r} instead."
        )
    fig = _new_figure(figsize)
    ax = fig.add_subplot()
    image = ax.imshow(shown, aspect="auto", interpolation="nearest", cmap=cmap)
    fig.colorbar(image, ax=ax, label="weight")
    ax.set_xlabel("Embedding dimension")
    ax.set_ylabel("Row (id)")
    tokens = getattr(vocab, "index_to_key", None)
    if tokens is not None and len(tokens) >= len(shown):
        # At most ~40 tick labels stay readable; show every step-th token.
        step = max(1, math.ceil(len(shown) / 40))
        ticks = list(range(0, len(shown), step))
        ax.set_yticks(ticks)
        ax.set_yticklabels([f"{tokens[i]} ({i})" for i in ticks], fontsize=7)
        ax.set_ylabel("Row: token (id)")
    default = f"{name} weights: rows 0-{len(shown) - 1} of {total}, {table.shape[1]} dims"
    ax.set_title(title if title is not None else default)
    _save(fig, target)
    return fig


def _clean_cell(value: Any) -> str:
    # A tab or newline inside a cell would shift columns or rows in the projector.
    return str(value).replace("\t", " ").replace("\r", " ").replace("\n", " ")


def _write_projector_config(folder: Path, vectors_path: Path, metadata_path: Path | None) -> None:
    """The projector plugin's config (a text protobuf), with paths relative to the folder."""
    lines = [
        "embeddings {",
        '  tensor_name: "embeddings"',
        f'  tensor_path: "{vectors_path.name}"',
    ]
    if metadata_path is not None:
        lines.append(f'  metadata_path: "{metadata_path.name}"')
    lines.append("}")
    with atomic_write(folder / "projector_config.pbtxt", "w") as handle:
        handle.write("\n".join(lines) + "\n")


def export_projector(
    vectors: Any,
    metadata: Sequence[Any] | Mapping[str, Sequence[Any]] | Any | None,
    folder: str | os.PathLike[str],
) -> tuple[Path, Path | None]:
    """Write ``vectors.tsv``, ``metadata.tsv`` and ``projector_config.pbtxt`` for the Projector.

    Load the two TSV files with the "Load" button of https://projector.tensorflow.org,
    or point a local TensorBoard at the folder (``tensorboard --logdir FOLDER``):
    ``projector_config.pbtxt`` tells its projector plugin where the files are. ``vectors.tsv`` holds one vector per
    line, tab-separated, with no header; numbers are written with 9
    significant digits, enough to read float32 values back exactly.
    ``metadata.tsv`` follows the projector's rule: a single column has no
    header line; several columns (a mapping or a DataFrame) start with a
    header line of column names. Tabs and newlines inside cells become spaces.
    Both files are written atomically.

    Args:
        vectors: ``(N, D)`` tensor or array.
        metadata: one label per vector (a sequence), several columns (a mapping
            of column name to sequence, or a pandas DataFrame), or ``None``.
        folder: directory to write into; created if missing.

    Shape:
        vectors: ``(N, D)``; each metadata column: ``(N,)``.

    Returns:
        ``(vectors_path, metadata_path)``; ``metadata_path`` is None without metadata.

    Raises:
        ShapeError: vectors not 2-D, or metadata of another length than the vectors.
        NonFiniteError: NaN or infinite vectors.

    Example:
        >>> import tempfile
        >>> v, m = export_projector(np.eye(3), ["a", "b", "c"], tempfile.mkdtemp())
        >>> m.read_text().splitlines()
        ['a', 'b', 'c']
    """
    owner = "export_projector"
    x = _as_matrix(vectors, owner)
    n = len(x)
    columns: dict[str, list[Any]] | None
    if metadata is None:
        columns = None
    elif isinstance(metadata, Mapping):
        if not metadata:
            raise ShapeError(f"{owner} got an empty metadata mapping; pass None for no metadata.")
        columns = {
            str(k): _as_list(v, owner, f"values in metadata column {k!r}", n)
            for k, v in metadata.items()
        }
    elif hasattr(metadata, "columns") and hasattr(metadata, "__getitem__"):  # a DataFrame
        columns = {
            str(c): _as_list(list(metadata[c]), owner, f"values in metadata column {c!r}", n)
            for c in metadata.columns
        }
    else:
        columns = {"label": _as_list(metadata, owner, "metadata values", n)}

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    vectors_path = out / "vectors.tsv"
    with atomic_write(vectors_path, "w") as handle:
        np.savetxt(handle, x.astype(np.float32), fmt="%.9g", delimiter="\t")
    _write_projector_config(out, vectors_path, None if columns is None else out / "metadata.tsv")
    if columns is None:
        return vectors_path, None
    metadata_path = out / "metadata.tsv"
    names = list(columns)
    with atomic_write(metadata_path, "w") as handle:
        if len(names) > 1:
            handle.write("\t".join(_clean_cell(name) for name in names) + "\n")
        for i in range(n):
            handle.write("\t".join(_clean_cell(columns[name][i]) for name in names) + "\n")
    logger.info("wrote %s and %s (%d vectors)", vectors_path, metadata_path, n)
    return vectors_path, metadata_path
