"""Input preparation: one-hot encoding, [0, 1] scaling, train/validation/test splits, batches.

This is the founding documents' input layer (EpyNN's ``Embedding``): it can
one-hot encode features and labels, scale features into [0, 1] and prepare
training batches. Shapes follow it: ``X`` has shape ``(m, ...)`` with ``m``
samples, and the number of features per sample is ``n = X.size / m``.

Two departures, both deliberate:

- the samples are shuffled (seeded) before the split, where the original
  slices in order, so a sorted file does not put one class in the test set;
- scaling is fitted on the training split only and reused on the others, so
  no statistics leak from validation or test data. ``per_feature=False``
  gives the original's single global min and max.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from synthembed._scaling import AffineScaler
from synthembed._validation import check_float, check_int
from synthembed.errors import ConfigError, NonFiniteError, NotFittedError, ShapeError
from synthembed.io import register_savable

__all__ = ["OneHot", "Prepared", "Scaler", "one_hot", "prepare", "scale"]


# ---------------------------------------------------------------------- conversion
def _to_numpy(data: Any, what: str) -> np.ndarray:
    """numpy arrays, tensors, pandas objects and nested lists to one numpy array."""
    if isinstance(data, torch.Tensor):
        return data.detach().cpu().numpy()
    if hasattr(data, "to_numpy"):  # pandas DataFrame / Series
        return np.asarray(data.to_numpy())
    try:
        return np.asarray(data)
    except ValueError as exc:
        raise ShapeError(
            f"{what} could not be turned into an array ({exc}); is it ragged?"
        ) from exc


def _is_integer_like(values: np.ndarray) -> bool:
    if values.dtype.kind in "iu":
        return True
    if values.dtype.kind == "f" and values.size:
        finite = np.isfinite(values).all()
        return bool(finite and np.all(values == np.round(values)))
    return False


def _as_tensor(values: np.ndarray) -> torch.Tensor:
    if values.dtype.kind == "b":
        return torch.from_numpy(values.astype(np.float32))
    if values.dtype.kind in "iu":
        return torch.from_numpy(values.astype(np.int64))
    if values.dtype.kind == "f":
        return torch.from_numpy(values.astype(np.float32))
    raise ShapeError(
        f"Values of dtype {values.dtype} cannot become a tensor; one-hot encode them "
        "(one_hot_features=True) or use TabularEmbedding for mixed-type tables."
    )


# ---------------------------------------------------------------------- one-hot
@register_savable
class OneHot:
    """One-hot encoder that keeps its class list, to encode new values and decode predictions.

    A fitted encoder saves with ``synthembed.save(enc, path)`` and loads with
    ``synthembed.load(path)`` (classes that are JSON values: strings, numbers, bools).

    Args:
        classes: the classes in column order; default: learned by :meth:`fit`.

    Example:
        >>> enc = OneHot().fit(["cat", "dog", "cat"])
        >>> enc.transform(["dog"]).tolist(), enc.classes_
        ([[0.0, 1.0]], ['cat', 'dog'])
        >>> enc.decode(torch.tensor([[0.2, 0.8], [0.9, 0.1]]))
        ['dog', 'cat']
    """

    def __init__(self, classes: Sequence[Any] | None = None) -> None:
        self.classes_: list[Any] | None = None if classes is None else list(classes)
        if self.classes_ is not None:
            self._check_classes(self.classes_)

    @staticmethod
    def _check_classes(classes: list[Any]) -> None:
        if not classes:
            raise ConfigError("OneHot needs at least one class; got an empty class list.")
        if len(set(classes)) != len(classes):
            raise ConfigError(f"OneHot classes must be distinct; got {classes!r}.")

    @property
    def num_classes(self) -> int:
        """How many classes (the size of the last output dimension)."""
        return len(self._fitted())

    def _fitted(self) -> list[Any]:
        if self.classes_ is None:
            raise NotFittedError("This OneHot has no classes yet; call fit(values) first.")
        return self.classes_

    def get_config(self) -> dict[str, Any]:
        """The class list (what :func:`synthembed.save` writes).

        Raises:
            NotFittedError: no classes yet (call ``fit(values)`` before saving).
        """
        if self.classes_ is None:
            raise NotFittedError(
                "This OneHot has no classes yet; call fit(values) before synthembed.save()."
            )
        return {"classes": list(self.classes_)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> OneHot:
        """The encoder of the saved classes."""
        if not isinstance(config, dict):
            raise ConfigError(f"A OneHot configuration must be a JSON object; got {config!r}.")
        return cls(config["classes"])

    def fit(self, values: Any) -> OneHot:
        """Learn the sorted distinct values; returns ``self``."""
        arr = _to_numpy(values, "values").reshape(-1)
        if arr.size == 0:
            raise ShapeError("OneHot.fit got no values.")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise NonFiniteError("OneHot.fit got NaN or infinite values; fill them first.")
        if arr.dtype == object and any(v is None for v in arr):
            raise ShapeError("OneHot.fit got None values; fill them first.")
        try:
            uniques = np.unique(arr)
        except TypeError:  # mixed types cannot be sorted: keep first-seen order
            uniques = np.asarray(list(dict.fromkeys(arr.tolist())), dtype=object)
        self.classes_ = [u.item() if hasattr(u, "item") else u for u in uniques]
        return self

    def transform(self, values: Any, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``(*)`` values -> ``(*, num_classes)`` one-hot rows.

        Raises:
            ShapeError: a value that is not among the classes (it names the value).
        """
        classes = self._fitted()
        arr = _to_numpy(values, "values")
        index = {c: i for i, c in enumerate(classes)}
        flat = arr.reshape(-1).tolist()
        try:
            ids = [index[v] for v in flat]
        except (KeyError, TypeError):
            bad = next(v for v in flat if _lookup_fails(index, v))
            shown = classes if len(classes) <= 20 else [*classes[:20], "..."]
            raise ShapeError(
                f"One-hot value {bad!r} is not among the {len(classes)} classes {shown}; "
                "fit on data that covers every class or pass classes=."
            ) from None
        codes = torch.tensor(ids, dtype=torch.long).reshape(arr.shape)
        return torch.nn.functional.one_hot(codes, len(classes)).to(dtype)

    def fit_transform(self, values: Any, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """:meth:`fit` then :meth:`transform`."""
        return self.fit(values).transform(values, dtype=dtype)

    def decode(self, scores: Any) -> list[Any]:
        """Class labels of ``(N, num_classes)`` one-hot rows, probabilities or logits (argmax),
        or of ``(N,)`` class indices."""
        classes = self._fitted()
        t = (
            scores
            if isinstance(scores, torch.Tensor)
            else torch.as_tensor(_to_numpy(scores, "scores"))
        )
        if t.dim() >= 1 and t.shape[-1] == len(classes) and (t.is_floating_point() or t.dim() == 2):
            t = t.argmax(dim=-1)
        if t.is_floating_point():
            raise ShapeError(
                f"decode expects (N, {len(classes)}) scores or integer class indices; got float "
                f"values of shape {tuple(t.shape)}."
            )
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= len(classes)):
            raise ShapeError(
                f"decode got class indices outside [0, {len(classes) - 1}]: "
                f"{int(t.min())}..{int(t.max())}."
            )
        return [classes[int(i)] for i in t.reshape(-1).tolist()]


def _lookup_fails(index: dict[Any, int], value: Any) -> bool:
    try:
        return value not in index
    except TypeError:
        return True


def one_hot(
    values: Any, num_classes: int | None = None, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """One-hot encode ``values``: ``(*)`` -> ``(*, C)``.

    Integer values (ints, or floats that are whole numbers) are class indices,
    as in ``torch.nn.functional.one_hot``: ``C = num_classes`` or ``max + 1``.
    Any other values (strings, ...) use their sorted distinct values as classes;
    use :class:`OneHot` to keep that class list and decode predictions.

    Args:
        values: a numpy array, tensor, pandas object or list.
        num_classes: the number of classes for integer values (default ``max + 1``).
        dtype: output dtype (default float32, ready for losses and matmuls).

    Raises:
        ShapeError: a negative integer, or one >= ``num_classes``.

    Example:
        >>> one_hot([0, 2]).tolist()
        [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
        >>> one_hot(["b", "a"]).tolist()
        [[0.0, 1.0], [1.0, 0.0]]
    """
    arr = _to_numpy(values, "values")
    if arr.dtype.kind in "iuf" and _is_integer_like(arr):
        ints = arr.astype(np.int64)
        check_int("one_hot", "num_classes", num_classes, 1, optional=True)
        top = int(ints.max()) + 1 if ints.size else 0
        n = top if num_classes is None else num_classes
        if ints.size and (int(ints.min()) < 0 or top > n):
            raise ShapeError(
                f"one_hot got class indices in [{int(ints.min())}, {top - 1}]; they must lie in "
                f"[0, {n - 1}] for num_classes={n}."
            )
        return torch.nn.functional.one_hot(torch.from_numpy(ints), max(n, 1)).to(dtype)
    if num_classes is not None:
        raise ConfigError(
            "num_classes applies to integer class indices; for other values use "
            "OneHot(classes=[...]).transform(values)."
        )
    return OneHot().fit(arr).transform(arr, dtype=dtype)


# ---------------------------------------------------------------------- scaling
@register_savable
class Scaler:
    """Min-max scaler into ``feature_range`` whose fitted parameters are reused on new data.

    The arithmetic is the library's one scaler (``synthembed._scaling.AffineScaler``,
    shared with :class:`~synthembed.TabularEmbedding`); this class adds the founding
    input layer's options and a JSON form (:meth:`to_dict`). A fitted scaler also saves
    with ``synthembed.save(scaler, path)`` and loads with ``synthembed.load(path)``
    (its min and max as float64 tensors, exact).

    Args:
        feature_range: ``(low, high)`` of the scaled training data.
        per_feature: one min and max per feature (the flattened trailing
            dimensions); ``False`` uses one global min and max, as the founding
            input layer does.
        clip: clip new data that falls outside the training range.

    Shape:
        ``(m, ...)`` -> ``(m, ...)`` float32.

    Example:
        >>> s = Scaler().fit(torch.tensor([[0.0, 10.0], [2.0, 30.0]]))
        >>> s.transform(torch.tensor([[1.0, 20.0]])).tolist()
        [[0.5, 0.5]]
        >>> Scaler.from_dict(s.to_dict()).transform(torch.tensor([[2.0, 10.0]])).tolist()
        [[1.0, 0.0]]
    """

    def __init__(
        self,
        feature_range: tuple[float, float] = (0.0, 1.0),
        *,
        per_feature: bool = True,
        clip: bool = False,
    ) -> None:
        if not isinstance(feature_range, (tuple, list)) or len(feature_range) != 2:
            raise ConfigError(
                f"The 'feature_range' parameter of Scaler must be a (low, high) pair. "
                f"Got {feature_range!r} instead."
            )
        low = check_float("Scaler", "feature_range[0]", feature_range[0])
        high = check_float("Scaler", "feature_range[1]", feature_range[1])
        assert low is not None and high is not None  # for mypy: not optional
        if not low < high:
            raise ConfigError(
                f"Scaler needs feature_range low < high; got {tuple(feature_range)!r}."
            )
        self.feature_range = (low, high)
        self.per_feature = bool(per_feature)
        self.clip = bool(clip)
        self.min_: np.ndarray | None = None
        self.max_: np.ndarray | None = None

    def fit(self, x: Any) -> Scaler:
        """Learn the min and max of ``x`` (``(m, ...)``); returns ``self``."""
        arr = self._matrix(x)
        if arr.shape[0] == 0:
            raise ShapeError("Scaler.fit got 0 samples; it needs at least one.")
        if not np.isfinite(arr).all():
            raise NonFiniteError(
                f"Scaler.fit got {int(np.isnan(arr).sum())} NaN and {int(np.isinf(arr).sum())} "
                "infinite value(s); impute them before scaling."
            )
        axis = 0 if self.per_feature else None
        self.min_ = np.atleast_1d(arr.min(axis=axis))
        self.max_ = np.atleast_1d(arr.max(axis=axis))
        self._n_features = arr.shape[1]
        return self

    @staticmethod
    def _matrix(x: Any) -> np.ndarray:
        arr = _to_numpy(x, "x")
        if arr.dtype.kind not in "iufb":
            raise ShapeError(f"Scaler expects numbers; got dtype {arr.dtype}.")
        if arr.ndim == 0:
            raise ShapeError("Scaler expects an array of shape (m, ...); got a scalar.")
        m = arr.shape[0]
        n = int(np.prod(arr.shape[1:], dtype=np.int64))
        return arr.reshape(m, n).astype(np.float64)  # (m, n) with n = size / m

    def transform(self, x: Any) -> torch.Tensor:
        """Scale ``x`` with the fitted parameters; returns a float32 tensor of ``x``'s shape."""
        if self.min_ is None or self.max_ is None:
            raise NotFittedError("This Scaler is not fitted yet; call fit(x) or scale(x) first.")
        arr = _to_numpy(x, "x")
        matrix = self._matrix(arr)
        if self.per_feature and matrix.shape[1] != self.min_.shape[0]:
            raise ShapeError(
                f"Scaler was fitted on {self.min_.shape[0]} features per sample; got "
                f"{matrix.shape[1]} (shape {arr.shape})."
            )
        # A constant feature maps to `low`.
        out = self._affine().transform(torch.from_numpy(matrix))
        return out.reshape(arr.shape).to(torch.float32)

    def fit_transform(self, x: Any) -> torch.Tensor:
        """:meth:`fit` then :meth:`transform`."""
        return self.fit(x).transform(x)

    def inverse_transform(self, x: Any) -> torch.Tensor:
        """Map scaled values back to the original units (float32)."""
        if self.min_ is None or self.max_ is None:
            raise NotFittedError("This Scaler is not fitted yet; call fit(x) first.")
        arr = _to_numpy(x, "x")
        matrix = self._matrix(arr)
        out = self._affine().inverse_transform(torch.from_numpy(matrix))
        return out.reshape(arr.shape).to(torch.float32)

    def _affine(self) -> AffineScaler:
        """The library's one scaler, with this scaler's fitted min and max."""
        assert self.min_ is not None and self.max_ is not None  # callers check fitting
        low = torch.from_numpy(np.asarray(self.min_, dtype=np.float64))
        high = torch.from_numpy(np.asarray(self.max_, dtype=np.float64))
        return AffineScaler("minmax", low, high - low, self.feature_range, self.clip)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fitted parameters; :meth:`from_dict` restores them."""
        if self.min_ is None or self.max_ is None:
            raise NotFittedError("This Scaler is not fitted yet; nothing to save.")
        return {
            "feature_range": list(self.feature_range),
            "per_feature": self.per_feature,
            "clip": self.clip,
            "min": self.min_.tolist(),
            "max": self.max_.tolist(),
        }

    def get_config(self) -> dict[str, Any]:
        """The options; the fitted min and max are tensors (:meth:`state_tensors`).

        Raises:
            NotFittedError: the scaler is not fitted (call ``fit(x)`` before saving).
        """
        if self.min_ is None or self.max_ is None:
            raise NotFittedError(
                "This Scaler is not fitted yet; call fit(x) before synthembed.save()."
            )
        return {
            "feature_range": list(self.feature_range),
            "per_feature": self.per_feature,
            "clip": self.clip,
            "num_values": int(self.min_.shape[0]),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Scaler:
        """A scaler with placeholder parameters; :func:`synthembed.load` fills them."""
        if not isinstance(config, dict):
            raise ConfigError(f"A Scaler configuration must be a JSON object; got {config!r}.")
        low, high = config["feature_range"]
        scaler = cls((low, high), per_feature=config["per_feature"], clip=config["clip"])
        n = int(config["num_values"])
        scaler.min_, scaler.max_ = np.zeros(n), np.ones(n)
        return scaler

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The fitted min and max, ``(n,)`` float64 tensors."""
        if self.min_ is None or self.max_ is None:
            raise NotFittedError(
                "This Scaler is not fitted yet; call fit(x) before synthembed.save()."
            )
        return {
            "min": torch.from_numpy(np.asarray(self.min_, dtype=np.float64)),
            "max": torch.from_numpy(np.asarray(self.max_, dtype=np.float64)),
        }

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        lo, hi = tensors["min"], tensors["max"]
        if lo.shape != hi.shape:
            raise ConfigError("Scaler data has 'min' and 'max' of different lengths.")
        self.min_ = lo.detach().cpu().to(torch.float64).numpy().copy()
        self.max_ = hi.detach().cpu().to(torch.float64).numpy().copy()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scaler:
        """Rebuild a fitted scaler from :meth:`to_dict` output."""
        scaler = cls(
            tuple(data["feature_range"]), per_feature=data["per_feature"], clip=data["clip"]
        )  # type: ignore[arg-type]
        scaler.min_ = np.asarray(data["min"], dtype=np.float64)
        scaler.max_ = np.asarray(data["max"], dtype=np.float64)
        if scaler.min_.shape != scaler.max_.shape:
            raise ConfigError("Scaler data has 'min' and 'max' of different lengths.")
        return scaler


def scale(
    x: Any, feature_range: tuple[float, float] = (0.0, 1.0), *, per_feature: bool = True
) -> tuple[torch.Tensor, Scaler]:
    """Scale ``x`` into ``feature_range``; return the result and the fitted :class:`Scaler`.

    Reuse the scaler on new data with ``scaler.transform(x_new)``.

    Example:
        >>> x01, scaler = scale([[1.0], [3.0]])
        >>> x01.tolist(), scaler.transform([[2.0]]).tolist()
        ([[0.0], [1.0]], [[0.5]])
    """
    scaler = Scaler(feature_range, per_feature=per_feature)
    return scaler.fit_transform(x), scaler


# ---------------------------------------------------------------------- prepare
@dataclass
class Prepared:
    """What :func:`prepare` returns: three datasets, their loaders and the fitted encoders.

    Attributes:
        train, val, test: ``TensorDataset`` of ``(x, y)`` (possibly empty).
        train_loader, val_loader, test_loader: their ``DataLoader`` (training batches
            reshuffled each epoch when ``shuffle``).
        classes: the label classes (index ``i`` of a prediction is ``classes[i]``), or
            None when labels were left as numbers.
        scaler: the feature scaler fitted on the training split, or None.
        feature_encoder: the features' one-hot encoder, or None.
        label_encoder: the labels' one-hot encoder, or None.
        n_features: features per sample, ``X.size / m``.
    """

    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    train_loader: DataLoader[Any]
    val_loader: DataLoader[Any]
    test_loader: DataLoader[Any]
    n_features: int
    classes: list[Any] | None = None
    scaler: Scaler | None = None
    feature_encoder: OneHot | None = None
    label_encoder: OneHot | None = field(default=None, repr=False)

    def decode(self, predictions: Any) -> list[Any]:
        """Class labels of ``(N, C)`` scores/probabilities (argmax) or ``(N,)`` class indices."""
        if self.label_encoder is None:
            raise NotFittedError(
                "prepare() kept no class list: the labels were numbers and one_hot_labels=False."
            )
        return self.label_encoder.decode(predictions)


def _split_sizes(m: int, split: Sequence[float]) -> list[int]:
    if len(split) != 3:
        raise ConfigError(
            f"The 'split' parameter of prepare must be 3 relative sizes (train, val, test). "
            f"Got {tuple(split)!r} instead."
        )
    for i, s in enumerate(split):
        check_float("prepare", f"split[{i}]", s, 0.0)
    total = float(sum(split))
    if total <= 0 or split[0] <= 0:
        raise ConfigError(
            f"The 'split' parameter of prepare needs a positive training share; got {tuple(split)!r}."
        )
    bounds = [round(m * c / total) for c in np.cumsum(split).tolist()]
    bounds[-1] = m
    return [bounds[0], bounds[1] - bounds[0], bounds[2] - bounds[1]]


def prepare(
    X: Any,
    y: Any,
    one_hot_features: bool = False,
    one_hot_labels: bool = False,
    scale_features: bool = False,
    split: Sequence[float] = (2, 1, 0),
    batch_size: int | None = None,
    shuffle: bool = True,
    seed: int | None = None,
) -> Prepared:
    """Prepare features and labels for training: encode, scale, split, batch.

    Args:
        X: features of shape ``(m, ...)``: numpy array, tensor, DataFrame or list.
        y: ``m`` labels (numbers or any hashable values), or ``(m, k)`` targets.
        one_hot_features: one-hot encode every feature value over the distinct
            values of all of ``X``: ``(m, ...)`` -> ``(m, ..., C)``.
        one_hot_labels: one-hot encode the labels: ``(m,)`` -> ``(m, C)``. Labels that
            are not numbers become class indices either way; the class list is kept
            in ``Prepared.classes`` for decoding predictions.
        scale_features: min-max scale the features into [0, 1] per feature, fitted
            on the training split and applied to all three.
        split: relative sizes of the training, validation and test splits.
        batch_size: samples per batch; ``None`` puts each split in one batch.
        shuffle: shuffle the samples (with ``seed``) before splitting, and the
            training batches each epoch.
        seed: seed of both shuffles (``None``: a fresh random one).

    Returns:
        A :class:`Prepared` with datasets, loaders and the fitted encoders.

    Raises:
        ShapeError: ``X`` and ``y`` of different lengths, empty data, or non-numeric
            features without ``one_hot_features``.
        ConfigError: a bad ``split`` or ``batch_size``.

    Example:
        >>> import numpy as np
        >>> p = prepare(np.arange(12.0).reshape(6, 2), ["a", "b"] * 3, one_hot_labels=True,
        ...             scale_features=True, seed=0)
        >>> len(p.train), len(p.val), len(p.test), p.classes
        (4, 2, 0, ['a', 'b'])
        >>> x, y = next(iter(p.train_loader))
        >>> x.shape, y.shape, float(x.min()) >= 0.0
        (torch.Size([4, 2]), torch.Size([4, 2]), True)
    """
    check_int("prepare", "batch_size", batch_size, 1, optional=True)
    check_int("prepare", "seed", seed, optional=True)
    xs = _to_numpy(X, "X")
    ys = _to_numpy(y, "y")
    if xs.ndim == 0 or xs.shape[0] == 0:
        raise ShapeError(f"prepare needs X of shape (m, ...) with m >= 1; got shape {xs.shape}.")
    m = xs.shape[0]
    if ys.ndim == 0 or ys.shape[0] != m:
        raise ShapeError(
            f"X has {m} samples but y has shape {ys.shape}; they must have the same length."
        )
    sizes = _split_sizes(m, split)
    n_features = int(xs.size // m)

    feature_encoder: OneHot | None = None
    if one_hot_features:
        feature_encoder = OneHot().fit(xs)
    elif xs.dtype.kind not in "iufb":
        raise ShapeError(
            f"X holds non-numeric values (dtype {xs.dtype}); pass one_hot_features=True, or use "
            "TabularEmbedding / EmbeddingEncoder for mixed-type tables."
        )
    label_encoder: OneHot | None = None
    if one_hot_labels or ys.dtype.kind not in "iufb":
        label_encoder = OneHot().fit(ys)

    generator = torch.Generator()
    if seed is not None:
        generator.manual_seed(seed)
    else:
        generator.seed()
    order = torch.randperm(m, generator=generator).numpy() if shuffle else np.arange(m)
    xs, ys = xs[order], ys[order]
    bounds = np.cumsum([0, *sizes])
    parts = [slice(int(bounds[i]), int(bounds[i + 1])) for i in range(3)]

    scaler: Scaler | None = None
    if scale_features:
        if one_hot_features:
            raise ConfigError(
                "scale_features and one_hot_features exclude each other: one-hot rows are already in [0, 1]."
            )
        scaler = Scaler().fit(xs[parts[0]])

    def features(chunk: np.ndarray) -> torch.Tensor:
        if feature_encoder is not None:
            return feature_encoder.transform(chunk)
        if scaler is not None:
            return scaler.transform(chunk)
        return _as_tensor(chunk)

    def labels(chunk: np.ndarray) -> torch.Tensor:
        if label_encoder is None:
            return _as_tensor(chunk)
        if one_hot_labels:
            return label_encoder.transform(chunk)
        return label_encoder.transform(chunk).argmax(dim=-1)  # class indices

    datasets = [TensorDataset(features(xs[p]), labels(ys[p])) for p in parts]
    loaders = []
    for i, ds in enumerate(datasets):
        size = batch_size if batch_size is not None else max(len(ds), 1)
        loader_gen = torch.Generator()
        loader_gen.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        loaders.append(
            DataLoader(
                ds,
                batch_size=size,
                shuffle=shuffle and i == 0 and len(ds) > 0,
                generator=loader_gen,
            )
        )
    return Prepared(
        train=datasets[0],
        val=datasets[1],
        test=datasets[2],
        train_loader=loaders[0],
        val_loader=loaders[1],
        test_loader=loaders[2],
        n_features=n_features,
        classes=None if label_encoder is None else list(label_encoder.classes_ or []),
        scaler=scaler,
        feature_encoder=feature_encoder,
        label_encoder=label_encoder,
    )
