"""Contrastive learning for time series: two augmented views of each series are a positive pair,
the other 2(B-1) views of the batch are negatives (SimCLR's NT-Xent, ``simclr_temperature``).

Augmentations (TS2Vec / TF-C style, all batched tensor ops, drawn in collate from the step's
generator so a resumed run sees the same views): a random crop of 50-100% of the series moved to
the start (the edge pads at the end), per-channel scaling, Gaussian jitter relative to each
series' own std, and a masked span (up to 10% of the crop marked unobserved). The loss acts on a
projection head; the exported embedding is the L2-normalised pooled state before it (SimCLR).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..losses import nt_xent
from .data import SeriesSet, batch_arrays
from .models import PatchTransformerEncoder

CROP_MIN = 0.5  # shortest crop, as a share of the series
SCALE_STD = 0.1  # per-channel scale factor ~ N(1, 0.1)
JITTER = 0.05  # noise std as a share of each channel's std
SPAN_MAX = 0.1  # longest masked span, as a share of the crop


def augment(
    values: torch.Tensor, observed: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One random view per row.

    Args:
        values: [B, C, L] raw values, 0 on padding.
        observed: [B, L] end-padded observed flags.
        generator: CPU generator.

    Returns:
        values [B, C, L] and observed [B, L] of the views (still end-padded, except for the
        masked span).
    """
    b, c, width = values.shape
    lengths = observed.sum(1)
    crop = (lengths * (CROP_MIN + (1 - CROP_MIN) * torch.rand(b, generator=generator))).round()
    crop = crop.clamp(min=1.0)
    start = ((lengths - crop + 1) * torch.rand(b, generator=generator)).floor()
    steps = torch.arange(width)
    index = (start[:, None] + steps[None]).long().clamp(max=width - 1)  # [B, L]
    view = values.gather(2, index[:, None, :].expand(-1, c, -1))
    keep = (steps[None] < crop[:, None]).float()
    # Jitter scaled by each channel's own spread, so it means the same for any units.
    count = keep.sum(1, keepdim=True)[:, None]  # [B, 1, 1]
    mean = (view * keep[:, None]).sum(-1, keepdim=True) / count
    std = ((((view - mean) * keep[:, None]) ** 2).sum(-1, keepdim=True) / count).sqrt()
    noise = torch.randn(view.shape, generator=generator) * (JITTER * std)
    scale = 1.0 + SCALE_STD * torch.randn(b, c, 1, generator=generator)
    view = view * scale + noise
    span = (crop * SPAN_MAX * torch.rand(b, generator=generator)).floor()
    span_start = ((crop - span + 1) * torch.rand(b, generator=generator)).floor()
    in_span = (steps[None] >= span_start[:, None]) & (steps[None] < (span_start + span)[:, None])
    keep = keep * (~in_span).float()
    keep[:, 0] = 1.0  # the first point survives so no view is empty
    return view * keep[:, None], keep


class ProjectionHead(nn.Module):
    """SimCLR's MLP projection: hidden -> hidden -> min(hidden, 128)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, min(hidden, 128))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, hidden] -> [B, dims] unit vectors."""
        return F.normalize(self.net(x), dim=-1)


class SeriesContrastive:
    name = "contrastive"
    unit_name = "pts"
    predicted_fraction = 0.0

    def __init__(self, head: ProjectionHead, temperature: float, patch: int) -> None:
        self.head, self.temperature, self.patch = head, temperature, patch

    def collate(
        self, data: SeriesSet, indices: np.ndarray, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        values, observed = batch_arrays(data, indices, self.patch)
        values_a, observed_a = augment(values, observed, generator)
        values_b, observed_b = augment(values, observed, generator)
        return {
            "values": torch.cat([values_a, values_b]),
            "observed": torch.cat([observed_a, observed_b]),
        }

    def units(self, batch: dict[str, torch.Tensor]) -> tuple[int, int, int]:
        observed = batch["observed"]  # both views: each is encoded
        return int(observed.sum()), observed.numel(), observed.shape[0]

    def loss(self, encoder: PatchTransformerEncoder, batch: dict[str, torch.Tensor]):
        """
        Returns:
            (NT-Xent loss, {"count": number of pairs}).
        """
        z = self.head(encoder.embed_unnormalized(batch["values"], batch["observed"]))
        a, b = z.chunk(2)
        return nt_xent(torch.cat([a, b]), self.temperature), {"count": torch.tensor(a.shape[0])}
