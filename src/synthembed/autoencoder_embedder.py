"""AutoencoderEmbedder: embeddings of feature vectors learned without labels.

An MLP autoencoder whose linear bottleneck is the embedding, behind
scikit-learn's estimator protocol (``fit`` / ``transform`` /
``inverse_transform``, ``get_params`` / ``set_params``, ``sklearn.base.clone``):
it subclasses scikit-learn's ``BaseEstimator`` and ``TransformerMixin`` when
scikit-learn is installed, and works the same without it.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from synthembed._config import DTYPE
from synthembed._deprecation import renamed
from synthembed._estimator import BaseEstimator, EstimatorNotFittedError, TransformerMixin
from synthembed._scaling import AffineScaler
from synthembed._validation import check_finite, check_float, check_int
from synthembed.errors import ConfigError, ShapeError
from synthembed.io import register_savable

__all__ = ["AutoencoderEmbedder"]

logger = logging.getLogger(__name__)

ArrayLike = torch.Tensor | np.ndarray


def _as_2d_float(X: Any, owner: str, what: str = "X") -> torch.Tensor:
    if isinstance(X, np.ndarray):
        if not np.issubdtype(X.dtype, np.number) and X.dtype != np.bool_:
            raise ShapeError(f"{owner} needs a numeric {what}; got an array of dtype {X.dtype}.")
        tensor = torch.from_numpy(np.asarray(X, dtype=np.float32))
    elif isinstance(X, torch.Tensor):
        tensor = X.detach().to("cpu", torch.float32)
    else:
        raise ShapeError(
            f"{owner} needs {what} as a numpy array or a torch.Tensor; got {type(X).__name__}."
        )
    if tensor.dim() != 2:
        raise ShapeError(
            f"{owner} needs {what} of shape (n_samples, n_features); got {tuple(tensor.shape)}."
        )
    check_finite(tensor, f"{owner}: {what}")
    return tensor


def _like_input(result: torch.Tensor, reference: Any) -> ArrayLike:
    """numpy in, numpy out; tensor in, tensor out (on the input's device)."""
    if isinstance(reference, np.ndarray):
        return result.numpy()
    return result.to(reference.device)


@register_savable
class AutoencoderEmbedder(TransformerMixin, BaseEstimator):  # type: ignore[misc,valid-type]
    """Learn ``embedding_dim``-d embeddings of feature vectors with an MLP autoencoder.

    The encoder maps standardized features through ``hidden_dims`` layers (ReLU) to
    a linear bottleneck of ``embedding_dim`` units, the embedding; a mirrored
    decoder reconstructs the features, trained with mean squared error and
    Adam. A seeded random ``validation_fraction`` of the rows is held out;
    training stops once the validation error has not improved for
    ``patience`` epochs and the best weights are kept. No labels are used.

    The interface is scikit-learn's: parameters are stored as given by
    ``__init__``, ``fit`` returns ``self``, fitted state ends in ``_``, and
    ``get_params`` / ``set_params`` make it work with ``sklearn.clone`` and
    pipelines. With scikit-learn installed it subclasses ``BaseEstimator`` and
    ``TransformerMixin``, and an unfitted call raises an error that is both
    :class:`~synthembed.errors.NotFittedError` and scikit-learn's ``NotFittedError``.
    A fitted embedder saves with ``synthembed.save(ae, path)`` and loads with
    ``synthembed.load(path)`` (its networks and standardization as tensors).

    Args:
        embedding_dim: size of the bottleneck, the embedding dimension.
        hidden_dims: widths of the encoder's hidden layers, outermost first; the
            decoder mirrors them. ``()`` gives a linear autoencoder (like PCA).
            ``hidden=`` is its deprecated old name.
        epochs: maximum passes over the training rows.
        batch_size: rows per optimisation step.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        validation_fraction: share of rows held out for early stopping and the
            reported reconstruction error, in ``[0, 1)``; ``0`` trains all
            ``epochs`` on every row.
        patience: epochs without validation improvement before stopping.
        standardize: scale each feature to zero mean and unit variance before
            encoding (constant features are only centred).
        seed: seeds initialisation, the split and the shuffling; equal seeds
            give bit-identical models on the same machine. The global torch RNG
            is left untouched.
        device: where training runs.

    Attributes:
        encoder_, decoder_: the trained ``nn.Sequential`` halves.
        n_features_in_: number of input features.
        mean_, scale_: the standardization, ``(n_features,)`` tensors (``scale_`` is 1 for
            a constant feature); ``scaler_`` applies it.
        history_: one ``{"epoch", "train_loss", "val_loss"}`` dict per epoch
            (losses in standardized units; ``val_loss`` is None without a split).
        best_epoch_: the epoch whose weights were kept (1-based).
        reconstruction_error_: mean squared reconstruction error on the held
            out rows (on the training rows when ``validation_fraction=0``), in
            the original feature units.
        baseline_error_: the same error for the mean predictor (every row
            reconstructed as the training mean), to compare against.

    Shape:
        - X: ``(N, F)`` -> transform: ``(N, embedding_dim)``
        - Z: ``(N, embedding_dim)`` -> inverse_transform: ``(N, F)``

    Example:
        >>> X = torch.randn(200, 10) @ torch.randn(10, 10)
        >>> ae = AutoencoderEmbedder(3, hidden_dims=(16,), epochs=5, seed=0).fit(X)
        >>> ae.transform(X).shape
        torch.Size([200, 3])
    """

    @renamed(hidden="hidden_dims")
    def __init__(
        self,
        embedding_dim: int,
        hidden_dims: Sequence[int] = (128, 64),
        *,
        epochs: int = 200,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        validation_fraction: float = 0.1,
        patience: int = 10,
        standardize: bool = True,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        self.embedding_dim = embedding_dim
        self.hidden_dims = hidden_dims
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.standardize = standardize
        self.seed = seed
        self.device = device
        self._check_params()

    # -- scikit-learn protocol ------------------------------------------------

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [name for name in signature.parameters if name != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor parameters (scikit-learn protocol)."""
        return {name: getattr(self, name) for name in self._param_names()}

    @renamed(hidden="hidden_dims")
    def set_params(self, **params: Any) -> AutoencoderEmbedder:
        """Set constructor parameters; checked before any is changed (scikit-learn protocol)."""
        valid = self._param_names()
        for name in params:
            if name not in valid:
                raise ConfigError(
                    f"AutoencoderEmbedder has no parameter {name!r}; valid parameters: "
                    f"{', '.join(valid)}."
                )
        trial = copy.copy(self)
        trial.__dict__.update(params)
        trial._check_params()
        self.__dict__.update(params)
        return self

    def __repr__(self) -> str:
        defaults = {
            name: p.default
            for name, p in inspect.signature(type(self).__init__).parameters.items()
            if p.default is not inspect.Parameter.empty
        }
        shown = [repr(self.embedding_dim)] + [
            f"{name}={value!r}"
            for name, value in self.get_params().items()
            if name != "embedding_dim" and (name not in defaults or value != defaults[name])
        ]
        return f"AutoencoderEmbedder({', '.join(shown)})"

    def _check_params(self) -> None:
        owner = "AutoencoderEmbedder"
        check_int(owner, "embedding_dim", self.embedding_dim, 1)
        hidden = self.hidden_dims
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
            raise ConfigError(
                f"The 'hidden_dims' parameter of {owner} must be a sequence of ints >= 1. "
                f"Got {hidden!r} instead."
            )
        for width in hidden:
            check_int(owner, "hidden_dims", width, 1)
        check_int(owner, "epochs", self.epochs, 1)
        check_int(owner, "batch_size", self.batch_size, 1)
        check_float(owner, "lr", self.lr, 0.0, low_closed=False)
        check_float(owner, "weight_decay", self.weight_decay, 0.0)
        check_float(
            owner, "validation_fraction", self.validation_fraction, 0.0, 1.0, high_closed=False
        )
        check_int(owner, "patience", self.patience, 1)
        check_int(owner, "seed", self.seed, 0)
        if not isinstance(self.standardize, bool):
            raise ConfigError(
                f"The 'standardize' parameter of {owner} must be a bool. "
                f"Got {self.standardize!r} instead."
            )

    # -- model ----------------------------------------------------------------

    def _build(self, n_features: int) -> tuple[nn.Sequential, nn.Sequential]:
        widths = [n_features, *self.hidden_dims]
        enc: list[nn.Module] = []
        for a, b in itertools.pairwise(widths):
            enc += [nn.Linear(a, b), nn.ReLU()]
        enc.append(nn.Linear(widths[-1], self.embedding_dim))  # linear bottleneck
        back = [self.embedding_dim, *reversed(self.hidden_dims)]
        dec: list[nn.Module] = []
        for a, b in itertools.pairwise(back):
            dec += [nn.Linear(a, b), nn.ReLU()]
        dec.append(nn.Linear(back[-1], n_features))
        return nn.Sequential(*enc), nn.Sequential(*dec)

    @property
    def hidden(self) -> Sequence[int]:
        """Deprecated alias of :attr:`hidden_dims`."""
        return self.hidden_dims

    # -- synthembed.save / synthembed.load --------------------------------------

    def get_config(self) -> dict[str, Any]:
        """Constructor parameters and fitted scalars; the networks and scaling are tensors.

        Raises:
            NotFittedError: the embedder is not fitted (call ``fit(X)`` before saving).
        """
        self._check_fitted("synthembed.save")
        params = self.get_params()
        params["hidden_dims"] = [int(w) for w in params["hidden_dims"]]
        params["device"] = str(params["device"])
        return {
            "params": params,
            "n_features_in": int(self.n_features_in_),
            "scaler": {
                "kind": self.scaler_.kind,
                "feature_range": list(self.scaler_.feature_range),
                "clip": self.scaler_.clip,
                "dtype": DTYPE.encode(self.scaler_.shift.dtype),
            },
            "history": self.history_,
            "best_epoch": self.best_epoch_,
            "reconstruction_error": self.reconstruction_error_,
            "baseline_error": self.baseline_error_,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> AutoencoderEmbedder:
        """A fitted embedder with fresh networks; :func:`synthembed.load` fills the tensors."""
        if not isinstance(config, dict):
            raise ConfigError(
                f"An AutoencoderEmbedder configuration must be a JSON object; got {config!r}."
            )
        ae = cls(**config["params"])
        n = int(config["n_features_in"])
        ae.encoder_, ae.decoder_ = ae._build(n)
        for net in (ae.encoder_, ae.decoder_):
            net.to(ae.device).eval().requires_grad_(False)
        ae.n_features_in_ = n
        sc = config["scaler"]
        dtype = DTYPE.decode(sc["dtype"], cls.__name__)
        low, high = sc["feature_range"]
        ae._set_scaler(
            AffineScaler(
                sc["kind"],
                torch.zeros(n, dtype=dtype),
                torch.ones(n, dtype=dtype),
                (float(low), float(high)),
                bool(sc["clip"]),
            )
        )
        ae.history_ = config["history"]
        ae.best_epoch_ = config["best_epoch"]
        ae.reconstruction_error_ = config["reconstruction_error"]
        ae.baseline_error_ = config["baseline_error"]
        return ae

    def _set_scaler(self, scaler: AffineScaler) -> None:
        self.scaler_ = scaler
        self.mean_ = scaler.shift
        self.scale_ = scaler.divisor

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The encoder's and decoder's weights and the standardization's shift and spread."""
        self._check_fitted("synthembed.save")
        out = {f"encoder.{k}": v for k, v in self.encoder_.state_dict().items()}
        out.update({f"decoder.{k}": v for k, v in self.decoder_.state_dict().items()})
        out["scaler.shift"] = self.scaler_.shift
        out["scaler.spread"] = self.scaler_.spread
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Copy saved tensors into the networks (checked by ``load_state_dict``) and scaler."""
        for name, net in (("encoder", self.encoder_), ("decoder", self.decoder_)):
            prefix = name + "."
            net.load_state_dict(
                {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            )
        old = self.scaler_
        self._set_scaler(
            AffineScaler(
                old.kind,
                tensors["scaler.shift"],
                tensors["scaler.spread"],
                old.feature_range,
                old.clip,
            )
        )

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "encoder_")

    def _check_fitted(self, method: str) -> None:
        if not hasattr(self, "encoder_"):
            raise EstimatorNotFittedError(
                f"This AutoencoderEmbedder is not fitted yet; call fit(X) before {method}()."
            )

    def fit(self, X: ArrayLike, y: Any = None) -> AutoencoderEmbedder:
        """Train the autoencoder on the rows of ``X`` (``y`` is ignored).

        Args:
            X: ``(n_samples, n_features)`` numeric array or tensor, finite.
            y: ignored; present for pipeline compatibility.

        Returns:
            self, fitted.

        Raises:
            ShapeError: ``X`` is not 2-D numeric or has too few rows.
            NonFiniteError: ``X`` holds NaN or infinity.
        """
        owner = "AutoencoderEmbedder.fit"
        self._check_params()
        data = _as_2d_float(X, owner)
        n, n_features = data.shape
        n_val = round(n * self.validation_fraction) if self.validation_fraction else 0
        if self.validation_fraction and n_val == 0:
            n_val = 1
        if n - n_val < 1 or n < 2:
            raise ShapeError(
                f"{owner} needs at least 2 rows (and one left for training after the "
                f"validation split of {self.validation_fraction}); got {n}."
            )
        device = torch.device(self.device)
        generator = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(n, generator=generator)
        val_idx, train_idx = order[:n_val], order[n_val:]
        train = data[train_idx]

        if self.standardize:
            scaler = AffineScaler.fit(train, "standard", dim=0)
        else:
            scaler = AffineScaler("standard", torch.zeros(n_features), torch.ones(n_features))
        z_train = scaler.transform(train).to(device)
        z_val = scaler.transform(data[val_idx]).to(device)

        # Initialise from our own seed without disturbing the caller's global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            encoder, decoder = self._build(n_features)
        encoder.to(device)
        decoder.to(device)
        params = [*encoder.parameters(), *decoder.parameters()]
        optimizer = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)

        def loss_on(z: torch.Tensor) -> float:
            with torch.no_grad():
                total = 0.0
                for i in range(0, len(z), 4096):
                    part = z[i : i + 4096]
                    total += float(((decoder(encoder(part)) - part) ** 2).sum())
                return total / max(z.numel(), 1)

        history: list[dict[str, Any]] = []
        best = math.inf
        best_epoch = 0
        best_state: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]] | None = None
        stale = 0
        for epoch in range(1, self.epochs + 1):
            encoder.train()
            decoder.train()
            perm = torch.randperm(len(z_train), generator=generator).to(device)
            running, seen = 0.0, 0
            for i in range(0, len(z_train), self.batch_size):
                batch = z_train[perm[i : i + self.batch_size]]
                loss = nn.functional.mse_loss(decoder(encoder(batch)), batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                running += float(loss.detach()) * len(batch)
                seen += len(batch)
            encoder.eval()
            decoder.eval()
            train_loss = running / seen
            val_loss = loss_on(z_val) if n_val else None
            history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss})
            logger.debug("epoch %d: train %.5f, validation %s", epoch, train_loss, val_loss)
            monitored = val_loss if val_loss is not None else train_loss
            if monitored < best - 1e-7 * abs(best if math.isfinite(best) else 1.0):
                best, best_epoch, stale = monitored, epoch, 0
                best_state = (
                    {k: v.detach().clone() for k, v in encoder.state_dict().items()},
                    {k: v.detach().clone() for k, v in decoder.state_dict().items()},
                )
            else:
                stale += 1
                if n_val and stale >= self.patience:
                    break
        if best_state is not None:
            encoder.load_state_dict(best_state[0])
            decoder.load_state_dict(best_state[1])
        encoder.eval()
        decoder.eval()
        for p in params:
            p.requires_grad_(False)

        self.encoder_ = encoder
        self.decoder_ = decoder
        self.n_features_in_ = n_features
        self.scaler_ = scaler
        self.mean_ = scaler.shift
        self.scale_ = scaler.divisor
        self.history_ = history
        self.best_epoch_ = best_epoch
        held_out = data[val_idx] if n_val else train
        self.reconstruction_error_ = self.reconstruction_error(held_out)
        self.baseline_error_ = float(((held_out - train.mean(0)) ** 2).mean())
        logger.info(
            "AutoencoderEmbedder: %d epochs (best %d), reconstruction MSE %.5g on %s rows "
            "vs %.5g for the mean predictor",
            len(history),
            best_epoch,
            self.reconstruction_error_,
            "validation" if n_val else "training",
            self.baseline_error_,
        )
        return self

    def _encode(self, data: torch.Tensor) -> torch.Tensor:
        device = self.mean_.device
        param = next(self.encoder_.parameters())
        with torch.inference_mode():
            z = self.scaler_.to(device).transform(data.to(device)).to(param.device)
            out = torch.cat([self.encoder_(z[i : i + 4096]) for i in range(0, len(z), 4096)])
        return out.cpu().clone()  # clone: a normal tensor, not an inference tensor

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        param = next(self.decoder_.parameters())
        with torch.inference_mode():
            z = codes.to(param.device)
            rec = torch.cat([self.decoder_(z[i : i + 4096]) for i in range(0, len(z), 4096)])
            out = self.scaler_.inverse_transform(rec.cpu())
        return out.clone()

    def _features(self, X: Any, method: str) -> torch.Tensor:
        self._check_fitted(method)
        data = _as_2d_float(X, f"AutoencoderEmbedder.{method}")
        if data.shape[1] != self.n_features_in_:
            raise ShapeError(
                f"AutoencoderEmbedder.{method} got X with {data.shape[1]} features; it was "
                f"fitted on {self.n_features_in_}."
            )
        return data

    def transform(self, X: ArrayLike) -> ArrayLike:
        """Embed the rows of ``X``: ``(N, F)`` -> ``(N, embedding_dim)``, float32.

        Returns a numpy array for numpy input and a tensor for tensor input.

        Raises:
            NotFittedError: called before :meth:`fit`.
            ShapeError: ``X`` has a different number of features than in ``fit``.
        """
        return _like_input(self._encode(self._features(X, "transform")), X)

    def fit_transform(self, X: ArrayLike, y: Any = None) -> ArrayLike:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    def inverse_transform(self, Z: ArrayLike) -> ArrayLike:
        """Decode embeddings back to feature space: ``(N, embedding_dim)`` -> ``(N, F)``.

        Raises:
            NotFittedError: called before :meth:`fit`.
            ShapeError: ``Z`` is not ``(N, embedding_dim)``.
        """
        self._check_fitted("inverse_transform")
        codes = _as_2d_float(Z, "AutoencoderEmbedder.inverse_transform", "Z")
        if codes.shape[1] != self.embedding_dim:
            raise ShapeError(
                f"AutoencoderEmbedder.inverse_transform needs Z of shape (N, "
                f"{self.embedding_dim}); got {tuple(codes.shape)}."
            )
        return _like_input(self._decode(codes), Z)

    def reconstruction_error(self, X: ArrayLike) -> float:
        """Mean squared error between ``X`` and its reconstruction, in the original units."""
        data = self._features(X, "reconstruction_error")
        rec = self._decode(self._encode(data))
        return float(((rec - data) ** 2).mean())

    def score(self, X: ArrayLike, y: Any = None) -> float:
        """Negative reconstruction error (higher is better, as scikit-learn expects)."""
        return -self.reconstruction_error(X)
