"""The module the engine trains for time series: encoder, objective heads, held-out metrics."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..batches import step_generator
from ..config import TrainConfig
from ..losses import alignment, uniformity
from ..objective import Pretext, Recipe, register
from .contrastive import ProjectionHead, SeriesContrastive, augment
from .data import SeriesSet, batch_arrays
from .masked import MaskedHead, SeriesMasked
from .models import PatchTransformerEncoder
from .temporal import SeriesTemporal, TemporalHead

# Held-out metric name per objective: the objective's own loss on the held-out slice.
HELDOUT_METRIC = {
    "masked": "reconstruction_mse",
    "temporal": "forecast_mse",
    "contrastive": "contrastive_loss",
}


class SeriesPretext(Pretext):
    """Encoder plus the head its objective needs (one state_dict, one optimizer)."""

    def __init__(
        self,
        config: TrainConfig,
        channels: int,
        max_length: int,
        mean: list[float] | None = None,
        std: list[float] | None = None,
    ) -> None:
        super().__init__(config)
        assert config.hidden is not None and config.mask_rate is not None
        self.encoder = PatchTransformerEncoder(config, channels, max_length, mean, std)
        self.patch_values = channels * config.series_patch
        self.add_heads()

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
        objective = self.phase(0, 1)
        total, weight, clean, view_a, view_b = 0.0, 0.0, [], [], []
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(0)
            for i, start in enumerate(range(0, len(heldout), batch_size)):
                indices = np.arange(start, min(start + batch_size, len(heldout)))
                batch = objective.collate(heldout, indices, step_generator(12345, i))
                batch = {k: v.to(device) for k, v in batch.items()}
                loss, stats = objective.loss(self.encoder, batch)
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


def masked_head(p: SeriesPretext) -> dict[str, nn.Module]:
    assert p.config.hidden
    return {"masked": MaskedHead(p.config.hidden, p.patch_values)}


def temporal_head(p: SeriesPretext) -> dict[str, nn.Module]:
    c = p.config
    assert c.hidden
    return {"temporal": TemporalHead(c.hidden, c.predict_patches, p.patch_values)}


def projection_head(p: SeriesPretext) -> dict[str, nn.Module]:
    assert p.config.hidden
    return {"projection": ProjectionHead(p.config.hidden)}


def build_masked(p: SeriesPretext) -> SeriesMasked:
    assert p.config.mask_rate is not None
    return SeriesMasked(p.heads["masked"], p.config.mask_rate, p.config.series_patch)


def build_temporal(p: SeriesPretext) -> SeriesTemporal:
    return SeriesTemporal(p.heads["temporal"], p.config.series_patch)


def build_contrastive(p: SeriesPretext) -> SeriesContrastive:
    c = p.config
    return SeriesContrastive(p.heads["projection"], c.simclr_temperature, c.series_patch)


register("timeseries", "masked", Recipe(masked_head, (build_masked,)))
register("timeseries", "temporal", Recipe(temporal_head, (build_temporal,)))
register("timeseries", "contrastive", Recipe(projection_head, (build_contrastive,)))
