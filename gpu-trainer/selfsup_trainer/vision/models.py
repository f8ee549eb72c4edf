"""Image encoders whose forward pass returns the final L2-normalised embedding, as exported.

Both take normalized ``pixel_values [B, C, S, S]`` (decision 0005) and return ``[B, hidden]``:

- :class:`ViTEncoder`: patch embedding, fixed 2-D sin-cos positions, the core's pre-LN
  :class:`~selfsup_trainer.transformer.BlockStack`, mean (or [CLS]) pooling. MAE feeds it
  only the visible patches through :meth:`ViTEncoder.patch_tokens`.
- :class:`ResNetEncoder`: a CIFAR-style ResNet (3x3 stem, no max-pool, four stages of basic
  blocks) with global average pooling. Stage widths are ``hidden/8, /4, /2, hidden``.

Both expose :meth:`pooled` (before the L2 norm) for heads that need the raw representation.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TrainConfig
from ..transformer import BlockStack


def sincos_2d(grid: int, dims: int) -> torch.Tensor:
    """Fixed 2-D sin-cos position embeddings (MAE, He et al. 2021).

    A quarter of the dimensions each hold sin/cos of the row and of the column at geometric
    frequencies; dimensions left over when ``dims`` is not a multiple of 4 are zero.

    Returns:
        float32 [1, grid * grid, dims], row-major over the patch grid.
    """
    quarter = dims // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / max(1, quarter))
    rows, cols = torch.meshgrid(
        torch.arange(grid, dtype=torch.float64),
        torch.arange(grid, dtype=torch.float64),
        indexing="ij",
    )
    parts = []
    for coord in (rows.reshape(-1), cols.reshape(-1)):
        angles = coord[:, None] * omega[None]
        parts += [angles.sin(), angles.cos()]
    table = torch.cat(parts, dim=1)
    table = F.pad(table, (0, dims - table.shape[1]))
    return table.float()[None]


class ViTEncoder(BlockStack):
    """Vision Transformer: pixel_values [B, C, S, S] -> L2-normalised [B, hidden].

    Args:
        config: resolved config (layers/hidden/heads/intermediate/dropout, image_size,
            patch_size, pooling).
        channels: C, 1 or 3.
    """

    def __init__(self, config: TrainConfig, channels: int) -> None:
        super().__init__()
        assert config.hidden and config.layers and config.heads and config.intermediate
        if config.image_size % config.patch_size:
            raise ValueError(
                f"patch_size={config.patch_size} must divide image_size={config.image_size}"
            )
        self.patch = config.patch_size
        self.grid = config.image_size // config.patch_size
        self.channels = channels
        self.pooling = config.pooling
        # A stride-p convolution is the usual linear patch projection, in one kernel.
        self.embed = nn.Conv2d(channels, config.hidden, self.patch, stride=self.patch)
        # Fixed, not learned: nothing to fit on small sets, and MAE's decoder uses the same kind.
        self.register_buffer("pos", sincos_2d(self.grid, config.hidden), persistent=False)
        self.cls = nn.Parameter(torch.zeros(1, 1, config.hidden)) if self.pooling == "cls" else None
        self.drop = nn.Dropout(config.dropout)
        self.init_stack(config)
        # The patch projection is a linear map; init it like one (MAE: xavier on the flat view).
        nn.init.xavier_uniform_(self.embed.weight.view(config.hidden, -1))
        nn.init.zeros_(self.embed.bias)
        if self.cls is not None:
            nn.init.normal_(self.cls, std=0.02)

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    def tokens(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[B, C, S, S] -> patch embeddings with positions [B, P, hidden] (row-major patches)."""
        return self.embed(pixel_values).flatten(2).transpose(1, 2) + self.pos

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Run the transformer over ``tokens`` [B, T, hidden]; prepends [CLS] when pooling is cls.

        Returns:
            [B, T (+1), hidden] final-LayerNorm states.
        """
        if self.cls is not None:
            tokens = torch.cat([self.cls.expand(len(tokens), -1, -1), tokens], dim=1)
        # No padding in images: attend everywhere (mask None).
        return self.run_blocks(self.drop(tokens), None)

    def patch_tokens(self, pixel_values: torch.Tensor, keep_idx: torch.Tensor) -> torch.Tensor:
        """Encode only the patches in ``keep_idx`` (MAE).

        Args:
            pixel_values: [B, C, S, S] normalized.
            keep_idx: [B, K] int64 patch indices (row-major) to keep, per image.

        Returns:
            [B, K, hidden] states of the kept patches, in ``keep_idx`` order ([CLS] dropped).
        """
        tokens = self.tokens(pixel_values)
        index = keep_idx[:, :, None].expand(-1, -1, tokens.shape[-1])
        states = self.encode(torch.gather(tokens, 1, index))
        return states[:, 1:] if self.cls is not None else states

    def pooled(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[B, C, S, S] -> [B, hidden] pooled representation before the L2 norm."""
        states = self.encode(self.tokens(pixel_values))
        return states[:, 0] if self.cls is not None else states.mean(dim=1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[B, C, S, S] normalized pixels -> [B, hidden] unit vectors (the ``embeddings``)."""
        return F.normalize(self.pooled(pixel_values), p=2.0, dim=-1)


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a residual (1x1 conv-BN when the shape changes)."""

    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        # Zero-init the last BN gain so every block starts as the identity (Goyal et al. 2017).
        nn.init.zeros_(self.bn2.weight)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


def resnet_shape(config: TrainConfig) -> tuple[list[int], int]:
    """Stage widths and blocks per stage for a preset.

    Widths are ``hidden/8, hidden/4, hidden/2, hidden`` (``small``: ResNet-18's 64..512); one
    block per stage up to 4 layers, so ``small`` stays under the edge's ~25 MB (its convolutions
    are not quantized), then ``layers / 4`` rounded up (``base``: 3).
    """
    assert config.hidden and config.layers
    hidden = config.hidden
    widths = [max(8, hidden // 8), max(8, hidden // 4), max(8, hidden // 2), hidden]
    return widths, max(1, math.ceil(config.layers / 4))


class ResNetEncoder(nn.Module):
    """CIFAR-style ResNet: pixel_values [B, C, S, S] -> L2-normalised [B, hidden].

    Args:
        config: resolved config (hidden and layers pick widths and depth, see
            :func:`resnet_shape`).
        channels: C, 1 or 3.
    """

    def __init__(self, config: TrainConfig, channels: int) -> None:
        super().__init__()
        widths, blocks = resnet_shape(config)
        self.widths, self.blocks_per_stage = widths, blocks
        self.stem = nn.Sequential(
            nn.Conv2d(channels, widths[0], 3, 1, 1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        inputs = widths[0]
        for stage, width in enumerate(widths):
            for block in range(blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(BasicBlock(inputs, width, stride))
                inputs = width
        self.stages = nn.Sequential(*layers)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def pooled(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[B, C, S, S] -> [B, hidden] global-average-pooled features before the L2 norm."""
        return self.stages(self.stem(pixel_values)).mean(dim=(2, 3))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[B, C, S, S] normalized pixels -> [B, hidden] unit vectors (the ``embeddings``)."""
        return F.normalize(self.pooled(pixel_values), p=2.0, dim=-1)


def build_encoder(config: TrainConfig, channels: int) -> ViTEncoder | ResNetEncoder:
    """The encoder ``config.architecture`` names (``vit`` or ``resnet``; resolve() picked auto)."""
    if config.architecture == "vit":
        return ViTEncoder(config, channels)
    if config.architecture == "resnet":
        return ResNetEncoder(config, channels)
    raise ValueError(
        f"architecture={config.architecture!r} is not an image encoder; use vit or resnet"
    )


def describe(encoder: nn.Module, config: TrainConfig) -> dict[str, Any]:
    """The manifest's ``architecture`` entry."""
    if isinstance(encoder, ResNetEncoder):
        return {
            "type": "resnet",
            "layers": config.layers,  # with hidden, rebuilds widths and depth (resnet_shape)
            "widths": encoder.widths,
            "blocks_per_stage": encoder.blocks_per_stage,
            "hidden": config.hidden,
            "parameters": sum(p.numel() for p in encoder.parameters()),
        }
    return {
        "type": "vit",
        "layers": config.layers,
        "hidden": config.hidden,
        "heads": config.heads,
        "intermediate": config.intermediate,
        "patch_size": config.patch_size,
        "image_size": config.image_size,
        "parameters": sum(p.numel() for p in encoder.parameters()),
    }
