"""TorchRec interop: synthembed tables as TorchRec collections, and back.

TorchRec's ``DistributedModelParallel`` (DMP) shards the tables of an
``EmbeddingCollection`` (one vector per id) or ``EmbeddingBagCollection`` (pooled
bags) across ranks: table-wise, column-wise, and row-wise where the backend
allows it (on CPU with ``gloo``: row-wise for ``EmbeddingCollection`` only,
torchrec#1252). The tables synthembed can hand over are the plain ones:

=================  =====================================================
synthembed         TorchRec tables (``name`` = the ``name=`` argument)
=================  =====================================================
``Embedding``      ``name`` (``num_embeddings x D``)
``HashEmbedding``  ``name_pool`` (``num_buckets x D``) and ``name_importance``
                   (``num_weights x k``)
``QREmbedding``    ``name_0`` .. ``name_{n-1}`` (remainder first)
=================  =====================================================

:func:`to_torchrec` copies the weights into a collection, :func:`from_torchrec`
copies them back into a synthembed layer, and :func:`gather_weights` assembles
the full tables of a collection sharded by DMP (a collective: call it on every rank).

:class:`TorchRecBase` is the bridge for training: a base for
:class:`~synthembed.SyntheticEmbeddingLayer` (``layer.base = TorchRecBase(layer.base)``)
that turns ids into table rows in plain torch (the hash functions, the
quotient-remainder digits), looks the rows up in TorchRec collections, and
combines them as the synthembed base does. DMP then shards those collections
and wraps the rest of the model (the synthesizer, the towers) in DDP.

Needs the ``distributed`` extra: ``torchrec`` and ``fbgemm-gpu-cpu`` (see
``docs/guides/distributed.md`` for the install commands).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from synthembed._validation import check_ids, check_integer_ids, check_nonnegative_ids
from synthembed.errors import ConfigError, MissingDependencyError
from synthembed.layers.bases.hash import HashEmbedding
from synthembed.layers.bases.qr import QREmbedding
from synthembed.layers.embedding import Embedding

__all__ = [
    "TorchRecBase",
    "from_torchrec",
    "gather_weights",
    "replicated_parameters",
    "shard",
    "to_torchrec",
]

_INSTALL = "pip install 'synthembed[distributed]' && pip install --no-deps torchrec==1.8.0"


def _torchrec() -> Any:
    try:
        import torchrec
    except ImportError as exc:
        raise MissingDependencyError(
            "synthembed.distributed's TorchRec interop needs the optional dependency 'torchrec' "
            f"(and fbgemm-gpu-cpu), which is not importable ({exc}). Install it with: {_INSTALL}"
        ) from exc
    return torchrec


def _plain_tables(module: nn.Module, name: str) -> list[tuple[str, nn.Embedding]]:
    """The TorchRec table name and the ``nn.Embedding`` of every table of ``module``."""
    if not isinstance(name, str) or not name.isidentifier() or hasattr(nn.ModuleDict, name):
        raise ConfigError(
            f"The 'name' of a TorchRec table must be a Python identifier that is not an "
            f"attribute of torch.nn.ModuleDict (TorchRec keeps tables in one). Got {name!r} "
            "instead; e.g. 'movies' rather than 'items'."
        )
    if isinstance(module, Embedding):
        tables: list[tuple[str, nn.Module]] = [(name, module)]
    elif isinstance(module, HashEmbedding):
        tables = [(f"{name}_pool", module.pool), (f"{name}_importance", module.importance)]
    elif isinstance(module, QREmbedding):
        tables = [(f"{name}_{j}", t) for j, t in enumerate(module.tables)]
    else:
        raise ConfigError(
            f"to_torchrec converts Embedding, HashEmbedding and QREmbedding (plain tables); got "
            f"{type(module).__name__}. Other bases (dhe, lowrank, mixed) hold MLPs or factors: "
            "train them replicated under DDP (synthembed.distributed.data_parallel)."
        )
    for table_name, table in tables:
        if not isinstance(table, nn.Embedding):
            raise ConfigError(
                f"Table {table_name!r} of this {type(module).__name__} is int8-quantized "
                f"({type(table).__name__}); convert the float layer, then quantize again."
            )
    return tables  # type: ignore[return-value]


def to_torchrec(
    module: nn.Module, *, name: str = "table", pooled: bool = False, device: Any = None
) -> nn.Module:
    """A TorchRec collection holding the tables of ``module``, weights copied.

    Args:
        module: an :class:`~synthembed.Embedding`, :class:`~synthembed.HashEmbedding`
            or :class:`~synthembed.QREmbedding`.
        name: the table (and feature) name, or the prefix of the names (see the module
            notes); TorchRec keys its state dict and sharding plan by it.
        pooled: False: an ``EmbeddingCollection`` (one vector per id; its tables must
            share one width, so not for a hash base's importance table). True: an
            ``EmbeddingBagCollection`` summing each bag (``mean`` for an
            ``Embedding`` with ``mode="mean"``).
        device: where the collection lives (default: the module's device); ``"meta"``
            builds it without memory, for DMP to allocate only the local shards
            (weights are not copied then).

    Returns:
        ``torchrec.EmbeddingCollection`` or ``torchrec.EmbeddingBagCollection``.

    Raises:
        ConfigError: an unsupported module, int8 tables, tables of different widths
            with ``pooled=False``, or ``mode="max"`` (TorchRec pools by sum or mean).
        MissingDependencyError: torchrec is not installed.

    Example:
        >>> import synthembed as se
        >>> emb = se.Embedding(100, 8)
        >>> ec = to_torchrec(emb, name="items")
        >>> list(ec.embeddings)
        ['items']
    """
    torchrec = _torchrec()
    tables = _plain_tables(module, name)
    if device is None:
        device = tables[0][1].weight.device
    device = torch.device(device)
    if pooled:
        mode = getattr(module, "mode", None)
        if mode == "max":
            raise ConfigError(
                "to_torchrec(pooled=True) pools bags by sum or mean (TorchRec's PoolingType); this "
                "Embedding has mode='max'. Convert with pooled=False and pool the vectors yourself."
            )
        pooling = torchrec.PoolingType.MEAN if mode == "mean" else torchrec.PoolingType.SUM
        configs = [
            torchrec.EmbeddingBagConfig(
                name=n,
                embedding_dim=t.embedding_dim,
                num_embeddings=t.num_embeddings,
                feature_names=[n],
                pooling=pooling,
            )
            for n, t in tables
        ]
        collection = torchrec.EmbeddingBagCollection(tables=configs, device=device)
        weights = collection.embedding_bags
    else:
        widths = {n: t.embedding_dim for n, t in tables}
        if len(set(widths.values())) > 1:
            raise ConfigError(
                f"A TorchRec EmbeddingCollection needs tables of one width; this "
                f"{type(module).__name__} has {widths}. Use pooled=True (an EmbeddingBagCollection "
                "takes mixed widths) or TorchRecBase (one collection per width)."
            )
        configs = [
            torchrec.EmbeddingConfig(
                name=n,
                embedding_dim=t.embedding_dim,
                num_embeddings=t.num_embeddings,
                feature_names=[n],
            )
            for n, t in tables
        ]
        collection = torchrec.EmbeddingCollection(tables=configs, device=device)
        weights = collection.embeddings
    if device.type != "meta":
        with torch.no_grad():
            for n, t in tables:
                weights[n].weight.copy_(t.weight)
    return collection  # type: ignore[no-any-return]


def gather_weights(collection: nn.Module, *, group: Any = None) -> dict[str, torch.Tensor]:
    """The full weight of every table of a TorchRec collection, sharded or not.

    For a collection sharded by ``DistributedModelParallel`` this is a collective
    (every rank calls it; every rank gets the full tables), so it needs the
    memory of the full tables on each rank: use it for checks, conversion and
    small tables, and TorchRec's checkpointing for big ones.

    Returns:
        ``{table name: (rows, D) tensor}`` (copies).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in collection.state_dict().items():
        if not key.endswith(".weight"):
            continue
        name = key.split(".")[-2]
        local_shards = getattr(value, "local_shards", None)
        if local_shards is None:
            out[name] = value.detach().clone()
            continue
        rank = dist.get_rank(group)
        full = torch.zeros(tuple(value.size()), dtype=value.dtype)
        value.gather(dst=0, out=full if rank == 0 else None)
        src = 0 if group is None else dist.get_global_rank(group, 0)
        dist.broadcast(full, src=src, group=group)
        out[name] = full
    return out


def from_torchrec(
    collection: nn.Module, like: nn.Module, *, name: str = "table", group: Any = None
) -> nn.Module:
    """A copy of the synthembed layer ``like`` holding the weights of ``collection``.

    The inverse of :func:`to_torchrec` (same ``name``); a collection sharded by
    DMP is gathered first (a collective, see :func:`gather_weights`).

    Args:
        collection: the TorchRec collection (or its sharded form).
        like: a layer of the same configuration (the one converted, or a fresh
            one built with the same arguments); it is not changed.
        name: the name given to :func:`to_torchrec`.
        group: the process group of a sharded collection (default: the world).

    Returns:
        A deep copy of ``like`` with the collection's weights.

    Raises:
        ConfigError: a table is missing from the collection or has another shape.
    """
    weights = gather_weights(collection, group=group)
    out = copy.deepcopy(like)
    with torch.no_grad():
        for table_name, table in _plain_tables(out, name):
            w = weights.get(table_name)
            if w is None or tuple(w.shape) != tuple(table.weight.shape):
                got = None if w is None else tuple(w.shape)
                raise ConfigError(
                    f"from_torchrec: table {table_name!r} of shape {tuple(table.weight.shape)} "
                    f"is needed; the collection has {got} (tables: {sorted(weights)}). Pass the "
                    "name= given to to_torchrec and a layer of the same configuration."
                )
            table.weight.copy_(w)
    return out


class TorchRecBase(nn.Module):
    """A base whose tables are TorchRec collections: what DMP shards.

    Wraps an :class:`~synthembed.Embedding`, :class:`~synthembed.HashEmbedding`
    or :class:`~synthembed.QREmbedding`: the ids are preprocessed in plain torch
    (hash buckets and importance rows, quotient-remainder digits) before the
    lookup, and the rows are combined as the wrapped base does, so outputs equal
    the wrapped base's. Put it in a synthetic layer (``layer.base =
    TorchRecBase(layer.base)``) and wrap the model in ``DistributedModelParallel``:
    the collections are sharded, the synthesizer is replicated (DDP).

    Args:
        base: the base to take the tables (and weights) from; it is not changed.
        name: the TorchRec table name or prefix (see :func:`to_torchrec`); two
            TorchRec bases in one model need different names.
        device: as in :func:`to_torchrec` (``"meta"``: no weights copied).

    Shape:
        ``(*)`` long ids -> ``(*, embedding_dim)``.

    Raises:
        ConfigError: an unsupported base (see :func:`to_torchrec`).
    """

    def __init__(self, base: nn.Module, *, name: str = "table", device: Any = None) -> None:
        super().__init__()
        _plain_tables(base, name)  # checks the kind of base before anything is built
        self.name = name
        self.kind = type(base).__name__
        self.num_embeddings = int(base.num_embeddings)  # type: ignore[arg-type]
        self.embedding_dim = int(base.embedding_dim)  # type: ignore[arg-type]
        self.padding_idx: int | None = base.padding_idx  # type: ignore[assignment]
        self.accepts_any_id = bool(getattr(base, "accepts_any_id", False))
        self._config: dict[str, Any] = base.get_config()  # type: ignore[operator]
        self._base_type = type(base)
        # The id arithmetic (hash salts, qr sizes) of the wrapped base, without its tables.
        self._ids: tuple[nn.Module, ...] = ()
        if isinstance(base, HashEmbedding | QREmbedding):
            self._ids = (_shell(base),)
        # FBGEMM's sharded kernels take widths that are multiples of 4: each table gets
        # zero columns up to one (never read, so never trained); then one EmbeddingCollection
        # per width, as its tables must share one (a hash base's pool has D columns and its
        # importance table k; qr "concat" tables may differ by one).
        tables = _plain_tables(base, name)
        self._widths = {n: t.embedding_dim for n, t in tables}
        self._where = {n: f"d{_padded(t.embedding_dim)}" for n, t in tables}
        self.collections = nn.ModuleDict(
            {
                key: _collection([(n, t) for n, t in tables if self._where[n] == key], device)
                for key in sorted(set(self._where.values()))
            }
        )

    def _lookup(self, columns: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Rows of ``{table: (N, L) rows}`` (L rows per id), one call per collection.

        Every table sees the same N ids (a KeyedJaggedTensor has one batch size for all
        its keys); returns ``[(N * L_table, D_table)]`` in the order given.
        """
        torchrec = _torchrec()
        found: dict[str, torch.Tensor] = {}
        for key, collection in self.collections.items():
            keys = [n for n in columns if self._where[n] == key]
            if not keys:
                continue
            values = torch.cat([columns[n].reshape(-1) for n in keys])
            lengths = torch.cat(
                [
                    torch.full(columns[n].shape[:1], columns[n].shape[1], dtype=torch.long)
                    for n in keys
                ]
            )
            out = collection(torchrec.KeyedJaggedTensor(keys=keys, values=values, lengths=lengths))
            found.update({n: out[n].values()[:, : self._widths[n]] for n in keys})
        return [found[n] for n in columns]

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Look up ids; see the class notes.

        Raises:
            InvalidIndexError: ids outside ``[0, num_embeddings)`` (any negative id for
                the hashing bases, which take every 64-bit id).
        """
        ids = check_integer_ids(input, type(self).__name__).long()
        if self.accepts_any_id:
            check_nonnegative_ids(ids, type(self).__name__)
        else:
            check_ids(ids, self.num_embeddings, type(self).__name__)
        flat = ids.reshape(-1)  # (N,)
        if self.kind == "HashEmbedding":
            shell: Any = self._ids[0]
            k = shell.num_hashes
            rows, p = self._lookup(
                {
                    f"{self.name}_pool": shell.buckets(flat),  # (N, k)
                    f"{self.name}_importance": shell.weight_rows(flat).unsqueeze(1),  # (N, 1)
                }
            )
            out = (rows.view(-1, k, self.embedding_dim) * p.unsqueeze(-1)).sum(1)  # (N, D)
        elif self.kind == "QREmbedding":
            shell = self._ids[0]
            digits = shell.digits(flat)
            names = [f"{self.name}_{j}" for j in range(len(digits))]
            parts = self._lookup({n: d.unsqueeze(1) for n, d in zip(names, digits)})
            if shell.operation == "concat":
                out = torch.cat(parts, dim=-1)
            else:
                out = parts[0]
                for part in parts[1:]:
                    out = out * part if shell.operation == "product" else out + part
        else:
            (out,) = self._lookup({self.name: flat.unsqueeze(1)})
        if self.padding_idx is not None:  # no output and, through the mask, no gradient
            out = out * (flat != self.padding_idx).unsqueeze(-1).to(out.dtype)
        return out.view(*ids.shape, self.embedding_dim)

    def grow(self, n: int) -> torch.Tensor:
        """Count ``n`` more ids (``add_items``): only for a base whose tables keep their size.

        Raises:
            ConfigError: the tables would need new rows (a full table, per-id importance
                weights): grow the synthembed base before sharding it.
        """
        grows = self.kind == "Embedding" or (
            self.kind == "HashEmbedding" and self._config.get("num_weights") is None
        )
        if grows:
            raise ConfigError(
                f"A TorchRecBase over a {self.kind} cannot grow its tables once they are "
                "TorchRec's: take the weights back (to_base()), add the items to the synthembed "
                "layer, then convert and shard again. A qr base, or a hash base with "
                "num_weights=, keeps its tables and can grow here."
            )
        shell: Any = self._ids[0]
        shell.grow(n)  # its id arithmetic follows num_embeddings (on the meta device)
        start = self.num_embeddings
        self.num_embeddings += n
        self._config["num_embeddings"] = self.num_embeddings
        device = next((p.device for p in self.parameters()), torch.device("cpu"))
        return torch.arange(start, self.num_embeddings, device=device)

    def to_base(self, *, group: Any = None) -> nn.Module:
        """The synthembed base with the current weights (gathered if sharded: a collective)."""
        like = self._base_type.from_config(self._config)  # type: ignore[attr-defined]
        weights: dict[str, torch.Tensor] = {}
        for collection in self.collections.values():
            weights.update(gather_weights(collection, group=group))
        with torch.no_grad():
            for table_name, table in _plain_tables(like, self.name):
                table.weight.copy_(weights[table_name][:, : table.embedding_dim])
        return like  # type: ignore[no-any-return]

    def extra_repr(self) -> str:
        return f"{self.kind}, name={self.name!r}, {self.num_embeddings}, {self.embedding_dim}"


def _shell(base: nn.Module) -> nn.Module:
    """A copy of ``base`` on the meta device: its id arithmetic, without table memory."""
    cfg = base.get_config()  # type: ignore[operator]
    cfg.pop("quantized", None)
    return type(base).from_config(cfg, device=torch.device("meta"))  # type: ignore[attr-defined,no-any-return]


def _padded(width: int) -> int:
    return -(-width // 4) * 4


def _collection(tables: list[tuple[str, nn.Embedding]], device: Any) -> nn.Module:
    """An EmbeddingCollection of ``nn.Embedding`` tables of one padded width, weights copied
    (the padding columns are zero)."""
    torchrec = _torchrec()
    device = torch.device(device if device is not None else tables[0][1].weight.device)
    configs = [
        torchrec.EmbeddingConfig(
            name=n,
            embedding_dim=_padded(t.embedding_dim),
            num_embeddings=t.num_embeddings,
            feature_names=[n],
        )
        for n, t in tables
    ]
    collection = torchrec.EmbeddingCollection(tables=configs, device=device)
    if device.type != "meta":
        with torch.no_grad():
            for n, t in tables:
                weight = collection.embeddings[n].weight
                weight.zero_()
                weight[:, : t.embedding_dim].copy_(t.weight)
    return collection  # type: ignore[no-any-return]


_OPTIMIZERS = {
    "sgd": "EXACT_SGD",
    "adagrad": "EXACT_ADAGRAD",
    "rowwise_adagrad": "EXACT_ROWWISE_ADAGRAD",
    "adam": "ADAM",
}


def shard(
    model: nn.Module,
    *,
    learning_rate: float,
    optimizer: str = "sgd",
    sharding: str = "table_wise",
    device: Any = None,
    group: Any = None,
) -> nn.Module:
    """Shard every TorchRec collection of ``model`` with ``DistributedModelParallel``.

    The tables are split across the ranks as ``sharding`` says and updated by
    TorchRec's fused optimizer inside backward (FBGEMM's ``EmbOptimType``); every
    other parameter (synthesizer, towers) is replicated and averaged by DDP. Train
    those with your optimizer over :func:`replicated_parameters`. Every rank calls
    this (it plans collectively).

    Args:
        model: a model holding TorchRec collections (e.g. through :class:`TorchRecBase`).
        learning_rate: the tables' learning rate.
        optimizer: the tables' fused optimizer: ``"sgd"``, ``"adagrad"``,
            ``"rowwise_adagrad"`` or ``"adam"``.
        sharding: ``"table_wise"`` (each table on one rank), ``"row_wise"`` (rows
            split over the ranks; on CPU with gloo only for EmbeddingCollections),
            ``"column_wise"`` or ``"data_parallel"``.
        device: where the shards live (default: the CPU).
        group: the process group (default: the world).

    Returns:
        The ``DistributedModelParallel`` model.

    Raises:
        ConfigError: an unknown ``optimizer`` or ``sharding``.
    """
    _torchrec()
    from fbgemm_gpu.split_embedding_configs import EmbOptimType
    from torchrec.distributed.embedding import EmbeddingCollectionSharder
    from torchrec.distributed.embeddingbag import EmbeddingBagCollectionSharder
    from torchrec.distributed.model_parallel import DistributedModelParallel
    from torchrec.distributed.planner import (
        EmbeddingShardingPlanner,
        ParameterConstraints,
        Topology,
    )

    if optimizer not in _OPTIMIZERS:
        raise ConfigError(
            f"The 'optimizer' parameter of shard must be one of {sorted(_OPTIMIZERS)}. "
            f"Got {optimizer!r} instead."
        )
    kinds = ("table_wise", "row_wise", "column_wise", "data_parallel")
    if sharding not in kinds:
        raise ConfigError(
            f"The 'sharding' parameter of shard must be one of {list(kinds)}. Got {sharding!r} instead."
        )
    device = torch.device(device if device is not None else "cpu")
    fused = {
        "optimizer": getattr(EmbOptimType, _OPTIMIZERS[optimizer]),
        "learning_rate": learning_rate,
    }
    sharders = [
        EmbeddingCollectionSharder(fused_params=fused),
        EmbeddingBagCollectionSharder(fused_params=fused),
    ]
    tables = [
        name
        for m in model.modules()
        for attr in ("embeddings", "embedding_bags")
        if isinstance(getattr(m, attr, None), nn.ModuleDict) and hasattr(m, "embedding_configs")
        for name in getattr(m, attr)
    ]
    world = dist.get_world_size(group)
    planner = EmbeddingShardingPlanner(
        topology=Topology(world_size=world, compute_device=device.type),
        constraints={t: ParameterConstraints(sharding_types=[sharding]) for t in tables},
    )
    pg = group if group is not None else dist.GroupMember.WORLD
    plan = planner.collective_plan(model, sharders, pg)
    return DistributedModelParallel(model, device=device, sharders=sharders, plan=plan)  # type: ignore[no-any-return]


def replicated_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters of a sharded model that TorchRec's fused optimizer does not update.

    Give these to your optimizer (the sharded tables update inside backward).
    """
    fused_optimizer = getattr(model, "fused_optimizer", None)
    params = getattr(fused_optimizer, "params", {}) if fused_optimizer is not None else {}
    fused = {id(p) for p in params.values()}
    return [p for p in model.parameters() if id(p) not in fused and p.requires_grad]
