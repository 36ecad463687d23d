"""A MovieLens recommender trained on N processes: tables sharded by TorchRec, the rest DDP.

Users and movies each get a :class:`~synthembed.SyntheticEmbeddingLayer`; the movie
layer synthesizes vectors from genres (cold movies are served by it alone). With
``--sharding table_wise`` or ``row_wise`` the layers' base tables live in TorchRec
collections that ``DistributedModelParallel`` splits across the processes, while the
synthesizers stay replicated (DDP averages their gradients); with ``--sharding none``
the whole model is replicated (``synthembed.distributed.data_parallel``). Either way
the layers' per-id counts are summed over the processes after every step
(``synthembed.distributed.sync_state``), so cold-start decisions see all the data.

Run (one machine, two processes)::

    torchrun --nproc_per_node 2 examples/distributed_recsys.py --sharding table_wise

Two machines, two processes each (run on both, ``--node_rank 0`` and ``1``)::

    torchrun --nnodes 2 --nproc_per_node 2 --node_rank 0 \\
        --rdzv_backend c10d --rdzv_endpoint HOST0:29500 examples/distributed_recsys.py

``python examples/distributed_recsys.py`` runs it as a single process (world size 1).
Guide: ``docs/guides/distributed.md``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

import synthembed as se
import synthembed.distributed as sd
from synthembed.data import movielens
from synthembed.recsys.features import genre_multi_hot


class TwoTower(nn.Module):
    """Score = <user vector, movie vector>; both vectors from synthetic layers."""

    def __init__(self, num_users: int, genres: torch.Tensor, dim: int) -> None:
        super().__init__()
        self.users = se.SyntheticEmbeddingLayer(num_users, dim, synthesis_rate=0.0)
        self.items = se.SyntheticEmbeddingLayer(
            genres.shape[0], dim, side_features=genres, synthesis_rate=0.2, base="qr",
            train_synthetic_fraction=0.2, cold_threshold=1,
        )  # fmt: skip

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``(B,)`` users, ``(B, 1 + negatives)`` items -> ``(B, 1 + negatives)`` scores."""
        u = self.users(users)  # (B, D)
        v = self.items(items)  # (B, 1 + n, D): one call (one collective) for all items
        return (v * u.unsqueeze(1)).sum(-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sharding", default="table_wise", choices=["table_wise", "row_wise", "none"]
    )
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=1024, help="per process")
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args()

    torch.set_num_threads(1)  # one core per process
    if "RANK" in os.environ:  # launched by torchrun: it set RANK, WORLD_SIZE, MASTER_ADDR...
        dist.init_process_group("gloo")
    else:  # a single process: a group of one
        store = os.path.join(tempfile.mkdtemp(), "store")
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1)
    rank, world = dist.get_rank(), dist.get_world_size()

    data = movielens()  # every rank reads the same data and the same seeded split
    pairs = data.positives(min_rating=4.0)
    users, user_ids = np.unique(pairs["user_id"].to_numpy(), return_inverse=True)
    item_index = {item: i for i, item in enumerate(data.items.index)}
    item_ids = pairs["item_id"].map(item_index).to_numpy()
    genres, _ = genre_multi_hot(list(data.items["genres"]))
    rng = np.random.default_rng(0)
    order = rng.permutation(len(pairs))
    test = order[: len(order) // 10]
    train = order[len(order) // 10 :]

    torch.manual_seed(0)  # the same initial model on every rank
    model = TwoTower(len(users), torch.as_tensor(genres, dtype=torch.float32), args.dim)
    if args.sharding == "none":
        # the user layer (rate 0) never runs its synthesizer: DDP must not wait for it
        trained: nn.Module = sd.data_parallel(model, find_unused_parameters=True)
        opt = torch.optim.Adagrad(model.parameters(), lr=args.lr)
    else:
        model.users.base = sd.TorchRecBase(model.users.base, name="users")
        model.items.base = sd.TorchRecBase(model.items.base, name="movies")
        trained = sd.shard(
            model, learning_rate=args.lr, optimizer="adagrad", sharding=args.sharding
        )
        opt = torch.optim.Adagrad(sd.replicated_parameters(trained), lr=args.lr)
        sd.sync_state(trained)

    u_all = torch.as_tensor(user_ids, dtype=torch.long)
    i_all = torch.as_tensor(item_ids, dtype=torch.long)
    num_items = len(item_index)
    step_size = args.batch_size * world
    steps = len(train) // step_size  # the same number of steps on every rank
    for epoch in range(args.epochs):
        shuffled = train[np.random.default_rng(epoch).permutation(len(train))]
        start, seen, total = time.perf_counter(), 0, 0.0
        for step in range(steps):
            # This rank's slice of the global batch.
            idx = shuffled[step * step_size + rank * args.batch_size :][: args.batch_size]
            users_b, pos = u_all[idx], i_all[idx]
            neg = torch.randint(0, num_items, (len(idx), 4))
            scores = trained(users_b, torch.cat([pos.unsqueeze(1), neg], dim=1))  # (B, 5)
            loss = -F.logsigmoid(scores[:, :1] - scores[:, 1:]).mean()  # BPR
            loss = loss + model.items.get_loss()  # the technique's own terms (autoencoder)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if args.sharding != "none":
                sd.sync_state(trained)  # data_parallel does it by itself
            seen += len(idx)
            total += float(loss)
        rate = torch.tensor([seen / (time.perf_counter() - start)])
        dist.all_reduce(rate)  # samples per second, all processes
        if rank == 0:
            print(
                f"epoch {epoch}: BPR loss {total / max(steps, 1):.4f}, {float(rate):,.0f} samples/s"
            )

    # Held-out pairs: how often the positive outscores a random movie (AUC estimate).
    model.eval()
    mine = test[rank::world][: len(test) // world]  # the same count on every rank
    with torch.no_grad():
        items = torch.stack([i_all[mine], torch.randint(0, num_items, (len(mine),))], dim=1)
        scores = trained(u_all[mine], items)
    hits = torch.tensor([float((scores[:, 0] > scores[:, 1]).sum()), float(len(mine))])
    dist.all_reduce(hits)
    if rank == 0:
        counts = model.items.counts
        trained_items = int((counts > 0).sum()) if counts is not None else -1
        print(f"held-out AUC {float(hits[0] / hits[1]):.3f} over {int(hits[1])} pairs; "
              f"{trained_items} of {num_items} movies seen in training (all ranks)")  # fmt: skip
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
