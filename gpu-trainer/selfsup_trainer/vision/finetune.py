"""Image fine-tuning hooks: labeled archives (class folders) or IDX with labels, normalized
with the base's statistics (its manifest's preprocessing), the base's ViT or ResNet."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import TrainConfig
from ..export import ExportSpec
from ..finetune.config import FinetuneConfig
from ..finetune.hooks import PARITY_SIZES, FinetuneHooks
from ..weights import load_weights
from .data import ImageSet, read_images
from .models import build_encoder
from .pipeline import image_spec


@dataclass
class Pixels:
    """Normalized ``pixel_values`` [N, C, S, S]; images have no length to bucket by."""

    values: torch.Tensor

    def __post_init__(self) -> None:
        self.lengths = np.ones(len(self.values), dtype=np.int64)


class ImageTask:
    unit_name = "img"

    def collate(self, data: Pixels, indices: np.ndarray) -> dict[str, torch.Tensor]:
        return {"pixel_values": data.values[torch.as_tensor(indices)]}

    def inputs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return (batch["pixel_values"],)

    def units(self, batch: dict[str, torch.Tensor]) -> tuple[int, int, int]:
        rows = len(batch["pixel_values"])
        return rows, rows, rows


class ImageFinetune(FinetuneHooks):
    task = ImageTask()

    @property
    def preprocessing(self) -> dict:
        return self.manifest["preprocessing"]

    def encoder(self, config: FinetuneConfig) -> nn.Module:
        arch, pre = self.manifest.get("architecture") or {}, self.preprocessing
        kind = arch.get("type")
        if kind not in ("vit", "resnet"):
            raise ValueError(
                f"--init: image architecture {kind!r} cannot be fine-tuned; vit or resnet"
            )
        base = TrainConfig(
            modality="image", objective="mae" if kind == "vit" else "simclr", architecture=kind,
            layers=arch.get("layers") or 4 * int(arch["blocks_per_stage"]), hidden=arch["hidden"],
            heads=arch.get("heads"), intermediate=arch.get("intermediate"),
            image_size=pre["image_size"], channels=pre["channels"],
            patch_size=arch.get("patch_size", 4), pooling=self.manifest.get("pooling", "mean"),
            dropout=config.dropout,
        )  # fmt: skip
        encoder = build_encoder(base, pre["channels"])
        load_weights(encoder, self.folder / self.manifest["weights"])
        return encoder

    def read(self, path: Path) -> tuple[ImageSet, list[str]]:
        images = read_images(path, self.preprocessing["image_size"], self.preprocessing["channels"])
        if images.labels is None:
            raise ValueError(
                f"{path.name}: {images.stats.get('unlabeled')} images have no class; a labeled "
                "set needs every image in a class folder (cat/001.png) or an idx1 labels file"
            )
        return images, list(images.labels)

    def subset(self, raw: ImageSet, rows: list[int]) -> ImageSet:
        return raw.subset(np.asarray(rows, dtype=np.int64))

    def prepare(self, raw: ImageSet, config: FinetuneConfig) -> Pixels:
        return Pixels(raw.normalized(self.preprocessing["mean"], self.preprocessing["std"]))

    def spec(self, raw_heldout: ImageSet) -> ExportSpec:
        pre = self.preprocessing
        return image_spec(raw_heldout, pre["mean"], pre["std"], PARITY_SIZES)
