"""``FinetuneConfig``: the hyperparameters of a fine-tune job, validated against the contract.

The fields a job may set are exactly the contract's ``finetune_hyperparameters`` (ranges and
defaults from ``contract.json``; ``tests/test_finetune_config.py`` checks both sides agree); the
rest are the trainer's own engine settings, set from the CLI only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .. import contract
from ..config import strict
from ..contract import FINETUNE_HYPERPARAMETERS


@dataclass
class FinetuneConfig:
    """Everything that determines a fine-tuning run (the engine reads it like a TrainConfig)."""

    # The contract's finetune_hyperparameters (a job's config).
    epochs: float = 3.0
    steps: int | None = None  # overrides epochs
    batch_size: int = 32
    lr: float = 5e-5  # the encoder's top block; lower blocks get lr * layer_decay ** depth
    head_lr: float = 1e-3
    layer_decay: float = 0.9
    freeze_layers: int = 0  # 0: train everything; N: embeddings and the first N blocks frozen
    label_smoothing: float = 0.1
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    dropout: float = 0.1
    early_stopping_patience: int = 2  # evaluations without improvement; 0 = off
    eval_every: int = 0  # 0 = once per epoch
    validation_split: float = 0.1  # held out of the data when there is no eval set
    checkpoint_every: int = 0
    seed: int = 0
    max_tokens: int | None = None  # text: None = the base's
    head_init: str = "probe"  # probe: a logistic regression on the base's embeddings; zero
    # The trainer's own (CLI only; not in the contract).
    schedule: str = "linear"
    grad_accum: int = 1
    grad_clip: float = 1.0
    bucket_batches: int = 50
    log_every: int = 10
    compile: bool = False
    device: str = "auto"

    def resolve(self) -> FinetuneConfig:
        """Validate; returns ``self`` for chaining (the engine's protocol)."""
        self.validate()
        return self

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first impossible value and how to fix it."""
        for key, schema in FINETUNE_HYPERPARAMETERS.items():
            value = getattr(self, key)
            if value is None:
                continue
            problem = contract.violation(key, value, schema)
            if problem is not None:
                raise ValueError(problem)
        if self.schedule not in ("linear", "cosine"):
            raise ValueError(f"schedule={self.schedule!r} is unknown; use linear or cosine")
        for key in ("grad_accum", "bucket_batches", "log_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}={getattr(self, key)} must be a positive integer")
        if not self.grad_clip > 0:
            raise ValueError(f"grad_clip={self.grad_clip} must be > 0, e.g. 1.0")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device={self.device!r} is unknown; use auto, cpu or cuda[:N]")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneConfig:
        """Build from a dict (a job's config), rejecting unknown keys.

        Raises:
            ValueError: a key that is not a fine-tuning hyperparameter, naming the valid ones.
        """
        return strict(cls, data, "fine-tuning")
