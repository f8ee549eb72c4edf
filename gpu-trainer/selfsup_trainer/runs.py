"""What every modality's ``pretrain`` does the same way: pick up a checkpoint's config, seed,
silence non-zero DDP ranks, and size the run (steps, default checkpoint interval)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import find_checkpoint, load_checkpoint
from .config import TrainConfig

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
