"""The module the engine trains for time series: encoder, objective heads, held-out metrics."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..config import TrainConfig
from ..data import step_generator
from ..metrics import alignment, uniformity
from ..objectives.series_contrastive import ProjectionHead, SeriesContrastive, augment
from ..objectives.series_masked import MaskedHead, SeriesMasked
from ..objectives.series_temporal import SeriesTemporal, TemporalHead
from .data import SeriesSet, batch_arrays
from .models import PatchTransformerEncoder

# Held-out metric name per objective: the objective's own loss on the held-out slice.
HELDOUT_METRIC = {
    "masked": "reconstruction_mse",
    "temporal": "forecast_mse",
    "contrastive": "contrastive_loss",
}


class SeriesPretext(nn.Module):
    """Encoder plus the head its objective needs (one state_dict, one optimizer)."""

    def __init__(
        self,
        config: TrainConfig,
        channels: int,
        max_length: int,
        mean: list[float] | None = None,
        std: list[float] | None = None,
    ) -> None:
        super().__init__()
        assert config.hidden is not None and config.mask_rate is not None
        self.config = config
        self.encoder = PatchTransformerEncoder(config, channels, max_length, mean, std)
        self.heads = nn.ModuleDict()
        patch_values = channels * config.series_patch
        if config.objective == "masked":
            self.heads["masked"] = MaskedHead(config.hidden, patch_values)
            self.objective = SeriesMasked(
                self.heads["masked"], config.mask_rate, config.series_patch
            )
        elif config.objective == "temporal":
            self.heads["temporal"] = TemporalHead(
                config.hidden, config.predict_patches, patch_values
            )
            self.objective = SeriesTemporal(self.heads["temporal"], config.series_patch)
        elif config.objective == "contrastive":
            self.heads["projection"] = ProjectionHead(config.hidden)
            self.objective = SeriesContrastive(
                self.heads["projection"], config.simclr_temperature, config.series_patch
            )
        else:
            raise ValueError(
                f"objective={config.objective!r} is not a time-series objective; use one of "
                f"{', '.join(HELDOUT_METRIC)}"
            )

    def phase(self, step: int, total_steps: int):
        """The objective for every step (time series has no phased objectives)."""
        return self.objective

    def forward(self, batch: dict, objective) -> tuple:
        """Loss of ``objective`` on ``batch``; going through ``forward`` lets DDP sync grads."""
        return objective.loss(self.encoder, batch)

    @torch.no_grad()
    def evaluate(
        self, heldout: SeriesSet, device: torch.device, batch_size: int = 64
    ) -> dict[str, float]:
        """The objective's loss on the held-out slice (fixed masks/cuts/views), alignment of two
        augmented views and uniformity of the clean embeddings (Wang & Isola, 2020).

        Runs in eval mode under ``fork_rng``, so it never consumes the training RNG, and
        restores the previous mode.
        """
        was_training = self.training
        self.eval()
        patch = self.config.series_patch
        total, weight, clean, view_a, view_b = 0.0, 0.0, [], [], []
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(0)
            for i, start in enumerate(range(0, len(heldout), batch_size)):
                indices = np.arange(start, min(start + batch_size, len(heldout)))
                batch = self.objective.collate(heldout, indices, step_generator(12345, i))
                batch = {k: v.to(device) for k, v in batch.items()}
                loss, stats = self.objective.loss(self.encoder, batch)
                n = float(stats["count"])
                total, weight = total + loss.item() * n, weight + n
                values, observed = batch_arrays(heldout, indices, patch)
                clean.append(self.encoder(values.to(device), observed.to(device)).float())
                generator = step_generator(54321, i)
                for views in (view_a, view_b):
                    v, o = augment(values, observed, generator)
                    views.append(self.encoder(v.to(device), o.to(device)).float())
        self.train(was_training)
        return {
            HELDOUT_METRIC[self.config.objective]: total / max(weight, 1.0),
            "alignment": alignment(torch.cat(view_a), torch.cat(view_b)),
            "uniformity": uniformity(torch.cat(clean)),
        }
