"""Patch Transformer for time series (PatchTST-style), exported as one ONNX graph.

The exported graph takes what the edge has after padding — raw ``values [B, C, L]`` and
``observed [B, L]`` — and does everything else itself: normalization (decision 0005: "in graph",
so the Worker never reimplements it), patching, the Transformer, masked-mean pooling and the
L2 norm. ``L`` is dynamic: any multiple of ``patch`` up to the trained ``max_length``.

The objectives use the pieces separately (:meth:`normalize`, :meth:`patches`, :meth:`encode`)
so they can swap in mask tokens or hide the future without a second model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TrainConfig
from ..transformer import BlockStack

EPS = 1e-5  # decision 0005: (x - mean) / (std + 1e-5)


class PatchTransformerEncoder(BlockStack):
    """values/observed -> L2-normalised ``[B, hidden]`` embeddings.

    Args:
        config: resolved config (hidden/layers/heads/intermediate/dropout, series_patch,
            normalization).
        channels: C, channels per series.
        max_length: longest input in points; a multiple of ``config.series_patch``.
        mean / std: per-channel dataset statistics, used when normalization is ``dataset``.
    """

    def __init__(
        self,
        config: TrainConfig,
        channels: int,
        max_length: int,
        mean: list[float] | None = None,
        std: list[float] | None = None,
    ) -> None:
        super().__init__()
        assert config.hidden and config.layers and config.heads and config.intermediate
        if max_length % config.series_patch:
            raise ValueError(
                f"max_length={max_length} is not a multiple of series_patch="
                f"{config.series_patch}; round it up to a multiple"
            )
        self.patch = config.series_patch
        self.channels = channels
        self.max_length = max_length
        self.normalization = config.normalization
        self.register_buffer(
            "mean", torch.tensor(mean if mean is not None else [0.0] * channels).float()
        )
        self.register_buffer(
            "std", torch.tensor(std if std is not None else [1.0] * channels).float()
        )
        # Each patch embeds its C*patch normalized values plus its patch observed flags, so a
        # padded point (value 0, flag 0) is distinguishable from a real 0.
        self.embed = nn.Linear(channels * self.patch + self.patch, config.hidden)
        self.pos = nn.Embedding(max_length // self.patch, config.hidden)
        self.drop = nn.Dropout(config.dropout)
        self.init_stack(config)

    @property
    def hidden(self) -> int:
        return self.embed.out_features

    @staticmethod
    def series_stats(
        values: torch.Tensor, observed: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-series, per-channel mean and population std over observed points.

        Args:
            values: [B, C, L]; observed: [B, L] float.

        Returns:
            mean and std, each [B, C, 1].
        """
        mask = observed[:, None, :]
        count = mask.sum(-1, keepdim=True).clamp(min=1.0)
        mean = (values * mask).sum(-1, keepdim=True) / count
        var = (((values - mean) * mask) ** 2).sum(-1, keepdim=True) / count
        return mean, var.sqrt()

    def normalize(
        self,
        values: torch.Tensor,
        observed: torch.Tensor,
        stats_observed: torch.Tensor | None = None,
        min_std: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Normalize per ``self.normalization``; padding is zeroed.

        Args:
            values: [B, C, L] raw values (anything on padding, but finite).
            observed: [B, L] float, 1 on real points.
            stats_observed: [B, L] the points the per-series statistics come from (default
                ``observed``); the temporal objective passes the context only, so the future's
                level and scale do not leak into the input.
            min_std: [B, C, 1] floor on the per-series std (temporal targets: a flat context
                must not blow them up); training only, never in the exported graph.

        Returns:
            [B, C, L] normalized values, 0 where ``observed`` is 0.
        """
        mask = observed[:, None, :]
        if self.normalization == "per_series":
            stats = observed if stats_observed is None else stats_observed
            mean, std = self.series_stats(values, stats)
            if min_std is not None:
                std = torch.maximum(std, min_std)
            values = (values - mean) / (std + EPS)
        elif self.normalization == "dataset":
            values = (values - self.mean[None, :, None]) / (self.std[None, :, None] + EPS)
        return values * mask

    def patches(
        self, normalized: torch.Tensor, observed: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Cut into non-overlapping patches.

        Args:
            normalized: [B, C, L] with L a multiple of ``patch``.
            observed: [B, L].

        Returns:
            patches [B, P, C*patch] (channel-major, 0 on unobserved points),
            points [B, P, patch] observed flags, real [B, P] bool (any point observed).
        """
        b, c, _ = normalized.shape
        x = (normalized * observed[:, None, :]).reshape(b, c, -1, self.patch)
        x = x.permute(0, 2, 1, 3).reshape(b, x.shape[2], c * self.patch)
        points = observed.reshape(b, -1, self.patch)
        return x, points, points.amax(-1) > 0

    def encode(
        self,
        patches: torch.Tensor,
        points: torch.Tensor,
        real: torch.Tensor,
        replace: torch.Tensor | None = None,
        token: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Transformer over patches; padded patches are masked out of attention.

        Args:
            patches: [B, P, C*patch]; points: [B, P, patch]; real: [B, P] bool.
            replace: [B, P] bool, patches whose embedding becomes ``token`` (masked modelling).
            token: [hidden] learned mask embedding.

        Returns:
            [B, P, hidden] patch states.
        """
        x = self.embed(torch.cat([patches, points], dim=-1))
        if replace is not None and token is not None:
            x = torch.where(replace[..., None], token.to(x.dtype), x)
        positions = torch.arange(x.shape[1], device=x.device)
        x = self.drop(x + self.pos(positions)[None])
        # Patch 0 is always a key: a row without real patches would otherwise attend to nothing
        # (NaN); with end padding patch 0 is real for every non-empty series anyway.
        return self.run_blocks(x, (real | (positions == 0)[None])[:, None, None, :])

    def pool(self, states: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Mean over real patches: [B, P, hidden] -> [B, hidden] (not normalized)."""
        weight = real.to(states.dtype)[..., None]
        return (states * weight).sum(1) / weight.sum(1).clamp(min=1.0)

    def patch_states(
        self, values: torch.Tensor, observed: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, C, L], [B, L] -> (states [B, P, hidden], real [B, P])."""
        patches, points, real = self.patches(self.normalize(values, observed), observed)
        return self.encode(patches, points, real), real

    def embed_unnormalized(self, values: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """Pooled [B, hidden] before the L2 norm (projection heads use it)."""
        states, real = self.patch_states(values, observed)
        return self.pool(states, real)

    def forward(self, values: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """
        Args:
            values: [B, C, L] float32, L a multiple of ``patch``, at most ``max_length``.
            observed: [B, L] float32, 1 on real points, 0 on padding.

        Returns:
            [B, hidden] L2-normalised embeddings (the exported ``embeddings`` output).
        """
        return F.normalize(self.embed_unnormalized(values, observed), p=2.0, dim=-1)


def shape_of_state(model_state: dict[str, torch.Tensor], patch: int) -> tuple[int, int]:
    """(channels, max_length) of an encoder from its weights (``encoder.`` prefixed keys)."""
    embed = model_state["encoder.embed.weight"]  # [hidden, C*patch + patch]
    channels = embed.shape[1] // patch - 1
    max_length = model_state["encoder.pos.weight"].shape[0] * patch
    return int(channels), int(max_length)
