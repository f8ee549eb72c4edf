"""Contrastive losses and embedding-space metrics every modality shares.

:func:`info_nce` (SimCSE), :func:`nt_xent` (SimCLR for images and series), and Wang & Isola's
(2020) :func:`alignment` / :func:`uniformity`. Under DDP, :func:`gather_rows` brings every rank's
rows in as negatives: without it each rank's InfoNCE sees only its own micro-batch as
negatives, so 8 GPUs of batch 64 train like batch 64, not 512.
``torch.distributed.nn.functional.all_gather`` keeps the gradient flowing back to the rank that
produced each row.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def gather_rows(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """All ranks' rows of ``x``, and where this rank's rows start.

    Args:
        x: [n, dims] this rank's rows.

    Returns:
        ([sum of n over ranks, dims], offset of this rank's first row). Outside a process group,
        or when ranks hold different row counts (the ragged end of an epoch), just ``(x, 0)``.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x, 0
    sizes = [
        torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(dist.get_world_size())
    ]
    dist.all_gather(sizes, torch.tensor([len(x)], device=x.device))
    if any(int(s) != len(x) for s in sizes):
        return x, 0  # every rank sees the same sizes, so every rank takes this branch together
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x)), dist.get_rank() * len(x)


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric-free InfoNCE as in SimCSE: row i of ``a`` must pick row i of ``b``.

    Args:
        a: [batch, dims] L2-normalised anchors.
        b: [batch, dims] L2-normalised positives (row-aligned with ``a``); under DDP the
            other ranks' ``b`` rows join as negatives.
        temperature: softmax temperature (SimCSE uses 0.05).

    Returns:
        Scalar mean loss.
    """
    candidates, offset = gather_rows(b)  # under DDP, every rank's positives are negatives too
    logits = (a @ candidates.T).float() / temperature  # cosines: rows are unit vectors
    return F.cross_entropy(logits, torch.arange(len(a), device=a.device) + offset)


def nt_xent(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """Normalized-temperature cross entropy over 2N views.

    Rows ``i`` and ``i + N`` are the two views of image ``i``. Each row's softmax runs over the
    other 2N - 1 rows: its positive and 2N - 2 negatives (itself is excluded).

    Args:
        z: [2N, dims] projections (normalized here; computed in float32); under DDP every
            rank's rows are negatives for every other rank's.
        temperature: softmax temperature (``simclr_temperature``).

    Returns:
        Scalar mean loss over the 2N rows.
    """
    if z.shape[0] % 2:
        raise ValueError(f"nt_xent needs an even number of rows (two views each), got {len(z)}")
    z = F.normalize(z.float(), dim=1)
    n = z.shape[0] // 2
    everyone, offset = gather_rows(z)  # under DDP, other ranks' views are negatives too
    logits = z @ everyone.T / temperature
    rows = torch.arange(2 * n, device=z.device)
    self_mask = torch.zeros_like(logits, dtype=torch.bool)
    self_mask[rows, rows + offset] = True
    logits = logits.masked_fill(self_mask, float("-inf"))  # a view is not its own negative
    targets = (rows + n) % (2 * n) + offset
    return F.cross_entropy(logits, targets)


def alignment(a: torch.Tensor, b: torch.Tensor) -> float:
    """E ||f(x) - f(x+)||^2 over positive pairs (rows of a and b); lower is better. [n, d]."""
    return (a - b).norm(dim=1).pow(2).mean().item()


def uniformity(z: torch.Tensor, t: float = 2.0) -> float:
    """log E exp(-t ||f(x) - f(y)||^2) over distinct pairs; lower is better. [n, d]."""
    if len(z) < 2:
        return float("nan")
    return torch.pdist(z, p=2).pow(2).mul(-t).exp().mean().log().item()
