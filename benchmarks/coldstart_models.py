"""Peer models of the cold-start benchmark that live only here (DeepMusic, DropoutNet).

Both start from a trained plain BPR model, as in their papers. The hand-written
content MLP and LightFM live in :mod:`synthembed.recsys.peers` (the demo shows
them too).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from synthembed.recsys.models import MatrixFactorization, seeded
from synthembed.recsys.split import ColdStartSplit

DIM = 64


def deepmusic_scores(
    plain: MatrixFactorization, split: ColdStartSplit, feats: np.ndarray, seed: int, *, wd: float
) -> np.ndarray:
    """DeepMusic (van den Oord et al., 2013): an MLP regresses BPR item vectors from content.

    Warm items keep their BPR vectors; cold items get the MLP's prediction.
    """
    users = plain.user_vectors()
    items = plain.item_vectors()
    trained = np.flatnonzero(split.item_train_counts() > 0)
    x = torch.as_tensor(feats)
    y = torch.as_tensor(items)
    with seeded(seed):
        mlp = nn.Sequential(nn.Linear(x.shape[1], 256), nn.ReLU(), nn.Linear(256, DIM))
        opt = torch.optim.Adam(mlp.parameters(), lr=1e-3, weight_decay=wd)
        idx = torch.as_tensor(trained)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(60):
            order = idx[torch.randperm(len(idx), generator=gen)]
            for b in range(0, len(order), 256):
                batch = order[b : b + 256]
                loss = (mlp(x[batch]) - y[batch]).pow(2).sum(-1).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            pred = mlp(x).numpy()
    out = items.copy()
    cold = split.cold_items
    out[cold] = pred[cold]
    return users @ out.T


def dropoutnet_scores(
    plain: MatrixFactorization,
    split: ColdStartSplit,
    feats: np.ndarray,
    seed: int,
    *,
    dropout: float,
    epochs: int,
) -> np.ndarray:
    """DropoutNet (Volkovs et al., 2017), short: f_U(U_u) . f_V([V_i or 0], content_i) ~ U_u . V_i.

    In training the item's preference vector is zeroed with probability
    ``dropout``; cold items are scored with it zeroed.
    """
    u_vec = torch.as_tensor(plain.user_vectors())
    v_vec = torch.as_tensor(plain.item_vectors())
    content = torch.as_tensor(feats)
    hidden = 256
    with seeded(seed):
        f_u = nn.Sequential(nn.Linear(DIM, hidden), nn.Tanh(), nn.Linear(hidden, DIM))
        f_v = nn.Sequential(
            nn.Linear(DIM + content.shape[1], hidden), nn.Tanh(), nn.Linear(hidden, DIM)
        )
        opt = torch.optim.Adam([*f_u.parameters(), *f_v.parameters()], lr=1e-3)
        pairs = torch.as_tensor(split.train)
        pool = torch.as_tensor(np.unique(split.train[:, 1]))
        gen = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            order = torch.randperm(len(pairs), generator=gen)
            for b in range(0, len(order), 1024):
                batch = pairs[order[b : b + 1024]]
                u = batch[:, 0]
                # Each user with its positive item and one random item.
                i = torch.stack(
                    [batch[:, 1], pool[torch.randint(len(pool), (len(batch),), generator=gen)]], 1
                )  # (B, 2)
                target = (u_vec[u].unsqueeze(1) * v_vec[i]).sum(-1)  # (B, 2)
                keep = (torch.rand(i.shape, generator=gen) >= dropout).unsqueeze(-1).float()
                v_in = torch.cat([v_vec[i] * keep, content[i]], -1)  # (B, 2, D + F)
                pred = (f_u(u_vec[u]).unsqueeze(1) * f_v(v_in)).sum(-1)
                loss = (pred - target).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            v_in = v_vec.clone()
            v_in[torch.as_tensor(split.cold_items)] = 0.0
            item_out = f_v(torch.cat([v_in, content], -1))
            user_out = f_u(u_vec)
    return (user_out @ item_out.T).numpy()
