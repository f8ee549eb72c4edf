"""The training loop: one readable function, :func:`train`.

AdamW (fused on CUDA), linear warmup then cosine/linear decay, gradient clipping and
accumulation, bf16 autocast on CUDA (fp32 on CPU), optional ``torch.compile``, torchrun DDP
(``RANK``/``WORLD_SIZE``; only rank 0 logs and writes), periodic evaluation and checkpoints.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .batches import BatchStream, step_generator
from .checkpoint import rng_state, save_checkpoint, set_rng_state
from .config import TrainConfig
from .ddp import join_group, leave_group
from .mfu import peak_bf16_flops
from .objective import Pretext


@dataclass
class StepInfo:
    """What the progress callback receives after every optimizer step."""

    step: int  # 1-based count of finished optimizer steps
    total_steps: int
    loss: float | None  # None between log points (reading it would sync the GPU every step)
    lr: float
    tokens_per_second: float
    mfu: float | None
    objective: str
    tokens: int  # real (non-padding) tokens this rank processed in this step
    metrics: dict[str, float] = field(default_factory=dict)


# A callback may return this to stop the run after checkpointing the step it was called for.
CHECKPOINT_AND_STOP = "checkpoint_and_stop"


@dataclass
class TrainResult:
    losses: list[float]
    metrics: dict[str, float]
    tokens_per_second: float
    steps: int
    stopped_early: bool = False  # the pretext asked to stop (early stopping), not preemption


def lr_lambda(config: TrainConfig, total_steps: int) -> Callable[[int], float]:
    warmup = round(config.warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        if config.schedule == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def make_optimizer(model: Pretext, config: TrainConfig, device: torch.device):
    # A group without its own "lr" (every group of a pretraining run) takes config.lr; the
    # schedule scales each group's lr by the same factor.
    groups = [g for g in model.param_groups(config.weight_decay) if g["params"]]
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.98), eps=1e-6, fused=fused)


def train(
    pretext: Pretext,
    corpus: Any,
    heldout: Any,
    config: TrainConfig,
    total_steps: int,
    run_dir: Path,
    resume_state: dict[str, Any] | None = None,
    callback: Callable[[StepInfo], str | None] | None = None,
    stop_at: int | None = None,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Run optimizer steps ``[start, min(stop_at, total_steps))``.

    Args:
        pretext: encoder + heads (on CPU; moved to the device here); each step's
            :class:`~selfsup_trainer.objective.Objective` comes from ``pretext.phase``.
        corpus / heldout: training and evaluation records (``len()`` and a ``lengths`` array
            used for length bucketing).
        config: resolved training config.
        total_steps: length of the LR schedule.
        run_dir: checkpoints go to ``run_dir/checkpoints/step-N`` (rank 0 only).
        resume_state: a loaded checkpoint to continue from.
        callback: called after every step with a :class:`StepInfo` (serve heartbeats).
        stop_at: stop after this many steps while keeping the schedule of ``total_steps``
            (simulates preemption; resume continues to ``total_steps``).

    Raises:
        FloatingPointError: the loss became NaN/inf; the message names the step.
    """
    rank, world, device, owns_group = join_group(config)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
    pretext.to(device)
    optimizer = make_optimizer(pretext, config, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config, total_steps))
    start, losses = 0, []
    if resume_state is not None:
        pretext.load_state_dict(resume_state["model"])
        optimizer.load_state_dict(resume_state["optimizer"])
        scheduler.load_state_dict(resume_state["scheduler"])
        set_rng_state(resume_state["rng"])
        start, losses = resume_state["step"], list(resume_state["losses"])
    model: torch.nn.Module = pretext
    if world > 1:
        # Phased objectives leave a head idle for part of the run.
        model = torch.nn.parallel.DistributedDataParallel(
            pretext,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=pretext.phased,
        )
    if config.compile:
        model = torch.compile(model)
    stream = BatchStream(corpus, config.batch_size, config.seed, config.bucket_batches, rank, world)
    # MFU needs a peak and a FLOP model (pretext.flops_per_unit; None where there is none).
    peak = peak_bf16_flops(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    end = total_steps if stop_at is None else min(stop_at, total_steps)
    pending: list[tuple[int, torch.Tensor]] = []  # losses not yet copied to the host
    window_tokens, window_padded, window_seqs, window_start = 0, 0, 0, time.perf_counter()
    tokens_per_second, mfu, metrics = 0.0, None, {}
    stopped_early = False
    run_tokens, run_time = 0, 0.0  # excludes evaluation and checkpoint time
    pretext.train()

    def flush_losses() -> None:
        for step_index, value in pending:
            loss = value.item()
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"non-finite loss ({loss}) at step {step_index + 1}; lower lr "
                    f"(now {config.lr}) or grad_clip, or check the corpus"
                )
            losses.append(loss)
        pending.clear()

    def save(done: int) -> None:
        flush_losses()
        if rank == 0:
            state = {
                "model": pretext.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng_state(),
                "step": done,
                "total_steps": total_steps,
                "losses": losses,
                "config": config.to_dict(),
            }
            path = run_dir / "checkpoints" / f"step-{done:06d}"
            extra = [p for p in [run_dir / "tokenizer.json"] if p.exists()]
            save_checkpoint(path, state, extra)

    for step in range(start, end):
        objective = pretext.phase(step, total_steps)
        step_loss = torch.zeros((), device=device)
        step_tokens = 0
        for micro in range(config.grad_accum):
            micro_step = step * config.grad_accum + micro
            batch = objective.collate(
                corpus, stream.get(micro_step), step_generator(config.seed, micro_step, rank)
            )
            real, padded, rows = objective.units(batch)
            step_tokens += real
            window_padded += padded
            window_seqs += rows
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            sync = micro == config.grad_accum - 1 or world == 1
            ctx = model.no_sync() if not sync else contextlib.nullcontext()
            with ctx:
                with autocast:
                    loss, _ = model(batch, objective)
                (loss / config.grad_accum).backward()
            step_loss += loss.detach() / config.grad_accum
        torch.nn.utils.clip_grad_norm_(pretext.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        pending.append((step, step_loss))
        window_tokens += step_tokens
        run_tokens += step_tokens
        done = step + 1
        last = done == end
        if done % config.log_every == 0 or last:
            flush_losses()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            elapsed = time.perf_counter() - window_start
            run_time += elapsed
            tokens_per_second = window_tokens * world / max(elapsed, 1e-9)
            seq = window_padded / max(1, window_seqs)  # mean padded length: attention cost
            per_unit = pretext.flops_per_unit(objective, seq) if peak is not None else None
            if peak is not None and per_unit is not None:
                mfu = tokens_per_second * per_unit / (peak * world)
            window_tokens, window_padded, window_seqs, window_start = 0, 0, 0, time.perf_counter()
            if rank == 0:
                mfu_text = f" mfu {mfu:.1%}" if mfu is not None else ""
                unit = objective.unit_name
                log(
                    f"step {done}/{total_steps} [{objective.name}] loss {losses[-1]:.4f} "
                    f"lr {scheduler.get_last_lr()[0]:.2e} {unit}/s {tokens_per_second:,.0f}"
                    f"{mfu_text}"
                )
        if config.eval_every and done % config.eval_every == 0 and not last:
            if rank == 0:
                metrics = pretext.evaluate(heldout, device)
                log(f"eval step {done}: " + " ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            stopped_early = agree(rank == 0 and pretext.should_stop(), world, device)
            window_start = time.perf_counter()
        checkpointed = bool(config.checkpoint_every) and (
            done % config.checkpoint_every == 0 or last or stopped_early
        )
        if checkpointed:
            save(done)
            window_start = time.perf_counter()
        if callback is not None:
            lr = scheduler.get_last_lr()[0]
            shown = losses[-1] if not pending else None
            request = callback(
                StepInfo(
                    step=done,
                    total_steps=total_steps,
                    loss=shown,
                    lr=lr,
                    tokens_per_second=tokens_per_second,
                    mfu=mfu,
                    objective=objective.name,
                    tokens=step_tokens,
                    metrics=metrics,
                )
            )
            # serve asks for this on SIGTERM: checkpoint now so another replica resumes from here.
            if request == CHECKPOINT_AND_STOP and not last:
                if not checkpointed:
                    save(done)
                break
        if stopped_early:
            log(f"early stopping at step {done}: no improvement in the last evaluations")
            break
    flush_losses()
    if rank == 0:
        metrics = pretext.evaluate(heldout, device)
    pretext.to("cpu")
    if owns_group:
        leave_group(world)
    average = run_tokens * world / run_time if run_time > 0 else tokens_per_second
    return TrainResult(losses, metrics, average, len(losses), stopped_early)


def agree(flag: bool, world: int, device: torch.device) -> bool:
    """Rank 0's decision, on every rank (only rank 0 evaluates)."""
    if world <= 1:
        return flag
    value = torch.tensor([int(flag)], device=device)
    torch.distributed.broadcast(value, 0)
    return bool(value.item())
