"""What every modality's ``pretrain`` does the same way: pick up a checkpoint's config, seed,
silence non-zero DDP ranks, and size the run (steps, default checkpoint interval)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from .checkpoint import find_checkpoint, load_checkpoint
from .config import TrainConfig
from .engine import TrainResult, distributed, init_distributed, pick_device

# Settings a resumed run takes from the new invocation rather than from the checkpoint.
RESUME_OVERRIDES = ("checkpoint_every", "log_every", "eval_every")


def resume_config(
    config: TrainConfig, resume: str | Path | None, log: Callable[[str], None]
) -> tuple[TrainConfig, dict[str, Any] | None, Path | None]:
    """The config to run with, the checkpoint state to continue from and its folder.

    A fresh run (``resume`` None) keeps ``config``; a resumed one uses the checkpoint's config
    except :data:`RESUME_OVERRIDES`, so a resume cannot silently change the model or the data.
    """
    if resume is None:
        return config, None, None
    checkpoint = find_checkpoint(resume)
    state = load_checkpoint(checkpoint)
    saved = TrainConfig.from_dict(state["config"])
    for key in RESUME_OVERRIDES:
        setattr(saved, key, getattr(config, key))
    log(f"resuming from {checkpoint} at step {state['step']}")
    return saved, state, checkpoint


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def quiet(_message: str) -> None:
    """Log sink for DDP ranks other than 0."""


def total_steps_of(config: TrainConfig, batches_per_epoch: int) -> int:
    """Optimizer steps in the run: ``steps``, else ``epochs`` passes over the batches."""
    if config.steps is not None:
        return config.steps
    return max(1, math.ceil(config.epochs * batches_per_epoch / config.grad_accum))


def default_checkpoint_every(total_steps: int, checkpoints: int) -> int:
    """The interval that writes about ``checkpoints`` checkpoints over ``total_steps`` steps."""
    return max(1, total_steps // checkpoints)


@dataclass
class Run:
    """A started run: its config (the checkpoint's on resume), what to resume and who we are."""

    config: TrainConfig
    resume_state: dict[str, Any] | None
    checkpoint: Path | None
    rank: int
    world: int
    log: Callable[[str], None]


def start_run(
    config: TrainConfig, out_dir: Path, resume: str | Path | None, log: Callable[[str], None]
) -> Run:
    """Resume (or not), resolve, join torchrun's group, quiet other ranks, make ``out_dir``, seed.

    The group is joined here, before any rank-0-only work (text's tokenizer training), so that
    the other ranks can wait for it; :func:`leave_group` ends it after training.
    """
    config, state, checkpoint = resume_config(config, resume, log)
    config.resolve()
    rank, local_rank, world = distributed()
    init_distributed(pick_device(config, local_rank))
    out_dir.mkdir(parents=True, exist_ok=True)
    seed_all(config.seed)
    return Run(config, state, checkpoint, rank, world, log if rank == 0 else quiet)


def leave_group(world: int) -> None:
    """Rank 0 evaluates at the end of training; every rank leaves the group together."""
    if world > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def final_metrics(result: TrainResult, throughput_key: str) -> dict[str, float]:
    """The manifest's metrics: held-out metrics, last loss, steps and units per second."""
    return {
        **result.metrics,
        "final_loss": result.losses[-1],
        "steps": result.steps,
        throughput_key: result.tokens_per_second,
    }
