"""The one ``pretrain`` skeleton: resume, seed, join the group, read the data, size the run,
train, describe, probe, export. What differs per modality is a :class:`Modality`'s hooks.

Each modality's ``pipeline.pretrain`` is a thin call to :func:`pretrain` with its hooks.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .batches import BatchStream
from .checkpoint import find_checkpoint, load_checkpoint
from .config import TrainConfig
from .ddp import distributed, init_distributed, leave_group, pick_device
from .engine import StepInfo, TrainResult, train
from .objective import Pretext

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
    saved = type(config).from_dict(state["config"])  # a TrainConfig, or fine-tuning's config
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
    data: Path
    out_dir: Path


def start_run(
    config: TrainConfig,
    data: Path,
    out_dir: Path,
    resume: str | Path | None,
    log: Callable[[str], None],
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
    return Run(config, state, checkpoint, rank, world, log if rank == 0 else quiet, data, out_dir)


def encoder_fields(
    config: TrainConfig, pooling: str, inputs: list[str], **extra: Any
) -> dict[str, Any]:
    """The manifest's leading fields: what the encoder takes and returns (``extra`` after
    ``normalize``), its objective and preset."""
    return {
        "modality": config.modality,
        "dims": config.hidden,
        "pooling": pooling,
        "normalize": True,
        **extra,
        "inputs": inputs,
        "output": "embeddings",
        "objective": config.objective,
        "preset": config.preset,
    }


def final_metrics(result: TrainResult, throughput_key: str) -> dict[str, float]:
    """The manifest's metrics: held-out metrics, last loss, steps and units per second."""
    return {
        **result.metrics,
        "final_loss": result.losses[-1],
        "steps": result.steps,
        throughput_key: result.tokens_per_second,
    }


class Modality(ABC):
    """One run's per-modality steps; :func:`pretrain` calls them in order (state may be kept
    on ``self`` between them)."""

    throughput_key = "tokens_per_second"  # the manifest's metrics key for units per second

    @abstractmethod
    def load(self, run: Run) -> tuple[Any, Any]:
        """Read the data: (training set, held-out set), each with ``len()`` and ``lengths``."""

    @abstractmethod
    def build(self, run: Run) -> Pretext:
        """The pretext to train (fresh, or with a version's weights)."""

    @abstractmethod
    def describe(self, run: Run, pretext: Pretext) -> dict[str, Any]:
        """The manifest's fields before ``config`` and ``metrics``."""

    def extra_metrics(self) -> dict[str, float]:
        """Metrics :meth:`describe` measured, appended to the training metrics."""
        return {}

    @abstractmethod
    def probe(self, run: Run, pretext: Pretext, eval_path: Path) -> dict[str, float]:
        """kNN/linear probe accuracies of the final encoder on a labeled set."""

    @abstractmethod
    def export(self, run: Run, pretext: Pretext, fields: dict[str, Any]) -> dict[str, Any]:
        """Export with parity gates; returns the manifest."""


def pretrain(
    modality: Modality,
    config: TrainConfig,
    data: str | Path,
    out_dir: str | Path,
    *,
    resume: str | Path | None = None,
    stop_at: int | None = None,
    callback: Callable[[StepInfo], Any] | None = None,
    log: Callable[[str], None] = print,
    default_checkpoints: int = 0,
    eval_path: Path | None = None,
) -> dict[str, Any] | None:
    """Train an encoder on ``data`` and export it to ``out_dir``.

    Args:
        modality: the modality's hooks.
        config: training config (resolved here); on resume the checkpoint's config is used,
            except ``checkpoint_every``/``log_every``/``eval_every``.
        data: dataset file.
        out_dir: artifact folder (also holds ``checkpoints/``).
        resume: checkpoint folder or run folder to continue from.
        stop_at: stop after this many steps without exporting (preemption drill).
        callback: per-step progress hook.
        log: progress sink.
        default_checkpoints: with ``checkpoint_every`` 0, checkpoint about this many times over
            the run (its length is known only here when it is given in epochs).
        eval_path: labeled probe set; kNN/linear probe accuracies of the final encoder go into
            the manifest's metrics.

    Returns:
        The manifest, or None when stopped early or on a non-zero DDP rank.
    """
    run = start_run(config, Path(data), Path(out_dir), resume, log)
    config, log = run.config, run.log
    train_set, heldout = modality.load(run)
    per_epoch = BatchStream(train_set, config.batch_size, config.seed, 1).per_epoch
    total_steps = total_steps_of(config, per_epoch)
    if not config.checkpoint_every and default_checkpoints:
        config.checkpoint_every = default_checkpoint_every(total_steps, default_checkpoints)
    pretext = modality.build(run)
    result = train(
        pretext, train_set, heldout, config, total_steps, run.out_dir, run.resume_state,
        callback, stop_at, log,
    )  # fmt: skip
    leave_group(run.world)
    if result.steps < total_steps or run.rank != 0:
        return None
    fields = {
        **modality.describe(run, pretext),
        "config": {**config.to_dict(), "steps": total_steps},
        "metrics": {**final_metrics(result, modality.throughput_key), **modality.extra_metrics()},
    }
    if eval_path is not None:
        fields["metrics"].update(modality.probe(run, pretext, Path(eval_path)))
    log("metrics: " + " ".join(f"{k} {v:.4g}" for k, v in fields["metrics"].items()))
    return modality.export(run, pretext, fields)
