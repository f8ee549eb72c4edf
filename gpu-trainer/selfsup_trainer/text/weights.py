"""Text versions that can be continued: their manifest's ``architecture`` (our pre-LN
``transformer`` or a post-LN ``bert``) and weights file (:mod:`..weights`), read to continue
pretraining from a registered version (a job's ``init_from``) or to fine-tune it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from ..config import LR_CONTINUED, TrainConfig
from ..weights import WEIGHTS, load_weights, save_weights
from .bert import BertShape

# The weights file itself is every modality's (..weights); re-exported for text's importers.
__all__ = ["WEIGHTS", "architecture_block", "configure_from", "load_weights", "read_version"]
__all__ += ["save_weights"]


def read_version(folder: Path) -> dict[str, Any]:
    """The manifest of a downloaded version folder that can be continued.

    Raises:
        ValueError: no manifest, no weights file, or an architecture the trainer cannot build.
    """
    manifest = json.loads((folder / "manifest.json").read_text())
    name = manifest.get("weights")
    if not name or not (folder / name).exists():
        raise ValueError(
            f"{folder}: the version has no PyTorch weights ({WEIGHTS}); import it with "
            "`python -m selfsup_trainer import` or train it with this platform first"
        )
    kind = (manifest.get("architecture") or {}).get("kind")
    if manifest.get("modality") != "text" or kind not in ("bert", "transformer"):
        raise ValueError(
            f"{folder}: continuing a {manifest.get('modality')} encoder of architecture "
            f"{kind!r} is not supported; text encoders (bert, transformer) are"
        )
    return manifest


def configure_from(config: TrainConfig, manifest: dict[str, Any]) -> None:
    """Take the version's architecture, pooling and max_tokens into ``config`` (in place), and
    the continued-pretraining learning rate unless one was given."""
    arch = manifest["architecture"]
    config.architecture = arch["kind"]
    if arch["kind"] == "bert":
        shape = BertShape.from_manifest(arch)
        if shape.type_vocab_size != 2 or shape.layer_norm_eps != 1e-12:
            raise ValueError(
                f"BERT with type_vocab_size={shape.type_vocab_size}, layer_norm_eps="
                f"{shape.layer_norm_eps}: only the common 2 / 1e-12 are supported"
            )
        config.max_position = shape.max_position
    else:
        config.max_position = int(arch.get("max_position") or 0)
    for key in ("layers", "hidden", "heads", "intermediate"):
        setattr(config, key, int(arch[key]))
    config.pooling = manifest.get("pooling", config.pooling)
    config.max_tokens = int(manifest["max_tokens"])
    if config.lr is None:
        config.lr = LR_CONTINUED


def architecture_block(config: TrainConfig, encoder: nn.Module, vocab_size: int) -> dict[str, Any]:
    """The manifest's ``architecture``: what rebuilds the encoder from its weights file."""
    shape = getattr(encoder, "shape", None)
    if isinstance(shape, BertShape):
        return shape.to_manifest()
    return {
        "kind": "transformer",
        "layers": config.layers,
        "hidden": config.hidden,
        "heads": config.heads,
        "intermediate": config.intermediate,
        "vocab_size": vocab_size,
        "max_position": config.max_position or config.max_tokens,
    }
