"""The training loop: one readable function, :func:`train`.

AdamW (fused on CUDA), linear warmup then cosine/linear decay, gradient clipping and
accumulation, bf16 autocast on CUDA (fp32 on CPU), optional ``torch.compile``, torchrun DDP
(``RANK``/``WORLD_SIZE``; only rank 0 logs and writes), periodic evaluation and checkpoints.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from .checkpoint import rng_state, save_checkpoint, set_rng_state
from .config import TrainConfig
from .data import BatchStream, step_generator
from .metrics import evaluate

# Dense bf16 peak FLOP/s by GPU model (first match wins); MFU is reported only for these.
BF16_PEAK_FLOPS = {
    "H100 PCIe": 756e12,
    "H100": 989e12,
    "H200": 989e12,
    "A100": 312e12,
    "L4": 121e12,
}
H100_BF16_PEAK_FLOPS = BF16_PEAK_FLOPS["H100"]  # bench/trainer_gpu.py imports it


def peak_bf16_flops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU from ``torch.cuda.get_device_name()``; None if unknown.

    Whole words only: "NVIDIA L40S" is not an L4.
    """
    for model, peak in BF16_PEAK_FLOPS.items():
        if re.search(rf"\b{model}\b", device_name):
            return peak
    return None


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


def flops_per_token(
    n_params: int,
    layers: int,
    hidden: int,
    seq_len: float,
    vocab: int = 0,
    predicted_fraction: float = 0.0,
) -> float:
    """Training FLOPs per token (Kaplan et al. / PaLM appendix B), adapted to MLM:

        6 * N  +  12 * layers * hidden * seq_len  +  6 * vocab * hidden * predicted_fraction

    ``N`` is the non-embedding parameter count; ``6 * N`` is forward (2 FLOPs per weight per
    token) plus backward (twice the forward) through every weight matrix. ``12 * L * H * T`` is
    the attention score and value matmuls, which scale with sequence length and have no
    parameters. The last term is the tied vocabulary projection, which we run only on the
    predicted (masked) share of tokens. MFU = achieved FLOP/s over the GPU's dense bf16 peak
    (:func:`peak_bf16_flops`).
    """
    return (
        6.0 * n_params
        + 12.0 * layers * hidden * seq_len
        + 6.0 * vocab * hidden * predicted_fraction
    )


def non_embedding_parameters(pretext: torch.nn.Module) -> int:
    embeddings = pretext.encoder.tok.weight.numel() + pretext.encoder.pos.weight.numel()
    return sum(p.numel() for p in pretext.parameters()) - embeddings


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


def make_optimizer(model: torch.nn.Module, config: TrainConfig, device: torch.device):
    # No weight decay on biases and LayerNorm gains: decaying them only hurts (BERT, GPT-2).
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.98), eps=1e-6, fused=fused)


def train(
    pretext: torch.nn.Module,
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
        pretext: encoder + heads (on CPU; moved to the device here): text's
            :class:`~selfsup_trainer.objectives.Pretext`, or an image/series pretext that also
            has ``evaluate(heldout, device)``, and whose objectives count their own throughput
            units with ``units(batch) -> (real, padded, rows)``.
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
    rank, local_rank, world = distributed()
    device = pick_device(config, local_rank)
    owns_group = init_distributed(device)
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
        unused = config.objective == "mlm+simcse"
        model = torch.nn.parallel.DistributedDataParallel(
            pretext,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=unused,
        )
    if config.compile:
        model = torch.compile(model)
    stream = BatchStream(corpus, config.batch_size, config.seed, config.bucket_batches, rank, world)
    text = config.modality == "text"
    # MFU needs a FLOP model; only the text transformer has one (flops_per_token).
    n_params = non_embedding_parameters(pretext) if text else 0
    peak = None
    if device.type == "cuda" and text:
        peak = peak_bf16_flops(torch.cuda.get_device_name(device))
    held_out_metrics = getattr(pretext, "evaluate", None) or (
        lambda data, dev: evaluate(pretext, data, dev)
    )
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    end = total_steps if stop_at is None else min(stop_at, total_steps)
    pending: list[tuple[int, torch.Tensor]] = []  # losses not yet copied to the host
    window_tokens, window_padded, window_seqs, window_start = 0, 0, 0, time.perf_counter()
    tokens_per_second, mfu, metrics = 0.0, None, {}
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
            if hasattr(objective, "units"):
                real, padded, rows = objective.units(batch)
            else:  # text: tokens under the attention mask; SimCSE encodes every row twice
                copies = 2 if objective.name == "simcse" else 1
                mask = batch["attention_mask"]
                real, padded, rows = (
                    int(mask.sum()) * copies,
                    mask.numel() * copies,
                    mask.shape[0] * copies,
                )
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
            if peak is not None:
                seq = window_padded / max(1, window_seqs)  # mean padded length: attention cost
                per_token = flops_per_token(
                    n_params, config.layers or 0, config.hidden or 0, seq, pretext.vocab_size,
                    config.mask_rate if "mlm" in objective.name else 0.0,
                )  # fmt: skip
                mfu = tokens_per_second * per_token / (peak * world)
            window_tokens, window_padded, window_seqs, window_start = 0, 0, 0, time.perf_counter()
            if rank == 0:
                mfu_text = f" mfu {mfu:.1%}" if mfu is not None else ""
                unit = getattr(objective, "unit_name", "tok")
                log(
                    f"step {done}/{total_steps} [{objective.name}] loss {losses[-1]:.4f} "
                    f"lr {scheduler.get_last_lr()[0]:.2e} {unit}/s {tokens_per_second:,.0f}"
                    f"{mfu_text}"
                )
        if config.eval_every and done % config.eval_every == 0 and not last and rank == 0:
            metrics = held_out_metrics(heldout, device)
            log(f"eval step {done}: " + " ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            window_start = time.perf_counter()
        checkpointed = bool(config.checkpoint_every) and (
            done % config.checkpoint_every == 0 or last
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
    flush_losses()
    if rank == 0:
        metrics = held_out_metrics(heldout, device)
    pretext.to("cpu")
    if owns_group:
        dist.barrier()  # rank 0 may still be evaluating; leave together
        dist.destroy_process_group()
    average = run_tokens * world / run_time if run_time > 0 else tokens_per_second
    return TrainResult(losses, metrics, average, len(losses))
