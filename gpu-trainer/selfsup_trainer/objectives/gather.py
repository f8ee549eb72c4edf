"""Negatives from every rank for contrastive losses under DDP.

Without this each rank's InfoNCE sees only its own micro-batch as negatives, so 8 GPUs of batch 64
train like batch 64, not 512. ``torch.distributed.nn.functional.all_gather`` keeps the gradient
flowing back to the rank that produced each row.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


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
