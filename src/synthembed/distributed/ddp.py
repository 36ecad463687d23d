"""Data-parallel training (DDP) with synthembed layers: per-id state equal on every rank.

Every synthembed layer is an ``nn.Module`` whose parameters
:class:`torch.nn.parallel.DistributedDataParallel` averages like any other
(dense gradients, and sparse ones with ``sparse=True``). What DDP does not know
is the per-id state of :class:`~synthembed.SyntheticEmbeddingLayer`: ``counts``
(training sightings per id, which decide cold ids) grow on each rank with that
rank's ids. DDP's default ``broadcast_buffers=True`` copies rank 0's buffers over
the others' at every forward, so the other ranks' sightings are lost and an id
seen only on rank 1 stays cold for ever. Here instead each rank's *increments*
are summed:

- :func:`sync_state` all-reduces the count increments since the last call, so
  every rank holds the counts a single process would hold after the same global
  batches (it also checks that the ranks agree on the layer's size and step);
- :func:`data_parallel` wraps a model in DDP with ``broadcast_buffers=False``
  and calls :func:`sync_state` after every ``sync_every`` training forwards;
- fused tables (``fused_optimizer=``), which update their rows inside backward
  and give DDP no gradient to average, apply the average of all ranks' row
  updates at the end of each backward instead (:func:`data_parallel` arranges it);
- :func:`add_items` adds new ids on every rank and makes the grown tables equal
  (rank 0's draws win), so cold items are added under DDP without drift.

The all-reduce moves one int64 per id of the layer (8 MB for a million ids);
``sync_every=N`` spreads that cost over N steps, at the price of counts that lag
by up to N steps between syncs (a forward that reads counts, such as eval-mode
cold detection, sees only local increments until then).
"""

from __future__ import annotations

import gc
import inspect
import weakref
from typing import Any, cast

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from synthembed import _kernels
from synthembed._validation import check_int
from synthembed.errors import ConfigError
from synthembed.layers.id_state import COUNT_CAP
from synthembed.layers.synthetic_embedding import SyntheticEmbeddingLayer
from synthembed.optim.fused import FusedRows

__all__ = ["add_items", "data_parallel", "sync_state"]

# Each layer's counts at its last sync (equal on every rank then): the baseline
# that this rank's increments are measured from. Weak keys: a dropped layer frees its entry.
_BASELINES: weakref.WeakKeyDictionary[nn.Module, torch.Tensor] = weakref.WeakKeyDictionary()
_DDP_ARGS = inspect.signature(DistributedDataParallel.__init__).parameters
_BUFFER_SYNC = ("broadcast_buffers", "forward_sync_buffers")


def _unwrap(module: nn.Module) -> nn.Module:
    inner = getattr(module, "module", None)
    return inner if isinstance(module, DistributedDataParallel) and inner is not None else module


def _layers(module: nn.Module) -> list[SyntheticEmbeddingLayer]:
    return [m for m in _unwrap(module).modules() if isinstance(m, SyntheticEmbeddingLayer)]


def _check_ready(owner: str) -> None:
    if not dist.is_available() or not dist.is_initialized():
        raise ConfigError(
            f"{owner} needs torch.distributed initialised (torch.distributed.init_process_group, "
            "or a launch with torchrun); no default process group exists."
        )


def _check_agree(layers: list[SyntheticEmbeddingLayer], group: Any) -> None:
    """Every rank holds the same layers, of the same size and at the same step; else raise on all."""
    mine = torch.tensor([len(layers)] + [v for m in layers for v in _summary(m)], dtype=torch.long)
    world = dist.get_world_size(group)
    size = torch.tensor([mine.numel()], dtype=torch.long)
    sizes = [torch.zeros(1, dtype=torch.long) for _ in range(world)]
    dist.all_gather(sizes, size, group=group)
    longest = int(max(int(s) for s in sizes))
    padded = torch.full((longest,), -1, dtype=torch.long)
    padded[: mine.numel()] = mine
    gathered = [torch.zeros(longest, dtype=torch.long) for _ in range(world)]
    dist.all_gather(gathered, padded, group=group)
    if all(torch.equal(g, gathered[0]) for g in gathered):
        return
    described = "; ".join(
        f"rank {r}: " + _describe(g[: int(s)].tolist())
        for r, (g, s) in enumerate(zip(gathered, sizes))
    )
    raise ConfigError(
        "sync_state needs the same SyntheticEmbeddingLayers on every rank, with the same "
        f"num_embeddings and step; got {described}. Call add_items on every rank "
        "(synthembed.distributed.add_items) and run the same number of training forwards."
    )


def _summary(layer: SyntheticEmbeddingLayer) -> tuple[int, int, int, int]:
    """What every rank must agree on: size, step, and which per-id buffers exist."""
    return (
        layer.num_embeddings,
        int(layer.step),
        int(layer.counts is not None),
        int(layer.added is not None),
    )


def _describe(values: list[int]) -> str:
    n, rest = values[0], values[1:]
    parts = [
        f"(num_embeddings={size}, step={step}, counts={bool(c)}, added={bool(a)})"
        for size, step, c, a in zip(rest[0::4], rest[1::4], rest[2::4], rest[3::4])
    ]
    return f"{n} layer(s) " + ", ".join(parts)


def sync_state(module: nn.Module, *, group: Any = None) -> None:
    """Make the per-id state of every synthetic layer in ``module`` equal on all ranks.

    The first call for a layer starts tracking it: its buffers (``counts``,
    ``added``, ``step``, side features) are broadcast from rank 0, which must hold
    the state every rank should start from (equal on all ranks, as after
    building the model under one seed or loading one checkpoint). Each later call
    sums the ranks' count increments since the previous call (an all-reduce of
    one int64 per id), so every rank holds the counts of all ranks' ids. Call it
    on every rank at the same point, e.g. after ``optimizer.step()``, or let
    :func:`data_parallel` call it.

    Args:
        module: a model, plain or wrapped in ``DistributedDataParallel``; every
            :class:`~synthembed.SyntheticEmbeddingLayer` in it is synced (other
            layers keep no per-id state).
        group: the process group (default: the world).

    Raises:
        ConfigError: ``torch.distributed`` is not initialised, or the ranks hold
            different layers, sizes (``add_items`` called on some ranks only) or
            steps (a different number of training forwards); raised on every rank.

    Example:
        Under ``torchrun`` (see ``docs/guides/distributed.md``)::

            model = DistributedDataParallel(model, broadcast_buffers=False)
            sync_state(model)                      # start: rank 0's state
            for ids, target in batches:
                loss_fn(model(ids), target).backward()
                opt.step(); opt.zero_grad()
                sync_state(model)                  # every rank: the global counts
    """
    _check_ready("sync_state")
    layers = _layers(module)
    _check_agree(layers, group)
    for layer in layers:
        with torch.no_grad():
            base = _BASELINES.get(layer)
            counts = layer.counts  # (num_embeddings,) compact ints, or None: nothing counted
            if base is None or counts is None or base.shape != counts.shape:
                _broadcast_state(layer, group)
            else:
                delta = (counts - base).long()  # this rank's sightings since the last sync
                dist.all_reduce(delta, group=group)
                counts.copy_((base.long() + delta).clamp_(max=COUNT_CAP))  # saturating, as counted
                layer.refresh_id_state()
            if layer.counts is not None:
                _BASELINES[layer] = layer.counts.clone()


def _broadcast_state(layer: SyntheticEmbeddingLayer, group: Any) -> None:
    src = 0 if group is None else dist.get_global_rank(group, 0)
    for buffer in layer.buffers():
        dist.broadcast(buffer, src=src, group=group)
    layer.refresh_id_state()


def data_parallel(
    module: nn.Module, *, sync_every: int = 1, group: Any = None, **ddp_options: Any
) -> DistributedDataParallel:
    """Wrap ``module`` in ``DistributedDataParallel``, keeping per-id state equal on all ranks.

    DDP broadcasts rank 0's parameters and buffers when it wraps the module, so
    every rank starts equal; then its buffers are left alone
    (``broadcast_buffers=False``) and :func:`sync_state` sums the ranks' count
    increments after every ``sync_every``-th forward that can train (training
    mode, gradients enabled). Parameters train as under plain DDP.

    Args:
        module: the model (on its device); it holds synthembed layers anywhere.
        sync_every: forwards between count syncs (1: after each, exactly the
            counts of one process seeing the global batch).
        group: the process group (default: the world).
        ddp_options: passed to ``DistributedDataParallel`` (``device_ids``,
            ``find_unused_parameters=True`` for a ``"mixed"`` base, whose batches may
            reach only some of its tables...); ``broadcast_buffers`` (and
            ``forward_sync_buffers``) must stay False.

    Returns:
        The wrapped model (``.module`` is ``module``).

    Raises:
        ConfigError: ``torch.distributed`` is not initialised, ``sync_every < 1``, or
            ``broadcast_buffers=True`` or ``forward_sync_buffers=True`` (they would
            overwrite the other ranks' counts).
    """
    _check_ready("data_parallel")
    check_int("data_parallel", "sync_every", sync_every, 1)
    for key in _BUFFER_SYNC:
        if ddp_options.get(key, False):
            raise ConfigError(
                f"data_parallel got {key}=True: DDP would copy rank 0's buffers over the "
                "others' at every forward, losing their id counts; leave it False (sync_state "
                "sums the counts instead)."
            )
    # torch >= 2.13 names it forward_sync_buffers (broadcast_buffers is deprecated there).
    key = "forward_sync_buffers" if "forward_sync_buffers" in _DDP_ARGS else "broadcast_buffers"
    ddp_options[key] = False
    if group is not None:
        ddp_options["process_group"] = group
    tables = _fused_tables(module)
    ignored: list[str] = []
    for name, _, rows in tables:
        # Fused tables get no .grad for DDP to average: their updates are averaged at the
        # end of backward (_FusedExchange), so DDP leaves them and their state alone.
        dot = f"{name}." if name else ""
        ignored += [f"{dot}weight", *(f"{dot}fused.{b}" for b, _ in rows.named_buffers())]
    before = _kernels.ddp_ignore(module, ignored) if tables else None
    try:
        wrapped = DistributedDataParallel(module, **ddp_options)
    except BaseException:
        if before is not None:  # the module as it was: nothing changed on a refused option
            _kernels.ddp_ignore(module, before)
        raise
    exchange: _FusedExchange | None = None
    if tables:
        # A group of their own: the exchange runs beside DDP's asynchronous all-reduces.
        ranks = dist.get_process_group_ranks(group if group is not None else dist.group.WORLD)
        exchange = _FusedExchange(tables, dist.new_group(ranks=ranks))
        # Dropping the wrapper ends the exchange: the bare module updates its tables again.
        weakref.finalize(wrapped, exchange.release)
    sync_state(module, group=group)
    forwards = [0]

    def after_forward(ddp: nn.Module, args: Any, output: Any) -> None:
        # ``ddp``, not ``wrapped``: a closure over the wrapper would keep it (and its
        # gradient hooks on the parameters) alive after the user drops it.
        if not (ddp.training and torch.is_grad_enabled()):
            return
        if exchange is not None:
            exchange.arm(output)
        forwards[0] += 1
        if forwards[0] % sync_every == 0:
            sync_state(module, group=group)

    wrapped.register_forward_hook(after_forward)
    return wrapped


def _fused_tables(module: nn.Module) -> list[tuple[str, nn.Module, FusedRows]]:
    """``(name, owner, state)`` of every fused table of ``module``, in module order."""
    return [
        (prefix, m, m.fused)
        for prefix, m in module.named_modules()
        if isinstance(getattr(m, "fused", None), FusedRows)
    ]


class _FusedExchange:
    """Fused tables updated with the rows of every rank, averaged, once per backward.

    A fused table (``fused_optimizer=``) updates its rows inside backward from
    this rank's gradient alone, and gives DDP nothing to average. Here its
    updates are held back (``FusedRows.interceptor``) until the backward ends;
    then every rank, in the same order, gathers each table's distinct rows and
    gradient sums from all ranks, adds them per row, divides by the world size
    (DDP's average) and applies that one update. The exchange is armed by a hook
    on the model's output, so it runs on every rank that calls backward, also on
    a rank whose batch never reached a table (a ``"mixed"`` base's, or ids that
    were all padding): that rank sends no rows and still applies the others'.
    Several lookups of one table in a forward make one update per backward.
    """

    def __init__(self, tables: list[tuple[str, nn.Module, FusedRows]], group: Any) -> None:
        self.tables = tables
        self.group = group
        self.pending: dict[FusedRows, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self.queued = False
        for _, _, rows in tables:
            rows.interceptor = self.hold

    def hold(
        self, rows: FusedRows, weight: torch.Tensor, ids: torch.Tensor, grad: torch.Tensor
    ) -> None:
        # In the table's dtype: every rank sends the same dtype (autocast may differ).
        self.pending.setdefault(rows, []).append((ids, grad.to(weight.dtype)))

    def release(self) -> None:
        """Give the tables back their own updates (the wrapper is gone)."""
        for _, _, rows in self.tables:
            if rows.interceptor == self.hold:
                rows.interceptor = None
        self.pending = {}

    def arm(self, output: Any) -> None:
        """Run :meth:`flush` at the end of the backward that reaches ``output``."""
        self.queued = False  # a backward that raised may have left it set
        tensors = _grad_tensors(output)
        if tensors is None:
            raise ConfigError(
                f"data_parallel: the model returned a {type(output).__name__}; fused tables "
                "apply their updates at the end of the backward that reaches the output, "
                "so it must be a tensor, or a list, tuple or dict of tensors."
            )
        for tensor in tensors:
            tensor.register_hook(self._queue)

    def _queue(self, grad: torch.Tensor) -> None:
        if not self.queued:
            self.queued = True
            _kernels.at_backward_end(self.flush)

    def flush(self) -> None:
        self.queued = False
        pending, self.pending = self.pending, {}
        held = [pending.get(rows, []) for _, _, rows in self.tables]
        mine = torch.tensor([sum(int(i.numel()) for i, _ in h) for h in held], dtype=torch.long)
        world = dist.get_world_size(self.group)
        sizes = [torch.zeros_like(mine) for _ in range(world)]
        dist.all_gather(sizes, mine, group=self.group)
        every = torch.stack(sizes)  # (world, tables): rows each rank holds per table
        for t, ((_, owner, rows), h) in enumerate(zip(self.tables, held)):
            if int(every[:, t].sum()) == 0:
                continue
            weight = cast(torch.Tensor, owner.weight)
            ids = torch.cat([i for i, _ in h]) if h else weight.new_zeros(0, dtype=torch.long)
            grad = torch.cat([g for _, g in h]) if h else weight.new_zeros(0, weight.shape[1])
            distinct, summed = _gather_rows(ids, grad, every[:, t].tolist(), self.group)
            rows.step_rows(weight, distinct, summed / world)


def _grad_tensors(output: Any) -> list[torch.Tensor] | None:
    """The tensors in ``output`` (a tensor, or lists, tuples and dicts of them) that
    backward can reach; None when ``output`` holds something else."""
    if isinstance(output, torch.Tensor):
        return [output] if output.requires_grad else []
    if not isinstance(output, (dict, list, tuple)):
        return None
    found: list[torch.Tensor] = []
    for item in output.values() if isinstance(output, dict) else output:
        inner = _grad_tensors(item)
        if inner is None and not isinstance(item, (int, float, str, bool, type(None))):
            return None
        found += inner or []
    return found


def _gather_rows(
    ids: torch.Tensor, grad: torch.Tensor, sizes: list[int], group: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every rank's ``(ids, grad)`` (``sizes[r]`` rows on rank r): distinct ids, sorted,
    and their summed gradient rows."""
    longest = max(sizes)
    pad_ids = ids.new_zeros(longest)
    pad_ids[: ids.numel()] = ids
    pad_grad = grad.new_zeros(longest, grad.shape[1])  # (longest, D)
    pad_grad[: ids.numel()] = grad
    all_ids = [torch.empty_like(pad_ids) for _ in sizes]
    all_grad = [torch.empty_like(pad_grad) for _ in sizes]
    dist.all_gather(all_ids, pad_ids, group=group)
    dist.all_gather(all_grad, pad_grad, group=group)
    every_ids = torch.cat([r[:n] for r, n in zip(all_ids, sizes)])
    every_grad = torch.cat([g[:n] for g, n in zip(all_grad, sizes)])
    distinct, where = torch.unique(every_ids, sorted=True, return_inverse=True)  # (U,), (N,)
    summed = every_grad.new_zeros(distinct.numel(), grad.shape[1]).index_add_(0, where, every_grad)
    return distinct, summed


def add_items(
    layer: nn.Module,
    side_features: Any = None,
    *,
    num_items: int | None = None,
    group: Any = None,
    **technique_kwargs: Any,
) -> torch.Tensor:
    """:meth:`SyntheticEmbeddingLayer.add_items` on every rank, with equal results.

    Every rank calls this with the same new items. Counts are synced first
    (:func:`sync_state`), each rank grows its layer, and then the layer's
    parameters and buffers are broadcast from rank 0, so tables grown with random
    rows (a hash base's importance weights, say) are equal on every rank. The
    layer's parameters are new objects afterwards: wrap the model in DDP again
    and rebuild its optimizer, as after ``add_items`` in one process.

    Args:
        layer: the synthetic layer (not the DDP wrapper: unwrap with ``.module``).
        side_features, num_items, technique_kwargs: as for ``add_items``; the same on
            every rank.
        group: the process group (default: the world).

    Returns:
        The new ids, a ``(n,)`` long tensor (the same on every rank).

    Raises:
        ConfigError: ``layer`` is not a SyntheticEmbeddingLayer, ``torch.distributed``
            is not initialised, or the ranks disagree on the number of new items.
    """
    if not isinstance(layer, SyntheticEmbeddingLayer):
        raise ConfigError(
            f"add_items takes a SyntheticEmbeddingLayer; got {type(layer).__name__} "
            "(unwrap a DistributedDataParallel model with .module and pass the layer)."
        )
    _check_ready("add_items")
    # A dropped DDP wrapper, still in a reference cycle, holds gradient hooks on the old
    # tables; collect it before they grow, so the next wrapper starts from fresh ones.
    gc.collect()
    sync_state(layer, group=group)
    new_ids = layer.add_items(side_features, num_items=num_items, **technique_kwargs)
    _check_agree([layer], group)  # the same number of new ids everywhere
    src = 0 if group is None else dist.get_global_rank(group, 0)
    with torch.no_grad():
        for tensor in [*layer.parameters(), *layer.buffers()]:
            dist.broadcast(tensor.data, src=src, group=group)
    layer.refresh_id_state()
    if layer.counts is not None:
        _BASELINES[layer] = layer.counts.clone()
    return new_ids
