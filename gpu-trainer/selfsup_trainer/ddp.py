"""torchrun's process group, joined and left in one place for every modality.

``RANK``/``LOCAL_RANK``/``WORLD_SIZE`` come from torchrun; without them the run is one process
and nothing here does anything. Only rank 0 logs and writes.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from .config import TrainConfig


def distributed() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's environment; (0, 0, 1) when absent."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world


def init_distributed(device: torch.device) -> bool:
    """Join torchrun's process group if there is one; True when this call created it."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def pick_device(config: TrainConfig, local_rank: int) -> torch.device:
    if config.device == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={config.device!r} but CUDA is not available; use device=cpu")
    return torch.device(config.device)


def join_group(config: TrainConfig) -> tuple[int, int, torch.device, bool]:
    """(rank, world size, this rank's device, whether this call created the group)."""
    rank, local_rank, world = distributed()
    device = pick_device(config, local_rank)
    return rank, world, device, init_distributed(device)


def leave_group(world: int) -> None:
    """Rank 0 evaluates at the end of training; every rank leaves the group together."""
    if world > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
