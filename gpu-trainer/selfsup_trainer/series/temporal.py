"""Temporal prediction: forecast the next ``predict_patches`` patches from the context before them.

Each series is cut at a random patch boundary (drawn in collate from the step's generator); the
encoder sees only the context, as padding, so nothing after the cut reaches it — not even through
per-series normalization, whose mean/std come from the context alone. The targets are the next
patches normalized with the context mean and std (the scale-free forecasting of RevIN /
PatchTST), the std floored for the targets only at a quarter of the whole series' std so that a
flat context cannot blow them up; the loss is MSE over their observed points.

The head reads the last context patch state (local dynamics) and the pooled context (the
exported summary), so the embedding that is served is trained to carry what comes next.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .data import SeriesSet, batch_arrays
from .models import PatchTransformerEncoder

# The context std is floored at this share of the whole series' std: a flat context (GunPoint
# starts flat) would otherwise divide the targets by ~0 and the loss would run to thousands.
CONTEXT_STD_FLOOR = 0.25


def draw_cuts(lengths: torch.Tensor, patch: int, generator: torch.Generator) -> torch.Tensor:
    """Context length in patches per row, uniform in ``[1, n_patches - 1]`` (1 when the series
    has a single patch; such a row has no target and adds nothing to the loss).

    Args:
        lengths: [B] observed points per row.

    Returns:
        [B] int64.
    """
    n_patches = (lengths + patch - 1) // patch
    span = (n_patches - 1).clamp(min=1)
    u = torch.rand(lengths.shape, generator=generator)
    return 1 + (u * span).long().clamp(max=span - 1)


class TemporalHead(nn.Module):
    """Linear map from [last context state, pooled context] to the next patches' values."""

    def __init__(self, hidden: int, predict_patches: int, patch_values: int) -> None:
        super().__init__()
        self.predict_patches, self.patch_values = predict_patches, patch_values
        self.proj = nn.Linear(2 * hidden, predict_patches * patch_values)

    def forward(self, last: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        """[B, hidden] x 2 -> [B, predict_patches, C*patch]."""
        out = self.proj(torch.cat([last, pooled], dim=-1))
        return out.view(-1, self.predict_patches, self.patch_values)


def context_and_targets(
    encoder: PatchTransformerEncoder,
    values: torch.Tensor,
    observed: torch.Tensor,
    cut: torch.Tensor,
    horizon: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split a batch at ``cut`` patches.

    Returns:
        context patches [B, P, C*patch], context points [B, P, patch], context real [B, P],
        targets [B, horizon, C*patch] (normalized with context statistics) and their weights
        [B, horizon, C*patch] (1 on observed points of existing patches).
    """
    patch = encoder.patch
    steps = torch.arange(values.shape[2], device=values.device)
    context = observed * (steps[None] < (cut * patch)[:, None]).to(observed.dtype)
    normalized = encoder.normalize(values, observed, stats_observed=context)
    patches, points, real = encoder.patches(normalized, context)
    # Targets only: the floor depends on the whole series, so it must not touch the input.
    floor = CONTEXT_STD_FLOOR * encoder.series_stats(values, observed)[1]
    scaled = encoder.normalize(values, observed, stats_observed=context, min_std=floor)
    full, full_points, _ = encoder.patches(scaled, observed)
    index = cut[:, None] + torch.arange(horizon, device=cut.device)[None]  # [B, horizon]
    exists = (index < full.shape[1]).to(full.dtype)
    index = index.clamp(max=full.shape[1] - 1)
    targets = full.gather(1, index[..., None].expand(-1, -1, full.shape[2]))
    weights = full_points.gather(1, index[..., None].expand(-1, -1, patch)) * exists[..., None]
    return patches, points, real, targets, weights.repeat(1, 1, encoder.channels)


class SeriesTemporal:
    name = "temporal"
    unit_name = "pts"
    predicted_fraction = 0.0

    def __init__(self, head: TemporalHead, patch: int) -> None:
        self.head, self.patch = head, patch

    def collate(
        self, data: SeriesSet, indices: np.ndarray, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        values, observed = batch_arrays(data, indices, self.patch)
        lengths = observed.sum(1).long()
        cut = draw_cuts(lengths, self.patch, generator)
        return {"values": values, "observed": observed, "cut": cut}

    def units(self, batch: dict[str, torch.Tensor]) -> tuple[int, int, int]:
        observed = batch["observed"]
        return int(observed.sum()), observed.numel(), observed.shape[0]

    def loss(self, encoder: PatchTransformerEncoder, batch: dict[str, torch.Tensor]):
        """
        Returns:
            (MSE over the observed points of the predicted patches, {"count": those points}).
        """
        cut = batch["cut"]
        patches, points, real, targets, weights = context_and_targets(
            encoder, batch["values"], batch["observed"], cut, self.head.predict_patches
        )
        states = encoder.encode(patches, points, real)
        last_index = (cut - 1)[:, None, None].expand(-1, 1, states.shape[2])
        last = states.gather(1, last_index).squeeze(1)
        predicted = self.head(last, encoder.pool(states, real)).float()
        count = weights.sum()
        loss = (((predicted - targets) ** 2) * weights).sum() / count.clamp(min=1.0)
        return loss, {"count": count}
