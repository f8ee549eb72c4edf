"""What the engine trains: the :class:`Objective` protocol, the objective registry and the
:class:`Pretext` base (encoder + heads) every modality subclasses.

An objective name (``mlm+simcse``, ``mae``, ``masked`` ...) maps to one :class:`Recipe`: the
trainable heads it adds to the encoder and the objective of each phase. The engine asks the
pretext for the step's objective and treats every objective the same way through the protocol,
so it never tests names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from .config import TrainConfig


class Objective(Protocol):
    """One pretext task, as the engine drives it.

    Attributes:
        name: shown in logs and progress (``StepInfo.objective``).
        unit_name: throughput unit in logs: ``tok`` (text), ``img``, ``pts`` (series points).
        predicted_fraction: share of tokens sent through the tied vocabulary projection (the
            MFU FLOP model's last term); 0 for objectives without one.
    """

    name: str
    unit_name: str
    predicted_fraction: float

    def collate(self, data: Any, indices: np.ndarray, generator: torch.Generator) -> dict:
        """The batch of ``indices`` (CPU); all randomness from ``generator`` (resumable)."""
        ...

    def loss(self, encoder: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[Any, dict]:
        """(scalar loss, stats) of ``batch`` on the device."""
        ...

    def units(self, batch: dict[str, torch.Tensor]) -> tuple[int, int, int]:
        """(real units, padded units, rows) this batch encodes, for throughput and MFU."""
        ...


@dataclass(frozen=True)
class Recipe:
    """How one objective name trains.

    Attributes:
        heads: pretext -> the trainable heads it adds (names are checkpoint keys).
        phases: pretext -> the objective of each phase, in order (built per step: an objective
            holds references to the pretext's current heads and buffers).
        first_share: with two phases, the share of steps spent in the first.
    """

    heads: Callable[[Any], dict[str, nn.Module]]
    phases: tuple[Callable[[Any], Objective], ...]
    first_share: Callable[[TrainConfig], float] | None = None


RECIPES: dict[str, dict[str, Recipe]] = {}


def register(modality: str, name: str, recipe: Recipe) -> None:
    """Make objective ``name`` of ``modality`` trainable (each modality's pretext module)."""
    RECIPES.setdefault(modality, {})[name] = recipe


def recipe_for(modality: str, objective: str) -> Recipe:
    """The recipe of ``objective``.

    Raises:
        ValueError: no such objective for ``modality``, naming the ones there are.
    """
    known = RECIPES.get(modality, {})
    if objective not in known:
        raise ValueError(
            f"objective={objective!r} is not an objective of modality {modality!r}; use one "
            f"of {', '.join(known)}"
        )
    return known[objective]


def decay_groups(params: list[torch.nn.Parameter], weight_decay: float) -> list[dict[str, Any]]:
    """Weight-decayed matrices and undecayed vectors: decaying biases and LayerNorm gains only
    hurts (BERT, GPT-2)."""
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


class Pretext(nn.Module):
    """Encoder plus the heads its objective needs, as one module (one state_dict, one
    optimizer). Subclasses set ``encoder`` (and whatever the heads read), then call
    :meth:`add_heads`, and implement :meth:`evaluate`.
    """

    encoder: nn.Module
    heads: nn.ModuleDict

    def __init__(self, config: TrainConfig, recipe: Recipe | None = None) -> None:
        super().__init__()
        self.config = config
        # Fine-tuning's classifier brings its own recipe (classify is no pretraining objective).
        self.recipe = recipe or recipe_for(config.modality, config.objective)

    def add_heads(self) -> None:
        self.heads = nn.ModuleDict(self.recipe.heads(self))

    @property
    def phased(self) -> bool:
        """True when a head sits idle for part of the run (DDP must allow unused parameters)."""
        return len(self.recipe.phases) > 1

    def phase(self, step: int, total_steps: int) -> Objective:
        """The objective of optimizer step ``step`` (0-based) of ``total_steps``."""
        phases = self.recipe.phases
        if len(phases) > 1 and self.recipe.first_share is not None:
            first = step < round(self.recipe.first_share(self.config) * total_steps)
            return phases[0](self) if first else phases[1](self)
        return phases[0](self)

    def forward(self, batch: dict, objective: Objective) -> tuple:
        """Loss of ``objective`` on ``batch``; going through ``forward`` lets DDP sync grads."""
        return objective.loss(self.encoder, batch)

    def evaluate(self, heldout: Any, device: torch.device) -> dict[str, float]:
        """Held-out metrics; must not consume the training RNG."""
        raise NotImplementedError

    def flops_per_unit(self, objective: Objective, padded_length: float) -> float | None:
        """Training FLOPs per throughput unit for MFU; None where there is no FLOP model."""
        return None

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """The optimizer's parameter groups (a group may set its own ``lr``); every trainable
        parameter once. Fine-tuning overrides it (layer-wise lr decay, frozen layers)."""
        return decay_groups([p for p in self.parameters() if p.requires_grad], weight_decay)

    def should_stop(self) -> bool:
        """Asked after each periodic evaluation: True ends the run early (early stopping)."""
        return False
