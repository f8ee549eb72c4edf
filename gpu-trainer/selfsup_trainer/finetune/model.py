"""The classifier the engine fine-tunes: a version's encoder plus a linear head on its pooled
embedding, with layer-wise lr decay, frozen layers and early stopping on the eval set.

The classifier is a :class:`~selfsup_trainer.objective.Pretext` whose one-phase recipe is the
``classify`` objective, so :func:`selfsup_trainer.engine.train` drives it exactly as it drives
pretraining (same schedule, accumulation, checkpoints and exact resume).
"""

from __future__ import annotations

import math
import re
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..objective import Pretext, Recipe, decay_groups
from ..probe import fit_logreg
from .config import FinetuneConfig

STANDARDIZE_SAMPLE = 2048  # training rows the head's statistics and initial probe come from
EVAL_BATCH = 64
MIN_LOSS_GAIN = 1e-4  # at equal accuracy, a smaller eval loss by this much is an improvement
# Where a parameter sits in the stack: block i of our Transformers (text, ViT, series), of a BERT,
# or stage block i of a ResNet is depth i + 1; the embeddings (or stem) are depth 0.
BLOCK = re.compile(r"^encoder\.(?:blocks|encoder\.layer|stages)\.(\d+)\.")
TOP = ("encoder.final_ln.",)  # above the last block: depth layers + 1


class Task(Protocol):
    """What a modality contributes to fine-tuning: batches of its labeled data and the encoder
    inputs in them."""

    unit_name: str

    def collate(self, data: Any, indices: np.ndarray) -> dict[str, torch.Tensor]:
        """The encoder inputs of rows ``indices`` (CPU tensors); no randomness."""
        ...

    def inputs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """The encoder's forward arguments, in order."""
        ...

    def units(self, batch: dict[str, torch.Tensor]) -> tuple[int, int, int]:
        """(real units, padded units, rows) for throughput."""
        ...


class Labeled:
    """A modality's labeled rows (``data``: TokenizedCorpus, ImageSet or SeriesSet) with their
    class index ``y``; what the batcher needs (``len``, ``lengths``)."""

    def __init__(self, data: Any, y: np.ndarray) -> None:
        self.data, self.y = data, np.asarray(y, dtype=np.int64)
        self.lengths = data.lengths

    def __len__(self) -> int:
        return len(self.y)


class Head(nn.Module):
    """``logits = W · dropout((z - mean) / std) + b`` on the encoder's embedding ``z``.

    The standardization (fitted once on the base encoder's training embeddings, then fixed)
    matters because the embeddings are unit vectors, often in a narrow cone: on raw ``z`` a
    linear head would need huge weights before it separates anything.
    """

    def __init__(self, dims: int, classes: int, dropout: float) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dims))
        self.register_buffer("scale", torch.ones(dims))
        self.drop = nn.Dropout(dropout)
        self.linear = nn.Linear(dims, classes)
        nn.init.zeros_(self.linear.weight)  # the uniform prediction until Classifier.init_head
        nn.init.zeros_(self.linear.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """[batch, dims] embeddings -> [batch, classes] logits."""
        return self.linear(self.drop((z - self.mean) * self.scale))


class Classify:
    """The ``classify`` objective: label-smoothed cross-entropy of the head's logits."""

    name = "classify"
    predicted_fraction = 0.0

    def __init__(self, head: Head, task: Task, label_smoothing: float) -> None:
        self.head, self.task, self.smoothing = head, task, label_smoothing
        self.unit_name = task.unit_name

    def collate(self, data: Labeled, indices: np.ndarray, generator: torch.Generator) -> dict:
        return {
            **self.task.collate(data.data, indices),
            "labels": torch.from_numpy(data.y[indices]),
        }

    def loss(self, encoder: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[Any, dict]:
        logits = self.head(encoder(*self.task.inputs(batch)))
        loss = F.cross_entropy(logits.float(), batch["labels"], label_smoothing=self.smoothing)
        return loss, {}

    def units(self, batch: dict[str, torch.Tensor]) -> tuple[int, int, int]:
        return self.task.units(batch)


def depth_of(name: str, layers: int) -> int:
    """Depth of a classifier parameter ``name`` in a stack of ``layers`` blocks: 0 embeddings,
    ``i + 1`` block i, ``layers + 1`` what sits above the blocks (final LayerNorm)."""
    match = BLOCK.match(name)
    if match:
        return int(match.group(1)) + 1
    return layers + 1 if name.startswith(TOP) else 0


def count_blocks(encoder: nn.Module) -> int:
    """Blocks in the encoder's stack (Transformer blocks, BERT layers or ResNet blocks)."""
    for path in ("blocks", "encoder.layer", "stages"):
        module: Any = encoder
        for part in path.split("."):
            module = getattr(module, part, None)
        if isinstance(module, nn.ModuleList | nn.Sequential):
            return len(module)
    raise ValueError(f"{type(encoder).__name__} has no block stack to fine-tune layer-wise")


class Classifier(Pretext):
    """Encoder + :class:`Head`, fine-tuned by the engine.

    Args:
        config: the fine-tuning config.
        encoder: the base version's encoder (weights loaded; dropout from ``config``).
        task: the modality's batching.
        labels: class names; logit ``i`` is ``labels[i]``.
        dims: the encoder's embedding width.
    """

    def __init__(
        self, config: FinetuneConfig, encoder: nn.Module, task: Task, labels: list[str], dims: int
    ) -> None:
        recipe = Recipe(
            heads=lambda p: {"classifier": Head(dims, len(labels), config.dropout)},
            phases=(lambda p: Classify(p.heads["classifier"], task, config.label_smoothing),),
        )
        super().__init__(config, recipe)  # type: ignore[arg-type]  # the engine's protocol
        self.encoder, self.task, self.labels = encoder, task, labels
        self.layers = count_blocks(encoder)
        self.add_heads()
        self.best: dict[str, Any] | None = None  # the best evaluation's weights
        self.best_score = (-math.inf, math.inf)  # (eval accuracy, eval loss) of the best
        self.best_step, self.evals, self.bad_evals = 0, 0, 0
        for name, param in self.named_parameters():
            if name.startswith("encoder.") and self.frozen(depth_of(name, self.layers)):
                param.requires_grad_(False)

    @property
    def head(self) -> Head:
        return self.heads["classifier"]  # type: ignore[return-value]

    def frozen(self, depth: int) -> bool:
        """``freeze_layers`` N > 0 freezes the embeddings and the first N blocks; N at least the
        block count freezes the whole encoder (a linear probe)."""
        n = self.config.freeze_layers
        return n > 0 and (depth <= n or n >= self.layers)

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """The head at ``head_lr``; each encoder depth d at ``lr * layer_decay ** (top - d)``
        (the top at ``lr``); frozen parameters in no group."""
        c, top = self.config, self.layers + 1
        by_depth: dict[int, list[nn.Parameter]] = {}
        for name, param in self.encoder.named_parameters(prefix="encoder"):
            if param.requires_grad:
                by_depth.setdefault(depth_of(name, self.layers), []).append(param)
        groups = [
            {**g, "lr": c.head_lr, "name": "head"}
            for g in decay_groups(list(self.head.parameters()), weight_decay)
        ]
        for depth in sorted(by_depth):
            lr = c.lr * c.layer_decay ** (top - depth)
            for g in decay_groups(by_depth[depth], weight_decay):
                groups.append({**g, "lr": lr, "name": f"depth-{depth}"})
        return groups

    def init_head(self, train: Labeled, device: torch.device | str = "cpu") -> None:
        """Fit the head's feature mean/std on the base's frozen embeddings of up to
        :data:`STANDARDIZE_SAMPLE` training rows (embedded on ``device``) and, with
        ``head_init`` probe, its weights: a logistic regression on them (linear probe, then
        fine-tune: LP-FT, Kumar et al. 2022), so that fine-tuning starts from the probe's
        accuracy. ``zero`` leaves the head at the uniform prediction; it shields the encoder
        from the loss's gradient until the head has learned (bench/transfer.py compares both:
        zero did better on a from-scratch MAE ViT at a high learning rate)."""
        picks = np.linspace(0, len(train) - 1, num=min(STANDARDIZE_SAMPLE, len(train)))
        rows = np.unique(picks.round().astype(np.int64))
        self.encoder.to(device)
        try:
            z = self.embed(train, rows, device)
        finally:
            self.encoder.to("cpu")
        head = self.head
        with torch.no_grad():
            head.mean.copy_(z.mean(0))
            head.scale.copy_(1.0 / z.std(0).clamp_min(1e-6))
            x = (z - head.mean) * head.scale
        if self.config.head_init == "zero":
            return
        # The fine-tuning loss (label smoothing included): a head already at its optimum sends
        # the encoder no gradient that only undoes the probe's overconfidence.
        y = torch.from_numpy(train.y[rows])
        smoothing = self.config.label_smoothing
        w, b = fit_logreg(x, y, head.linear.out_features, label_smoothing=smoothing)
        with torch.no_grad():
            head.linear.weight.copy_(w.T)
            head.linear.bias.copy_(b)

    @torch.no_grad()
    def embed(self, data: Labeled, rows: np.ndarray, device: torch.device | str) -> torch.Tensor:
        """Embeddings of ``rows`` in eval mode, on CPU."""
        was_training = self.training
        self.eval()
        out = []
        for start in range(0, len(rows), EVAL_BATCH):
            batch = self.task.collate(data.data, rows[start : start + EVAL_BATCH])
            inputs = [t.to(device) for t in self.task.inputs(batch)]
            out.append(self.encoder(*inputs).float().cpu())
        self.train(was_training)
        return torch.cat(out)

    @torch.no_grad()
    def predict(self, data: Labeled, device: torch.device | str = "cpu") -> torch.Tensor:
        """Logits of every row of ``data`` [N, classes] on CPU (eval mode)."""
        z = self.embed(data, np.arange(len(data)), device)
        was_training = self.training
        self.eval()
        home = next(self.head.parameters()).device
        logits = self.head(z.to(home)).float().cpu()
        self.train(was_training)
        return logits

    def evaluate(self, heldout: Labeled, device: torch.device) -> dict[str, float]:
        """Accuracy and loss on the eval set; remembers the best weights (early stopping)."""
        logits = self.predict(heldout, device)
        y = torch.from_numpy(heldout.y)
        accuracy = float((logits.argmax(1) == y).float().mean())
        loss = float(F.cross_entropy(logits, y))
        self.evals += 1
        # Accuracy first, loss to break ties (on small eval sets accuracy moves in steps); an
        # improvement must be real, not float noise.
        best_accuracy, best_loss = self.best_score
        better = accuracy > best_accuracy + 1e-9 or (
            accuracy >= best_accuracy - 1e-9 and loss < best_loss - MIN_LOSS_GAIN
        )
        if better:
            self.best_score, self.bad_evals, self.best_step = (accuracy, loss), 0, self.evals
            self.best = {k: v.detach().cpu().clone() for k, v in self.weights().items()}
        else:
            self.bad_evals += 1
        return {"eval_accuracy": accuracy, "eval_loss": loss}

    def weights(self) -> dict[str, torch.Tensor]:
        """Encoder and head parameters and buffers (what early stopping restores)."""
        return {
            **self.encoder.state_dict(prefix="encoder."),
            **self.heads.state_dict(prefix="heads."),
        }

    def should_stop(self) -> bool:
        patience = self.config.early_stopping_patience
        return patience > 0 and self.bad_evals >= patience

    def restore_best(self) -> None:
        """Load the best evaluation's weights (the last ones when there was no evaluation)."""
        if self.best is not None:
            self.load_state_dict({**self.state_dict(), **self.best})

    # Checkpoints carry the early-stopping state, so a resumed run stops where the uninterrupted
    # one would and restores the same weights (nn.Module's extra-state hooks).
    def get_extra_state(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_score": self.best_score,
            "best_step": self.best_step,
            "evals": self.evals,
            "bad_evals": self.bad_evals,
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.best, self.best_score = state["best"], state["best_score"]
        self.best_step, self.evals, self.bad_evals = (
            state["best_step"],
            state["evals"],
            state["bad_evals"],
        )
