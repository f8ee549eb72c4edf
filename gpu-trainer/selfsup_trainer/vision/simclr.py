"""SimCLR (Chen et al., 2020): two augmented views of each image are a positive pair, the other
2N - 2 views of the batch are negatives (NT-Xent).

The loss acts on a projection head's output; the exported embedding is the encoder's pooled
representation *before* the head, which SimCLR found transfers better (their section 4.2).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..losses import nt_xent
from .augment import AugmentSpec, augment, draw


class ProjectionHead(nn.Module):
    """SimCLR v2-style MLP: Linear-BN-ReLU-Linear, ``[B, hidden] -> [B, dims]``."""

    def __init__(self, hidden: int, dims: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(hidden, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, dims),
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class SimCLR:
    """The SimCLR objective; the projection head lives in the pretext's ``heads``.

    Args:
        head: projection head.
        temperature: NT-Xent temperature.
        spec: augmentation strengths.
        mean / std: [C] per-channel statistics applied after augmentation (on the device).
    """

    name = "simclr"
    unit_name = "img"
    predicted_fraction = 0.0

    def __init__(
        self,
        head: ProjectionHead,
        temperature: float,
        spec: AugmentSpec,
        mean: torch.Tensor,
        std: torch.Tensor,
    ) -> None:
        self.head = head
        self.temperature = temperature
        self.spec = spec
        self.mean, self.std = mean, std

    def collate(self, data: Any, indices: np.ndarray, generator: torch.Generator) -> dict:
        """Images [N, C, S, S] (0-255) and the uniforms of their 2N views [2N, N_PARAMS]."""
        index = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return {"images": data.images[index], "aug": draw(2 * len(index), generator)}

    def views(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Both views of every image, normalized: [2N, C, S, S] (rows i and i + N pair up)."""
        images = batch["images"]
        x = augment(torch.cat([images, images]), batch["aug"], self.spec)
        mean = self.mean.to(x.device)[None, :, None, None]
        std = self.std.to(x.device)[None, :, None, None]
        return (x - mean) / std

    def loss(self, encoder: nn.Module, batch: dict[str, torch.Tensor]):
        x = self.views(batch)
        if x.is_cuda:  # cuDNN's NHWC convolutions are the fast path under bf16 (tensor cores)
            x = x.contiguous(memory_format=torch.channels_last)
        z = self.head(encoder.pooled(x))
        return nt_xent(z, self.temperature), {}

    def units(self, batch: dict[str, torch.Tensor]) -> tuple[int, int, int]:
        """(images, images, images): throughput counts dataset images (each encoded twice)."""
        n = int(batch["images"].shape[0])
        return n, n, n
