"""Time-series fine-tuning hooks: labeled JSONL/CSV series, fitted to the base's patch grid,
the base's patch Transformer (normalization inside the graph, as pretrained)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import TrainConfig
from ..export import ExportSpec
from ..finetune.config import FinetuneConfig
from ..finetune.hooks import PARITY_SIZES, FinetuneHooks
from ..weights import load_weights
from .data import SeriesSet, batch_arrays, read_series
from .models import PatchTransformerEncoder
from .pipeline import export_spec, fit_to_model


class SeriesTask:
    unit_name = "pts"

    def __init__(self, patch: int) -> None:
        self.patch = patch

    def collate(self, data: SeriesSet, indices: np.ndarray) -> dict[str, torch.Tensor]:
        values, observed = batch_arrays(data, indices, self.patch)
        return {"values": values, "observed": observed}

    def inputs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return batch["values"], batch["observed"]

    def units(self, batch: dict[str, torch.Tensor]) -> tuple[int, int, int]:
        observed = batch["observed"]
        return int(observed.sum()), observed.numel(), observed.shape[0]


class SeriesFinetune(FinetuneHooks):
    def __init__(self, folder: Path, manifest: dict) -> None:
        super().__init__(folder, manifest)
        arch = manifest.get("architecture") or {}
        if arch.get("type") != "patch_transformer":
            raise ValueError(
                f"--init: series architecture {arch.get('type')!r} cannot be fine-tuned; "
                "patch_transformer can"
            )
        self.arch = arch
        self.max_length = int(arch["max_patches"]) * int(arch["patch_size"])
        self.task = SeriesTask(int(arch["patch_size"]))

    def encoder(self, config: FinetuneConfig) -> nn.Module:
        arch, pre = self.arch, self.manifest["preprocessing"]
        base = TrainConfig(
            modality="timeseries", objective="masked", layers=arch["layers"],
            hidden=arch["hidden"], heads=arch["heads"], intermediate=arch["intermediate"],
            series_patch=arch["patch_size"], normalization=pre["normalization"],
            dropout=config.dropout,
        )  # fmt: skip
        self.model = PatchTransformerEncoder(base, int(arch["channels"]), self.max_length)
        load_weights(self.model, self.folder / self.manifest["weights"])
        return self.model

    def read(self, path: Path) -> tuple[SeriesSet, list[str]]:
        series = read_series(path, max_length=self.max_length)
        labels = series.require_labels(path)
        self.path = path
        return series, labels

    def subset(self, raw: SeriesSet, rows: list[int]) -> SeriesSet:
        return raw.subset(np.asarray(rows, dtype=np.int64))

    def prepare(self, raw: SeriesSet, config: FinetuneConfig) -> SeriesSet:
        return fit_to_model(raw, self.model, self.path)

    def spec(self, raw_heldout: SeriesSet) -> ExportSpec:
        held = fit_to_model(raw_heldout, self.model, self.path)
        channels, patch = int(self.arch["channels"]), int(self.arch["patch_size"])
        return export_spec(held, patch, channels, self.max_length, PARITY_SIZES)
