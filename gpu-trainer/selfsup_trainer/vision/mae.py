"""Masked autoencoder (He et al., 2021): hide most patches, encode only the visible ones, and let
a light decoder reconstruct the pixels of the hidden ones.

The encoder never sees mask tokens (so pretraining costs ~1/4 of a full forward at 75% masking);
the decoder (a couple of narrow blocks) gets the encoded visible patches plus one shared mask
token per hidden position, with fixed positions. The target is each hidden patch's pixels,
normalized per patch (the paper's ``norm_pix_loss``, which gives better features), and the loss
is the mean squared error over hidden patches only. Only the encoder is exported.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..transformer import Block, init_weights
from .augment import AugmentSpec, augment, draw
from .models import sincos_2d


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """[B, C, S, S] -> [B, P, patch * patch * C], patches row-major as the ViT embeds them."""
    b, c, s, _ = x.shape
    g = s // patch
    x = x.reshape(b, c, g, patch, g, patch).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(b, g * g, patch * patch * c)


def mask_indices(
    count: int, patches: int, mask_rate: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image random masks: the visible and hidden patch indices.

    Returns:
        keep [count, K] and masked [count, patches - K] int64, K = round(patches * (1 - rate))
        clamped to [1, patches - 1] (something is always seen and something always predicted).
    """
    visible = min(max(1, round(patches * (1.0 - mask_rate))), patches - 1)
    order = torch.rand(count, patches, generator=generator).argsort(dim=1)
    return order[:, :visible], order[:, visible:]


def masked_mse(pred: torch.Tensor, target: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """Mean squared error on the hidden patches only.

    Args:
        pred: [B, M, D] predictions for the hidden patches, in ``masked`` order.
        target: [B, P, D] targets for every patch.
        masked: [B, M] int64 indices of the hidden patches.

    Returns:
        Scalar; visible patches' targets never enter it.
    """
    chosen = torch.gather(target, 1, masked[:, :, None].expand(-1, -1, target.shape[-1]))
    return F.mse_loss(pred.float(), chosen.float())


def patch_targets(x: torch.Tensor, patch: int) -> torch.Tensor:
    """Each patch's pixels normalized by their own mean and variance: [B, P, D]."""
    t = patchify(x.float(), patch)
    mean, var = t.mean(dim=-1, keepdim=True), t.var(dim=-1, keepdim=True)
    return (t - mean) / (var + 1e-6).sqrt()


class MAEDecoder(nn.Module):
    """Encoded visible patches -> pixel predictions for the hidden ones.

    Args:
        hidden: encoder width.
        grid: patches per side (P = grid²).
        patch_dim: pixels per patch (patch² · C).
        width: decoder width (narrower than the encoder: the decoder is thrown away).
        layers: decoder blocks.
    """

    def __init__(self, hidden: int, grid: int, patch_dim: int, width: int, layers: int = 2):
        super().__init__()
        heads = max(1, width // 32)
        self.embed = nn.Linear(hidden, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.register_buffer("pos", sincos_2d(grid, width), persistent=False)
        self.blocks = nn.ModuleList(Block(width, heads, 4 * width, 0.0) for _ in range(layers))
        self.ln = nn.LayerNorm(width)
        self.pred = nn.Linear(width, patch_dim)
        self.apply(init_weights)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(
        self, visible: torch.Tensor, keep: torch.Tensor, masked: torch.Tensor
    ) -> torch.Tensor:
        """
        Args:
            visible: [B, K, hidden] encoder states of the kept patches (``keep`` order).
            keep: [B, K] their patch indices.
            masked: [B, M] hidden patch indices.

        Returns:
            [B, M, patch_dim] predictions in ``masked`` order.
        """
        v = self.embed(visible)
        b, _, width = v.shape
        full = self.mask_token.to(v.dtype).expand(b, self.pos.shape[1], width)
        full = full.scatter(1, keep[:, :, None].expand(-1, -1, width), v) + self.pos
        for block in self.blocks:
            full = block(full, None)
        hidden = torch.gather(full, 1, masked[:, :, None].expand(-1, -1, width))
        return self.pred(self.ln(hidden))


def decoder_width(hidden: int) -> int:
    """Half the encoder width, a multiple of 32 (the decoder's head size), at least 32."""
    return max(32, hidden // 2 // 32 * 32)


class MAE:
    """The MAE objective; the decoder lives in the pretext's ``heads``.

    Args:
        decoder: :class:`MAEDecoder`.
        mask_rate: share of patches hidden per image (config.mask_rate, 0.75 by default).
        patch: patch side in pixels.
        patches: patches per image.
        spec: augmentations (crop and flip).
        mean / std: [C] per-channel statistics applied after augmentation.
    """

    name = "mae"
    unit_name = "img"
    predicted_fraction = 0.0

    def __init__(
        self,
        decoder: MAEDecoder,
        mask_rate: float,
        patch: int,
        patches: int,
        spec: AugmentSpec,
        mean: torch.Tensor,
        std: torch.Tensor,
    ) -> None:
        self.decoder = decoder
        self.mask_rate = mask_rate
        self.patch, self.patches = patch, patches
        self.spec = spec
        self.mean, self.std = mean, std

    def collate(self, data: Any, indices: np.ndarray, generator: torch.Generator) -> dict:
        """Images (0-255), their augmentation uniforms and per-image visible/hidden patches."""
        index = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        aug = draw(len(index), generator)
        keep, masked = mask_indices(len(index), self.patches, self.mask_rate, generator)
        return {"images": data.images[index], "aug": aug, "keep": keep, "masked": masked}

    def inputs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Augmented, normalized pixel_values [B, C, S, S]."""
        x = augment(batch["images"], batch["aug"], self.spec)
        mean = self.mean.to(x.device)[None, :, None, None]
        std = self.std.to(x.device)[None, :, None, None]
        return (x - mean) / std

    def loss(self, encoder: nn.Module, batch: dict[str, torch.Tensor]):
        x = self.inputs(batch)
        visible = encoder.patch_tokens(x, batch["keep"])
        pred = self.decoder(visible, batch["keep"], batch["masked"])
        return masked_mse(pred, patch_targets(x, self.patch), batch["masked"]), {}

    def units(self, batch: dict[str, torch.Tensor]) -> tuple[int, int, int]:
        """(images, images, images)."""
        n = int(batch["images"].shape[0])
        return n, n, n
