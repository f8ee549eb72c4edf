"""Contrastive losses under DDP see every rank's rows as negatives: two CPU processes (gloo) give
exactly the loss one process computes over the whole batch."""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from selfsup_trainer.losses import info_nce, nt_xent

N, DIMS, T = 4, 8, 0.1


def rows(seed: int) -> torch.Tensor:
    return F.normalize(
        torch.randn(2 * N, DIMS, generator=torch.Generator().manual_seed(seed)), dim=-1
    )


def _worker(rank: int, port: int, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        z = rows(rank).requires_grad_()
        a, b = z[:N], z[N:]
        simcse = info_nce(a, b, T)
        simclr = nt_xent(z, T)
        (simcse + simclr).backward()
        results[rank] = (simcse.item(), simclr.item(), float(z.grad.abs().sum()))
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_share_negatives():
    results = mp.Manager().dict()
    mp.spawn(_worker, args=(free_port(), results), nprocs=2, join=True)
    z0, z1 = rows(0), rows(1)
    # SimCSE: each rank's anchors against both ranks' positives.
    positives = torch.cat([z0[N:], z1[N:]])
    for rank, z in enumerate((z0, z1)):
        logits = z[:N] @ positives.T / T
        expected = F.cross_entropy(logits, torch.arange(N) + rank * N)
        assert abs(results[rank][0] - expected.item()) < 1e-5
    # NT-Xent: every row against all 4N rows but itself; the positive is its other view.
    everyone = torch.cat([z0, z1])
    for rank, z in enumerate((z0, z1)):
        logits = z @ everyone.T / T
        idx = torch.arange(2 * N)
        logits[idx, idx + rank * 2 * N] = float("-inf")
        expected = F.cross_entropy(logits, (idx + N) % (2 * N) + rank * 2 * N)
        assert abs(results[rank][1] - expected.item()) < 1e-5
    # The local-only loss differs, so the gathered negatives really took part.
    local = info_nce(z0[:N], z0[N:], T).item()
    assert abs(local - results[0][0]) > 1e-3
    assert all(results[r][2] > 0 for r in (0, 1))
