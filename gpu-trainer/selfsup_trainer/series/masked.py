"""Masked patch reconstruction for time series (PatchTST's self-supervised task).

A share ``mask_rate`` (default 40%) of each series' real patches is replaced by a learned mask
token after the patch embedding; a linear head reconstructs those patches' normalized values,
and the loss is MSE over their observed points only (padding inside a last, partial patch is
not a target). Which patches are masked is drawn in collate from the step's generator, so a
resumed run masks exactly the same patches.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .data import SeriesSet, batch_arrays
from .models import PatchTransformerEncoder


def real_patches(observed: torch.Tensor, patch: int) -> torch.Tensor:
    """[B, L] observed flags -> [B, L / patch] bool, True where any point of the patch is real."""
    return observed.reshape(observed.shape[0], -1, patch).amax(-1) > 0


def choose_masked(real: torch.Tensor, rate: float, generator: torch.Generator) -> torch.Tensor:
    """Pick ``round(rate * n_real)`` real patches per row, at least 1, and leave at least one
    unmasked when the row has two or more (something must be visible to reconstruct from).

    Args:
        real: [B, P] bool.
        rate: share of real patches to mask, in (0, 1).
        generator: CPU generator of the step.

    Returns:
        [B, P] bool, a subset of ``real``.
    """
    n_real = real.sum(1)
    n_mask = torch.round(n_real.float() * rate).long().clamp(min=1)
    n_mask = torch.minimum(n_mask, (n_real - 1).clamp(min=1))
    scores = torch.rand(real.shape, generator=generator).masked_fill(~real, 2.0)
    ranks = scores.argsort(1).argsort(1)  # rank of each patch among its row's scores
    return (ranks < n_mask[:, None]) & real


class MaskedHead(nn.Module):
    """The learned mask token and the linear reconstruction head."""

    def __init__(self, hidden: int, patch_values: int) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.zeros(hidden))
        nn.init.trunc_normal_(self.token, std=0.02, a=-0.04, b=0.04)
        self.decoder = nn.Linear(hidden, patch_values)


class SeriesMasked:
    """Objective: collate (pad + choose masked patches) and loss."""

    name = "masked"
    unit_name = "pts"
    predicted_fraction = 0.0

    def __init__(self, head: MaskedHead, rate: float, patch: int) -> None:
        self.head, self.rate, self.patch = head, rate, patch

    def collate(
        self, data: SeriesSet, indices: np.ndarray, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        values, observed = batch_arrays(data, indices, self.patch)
        mask = choose_masked(real_patches(observed, self.patch), self.rate, generator)
        return {"values": values, "observed": observed, "mask": mask}

    def units(self, batch: dict[str, torch.Tensor]) -> tuple[int, int, int]:
        observed = batch["observed"]
        return int(observed.sum()), observed.numel(), observed.shape[0]

    def loss(self, encoder: PatchTransformerEncoder, batch: dict[str, torch.Tensor]):
        """
        Returns:
            (MSE over masked observed points, {"count": number of those points}).
        """
        values, observed, mask = batch["values"], batch["observed"], batch["mask"]
        patches, points, real = encoder.patches(encoder.normalize(values, observed), observed)
        states = encoder.encode(patches, points, real, replace=mask, token=self.head.token)
        predicted = self.head.decoder(states[mask]).float()  # [n_masked, C*patch]
        target = patches[mask]  # [n_masked, C*patch], 0 on unobserved points
        weight = points[mask].repeat(1, encoder.channels)  # channel-major, as in patches
        count = weight.sum()
        loss = (((predicted - target) ** 2) * weight).sum() / count.clamp(min=1.0)
        return loss, {"count": count}
