"""Training configuration: one flat dataclass, presets, and validation.

Flat on purpose: every field can be set from the CLI with ``--set key=value`` and is written
verbatim to ``manifest.json``. Validation raises ``ValueError`` naming the key, the bad value and
the fix, because the person reading it is usually looking at a CLI invocation or an API request.

Objectives, architectures, preset names, limits and the ranges of every hyperparameter a job may
set come from the API's contract (:mod:`.contract`); what only the trainer knows (preset
dimensions, the internal ``bert`` architecture, checks across fields) is here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from . import contract
from .contract import HYPERPARAMETERS, MAX_SERIES_LENGTH, MODALITY_FIELDS, OBJECTIVES

# Preset names are the contract's; their dimensions are the trainer's own (tests/test_contract.py
# checks that every contract preset has them).
PRESET_SHAPES: dict[str, dict[str, int]] = {
    "tiny": {"layers": 2, "hidden": 128, "heads": 2, "intermediate": 512},
    "mini": {"layers": 4, "hidden": 256, "heads": 4, "intermediate": 1024},
    "small": {"layers": 4, "hidden": 512, "heads": 8, "intermediate": 2048},
    "base": {"layers": 12, "hidden": 768, "heads": 12, "intermediate": 3072},
}
PRESETS = {name: PRESET_SHAPES[name] for name in contract.PRESET_NAMES if name in PRESET_SHAPES}
# bert: post-LN BERT of an imported or continued version (text/bert.py); only via init_from, so
# it is the trainer's alone and not in the contract's list.
ARCHITECTURES: dict[str, tuple[str, ...]] = {
    m: (*names, "bert") if m == "text" else names for m, names in contract.ARCHITECTURES.items()
}
# Objectives that can continue a BERT (an imported or registered text encoder).
BERT_OBJECTIVES = contract.INIT_FROM_OBJECTIVES["text"]
# mask_rate when left unset: BERT's 15%, MAE's 75%, PatchTST's 40%.
DEFAULT_MASK_RATE = {"mlm": 0.15, "mlm+simcse": 0.15, "mlm+nsp": 0.15, "mae": 0.75, "masked": 0.4}

# Learning rates when none is given: a fresh encoder, or a pretrained one continued on a new corpus
# (a from-scratch rate wrecks a pretrained encoder in a few steps). bench/text_quality.py measured.
LR_FROM_SCRATCH = 5e-4
LR_CONTINUED = 1e-5

__all__ = ["MAX_SERIES_LENGTH", "MODALITY_FIELDS", "OBJECTIVES", "PRESETS", "TrainConfig"]


@dataclass
class TrainConfig:
    """Everything that determines a pretraining run.

    Architecture fields left as ``None`` are filled from ``preset`` by :meth:`resolve`.
    """

    objective: str = "mlm"
    preset: str = "tiny"
    modality: str = "text"
    architecture: str = "auto"  # auto: text transformer, image mae->vit / simclr->resnet, series
    # Architecture (None = take from preset).
    layers: int | None = None
    hidden: int | None = None
    heads: int | None = None
    intermediate: int | None = None
    vocab_size: int = 8000
    max_tokens: int = 128
    max_position: int = 0  # position table size; 0 = max_tokens (a BERT's is its checkpoint's)
    dropout: float = 0.1
    pooling: str = "mean"
    # text, applied inside the exported graph (text/postprocess.py): "center" subtracts the corpus's
    # mean embedding, "whiten" also decorrelates (BERT-whitening), "none" leaves it.
    postprocess: str = "center"
    # Length of the run: exactly one of steps / epochs (steps wins when both are given).
    steps: int | None = None
    epochs: float | None = None
    batch_size: int = 32
    grad_accum: int = 1
    # Optimisation.
    lr: float | None = None  # None: LR_FROM_SCRATCH, or LR_CONTINUED with init_from
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    schedule: str = "cosine"
    grad_clip: float = 1.0
    # Objectives.
    mask_rate: float | None = None  # None: the objective's default (DEFAULT_MASK_RATE)
    simcse_temperature: float = 0.05
    mlm_fraction: float = 0.5  # share of steps spent on MLM in "mlm+simcse"
    simclr_temperature: float = 0.2  # image simclr and series contrastive (NT-Xent)
    # Images.
    image_size: int = 32
    channels: int = 0  # 0 = from the data (1 for grey sets, else 3)
    patch_size: int = 4  # ViT patch side in pixels
    crop_min_scale: float = 0.3  # SimCLR random resized crop: smallest area fraction
    # Time series.
    series_length: int = 0  # 0 = the longest series in the data
    series_patch: int = 8  # points per patch
    predict_patches: int = 2  # temporal objective: patches predicted after the context
    normalization: str = "per_series"
    # Data.
    seed: int = 0
    heldout_fraction: float = 0.02
    heldout_max: int = 256
    tokenizer_min_frequency: int = 2
    bucket_batches: int = 50  # batches sorted together by length; 1 disables bucketing
    # Engine.
    log_every: int = 10
    eval_every: int = 200  # 0 = evaluate only at the end
    checkpoint_every: int = 0  # 0 = no intermediate checkpoints
    compile: bool = False
    device: str = "auto"
    matryoshka_dims: list[int] = field(default_factory=list)

    def resolve(self) -> TrainConfig:
        """Fill architecture from the preset and validate; returns ``self`` for chaining."""
        if self.preset not in PRESETS:
            raise ValueError(
                f"preset={self.preset!r} is unknown; use one of {', '.join(PRESETS)} "
                "(or set layers/hidden/heads/intermediate explicitly with a known preset)"
            )
        for key, value in PRESETS[self.preset].items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        if self.mask_rate is None:
            self.mask_rate = DEFAULT_MASK_RATE.get(self.objective, 0.15)
        if self.lr is None:
            self.lr = LR_FROM_SCRATCH
        if self.architecture == "auto" and self.modality in ARCHITECTURES:
            first = ARCHITECTURES[self.modality][0]
            image = "vit" if self.objective == "mae" else "resnet"
            self.architecture = image if self.modality == "image" else first
        self.validate()
        return self

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first impossible value and how to fix it."""
        if self.modality not in OBJECTIVES:
            raise ValueError(
                f"modality={self.modality!r} is unknown; use one of {list(OBJECTIVES)}"
            )
        valid = OBJECTIVES[self.modality]
        if self.objective not in valid:
            raise ValueError(
                f"objective={self.objective!r} is not valid for modality {self.modality!r}; "
                f"use one of {', '.join(valid)}"
            )
        self._validate_contract_ranges()
        archs = ARCHITECTURES[self.modality]
        if self.architecture != "auto" and self.architecture not in archs:
            raise ValueError(
                f"architecture={self.architecture!r} is not valid for modality "
                f"{self.modality!r}; use auto or one of {', '.join(archs)}"
            )
        if self.objective == "mae" and self.architecture == "resnet":
            raise ValueError(
                "architecture='resnet' cannot train objective='mae' (MAE drops patches, which "
                "needs a ViT); use architecture=vit or objective=simclr"
            )
        if self.image_size % self.patch_size:
            raise ValueError(
                f"patch_size={self.patch_size} must divide image_size={self.image_size} "
                "(e.g. patch_size=4 for image_size=32)"
            )
        if not 0.0 < self.heldout_fraction < 0.5:
            raise ValueError(
                f"heldout_fraction={self.heldout_fraction} must be in (0, 0.5), e.g. 0.02"
            )
        positive = {
            "layers": self.layers,
            "hidden": self.hidden,
            "heads": self.heads,
            "intermediate": self.intermediate,
            "heldout_max": self.heldout_max,
            "bucket_batches": self.bucket_batches,
            "log_every": self.log_every,
            "tokenizer_min_frequency": self.tokenizer_min_frequency,
        }
        for key, value in positive.items():
            if value is not None and value < 1:
                raise ValueError(f"{key}={value} must be a positive integer")
        if self.hidden is not None and self.heads is not None and self.hidden % self.heads:
            raise ValueError(
                f"hidden={self.hidden} is not divisible by heads={self.heads}; "
                "pick heads that divide hidden (e.g. hidden/64)"
            )
        if self.max_position and self.max_position < self.max_tokens:
            raise ValueError(
                f"max_tokens={self.max_tokens} exceeds max_position={self.max_position}; "
                f"lower max_tokens to <= {self.max_position}"
            )
        if self.architecture == "bert" and self.objective not in BERT_OBJECTIVES:
            raise ValueError(
                f"objective={self.objective!r} cannot continue a BERT encoder; "
                f"use {', '.join(BERT_OBJECTIVES)}"
            )
        if self.steps is None and self.epochs is None:
            raise ValueError("neither steps nor epochs is set; pass --steps N or --epochs E")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device={self.device!r} is unknown; use auto, cpu or cuda[:N]")
        if self.hidden is not None:
            bad = [d for d in self.matryoshka_dims if not 0 < d <= self.hidden]
            if bad:
                raise ValueError(f"matryoshka_dims={bad} must lie in (0, hidden={self.hidden}]")

    def _validate_contract_ranges(self) -> None:
        """Every hyperparameter a job may set, against the contract's schema (enum, range).

        ``None`` means "the default" (mask_rate, lr, steps/epochs) and is not checked here.
        ``architecture`` is checked per modality by :meth:`validate` (it also admits ``bert``).
        """
        for key, schema in HYPERPARAMETERS.items():
            value = getattr(self, key)
            if value is None or key == "architecture":
                continue
            problem = contract.violation(key, value, schema)
            if problem is not None:
                default = FIELD_DEFAULTS.get(key)
                example = default is not None and "must be in" in problem
                raise ValueError(problem + (f", e.g. {default}" if example else ""))

    @property
    def type_vocab_size(self) -> int:
        """Segment embeddings exist only for sentence-pair objectives (NSP)."""
        return 2 if self.objective == "mlm+nsp" else 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict, rejecting unknown keys (typos must not pass silently)."""
        return strict(cls, data, "config")


def strict(cls: type, data: dict[str, Any], noun: str) -> Any:
    """``cls(**data)`` for a config dataclass, rejecting keys it has no field for.

    Raises:
        ValueError: naming the unknown keys and the valid ones.
    """
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(
            f"unknown {noun} key(s) {unknown}; valid keys are: {', '.join(sorted(names))}"
        )
    return cls(**data)


FIELD_DEFAULTS: dict[str, Any] = {
    f.name: f.default
    for f in dataclasses.fields(TrainConfig)
    if f.default is not dataclasses.MISSING
}


def parse_override(text: str, config_class: type = TrainConfig) -> tuple[str, Any]:
    """Parse ``key=value`` from ``--set``, converting value to the field's type.

    Args:
        text: ``key=value``.
        config_class: the dataclass whose field ``key`` is (fine-tuning: ``FinetuneConfig``).

    Raises:
        ValueError: unknown key or a value that does not parse as the field's type.
    """
    if "=" not in text:
        raise ValueError(f"--set {text!r} must look like key=value, e.g. --set lr=3e-4")
    key, raw = (part.strip() for part in text.split("=", 1))
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    if key not in fields:
        raise ValueError(
            f"unknown config key {key!r} in --set; valid keys are: {', '.join(sorted(fields))}"
        )
    kind = str(fields[key].type)
    try:
        if raw.lower() in ("none", "null") and "None" in kind:
            return key, None
        if kind.startswith("bool"):
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return key, raw.lower() in ("true", "1", "yes")
        if kind.startswith("int"):
            return key, int(raw)
        if kind.startswith("float"):
            return key, float(raw)
        if kind.startswith("list[int]"):
            return key, [int(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--set {key}={raw!r} does not parse as {kind}") from None
    return key, raw
