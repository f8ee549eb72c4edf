"""The image pretext: encoder + objective heads + the dataset's normalization, as one module.

Holding mean/std as buffers means a checkpoint alone can rebuild the exact ``pixel_values``
the encoder was trained on (the eval probes of :func:`..pipeline.checkpoint_probe` need that).
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import TrainConfig
from ..losses import alignment, nt_xent, uniformity
from ..objective import Pretext, Recipe, register
from .augment import mae_spec, simclr_spec
from .data import ImageSet
from .mae import MAE, MAEDecoder, decoder_width, masked_mse, patch_targets
from .models import build_encoder
from .simclr import ProjectionHead, SimCLR

EVAL_SEED = 0x5EED  # held-out augmentations/masks are the same at every evaluation


class ImagePretext(Pretext):
    """Encoder plus the head its objective needs (SimCLR projection or MAE decoder).

    Args:
        config: resolved config (modality image, objective simclr|mae).
        channels: C of the data (the model's input channels).
        mean / std: per-channel statistics of ``pixels / 255`` (the manifest's normalization).
    """

    def __init__(
        self, config: TrainConfig, channels: int, mean: list[float], std: list[float]
    ) -> None:
        super().__init__(config)
        assert config.hidden
        self.channels = channels
        self.encoder = build_encoder(config, channels)
        self.register_buffer("pixel_mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("pixel_std", torch.tensor(std, dtype=torch.float32))
        self.add_heads()

    @torch.no_grad()
    def evaluate(self, heldout: ImageSet, device: torch.device) -> dict[str, float]:
        """Held-out metrics with fixed augmentations and masks.

        SimCLR: ``heldout_loss`` (NT-Xent over batches of ``batch_size``), and Wang & Isola's
        ``alignment`` (mean squared distance between the two views' embeddings; lower is better)
        and ``uniformity`` (log mean exp(-2 d²) over pairs of images; lower is more spread).
        MAE: ``heldout_loss``, the masked-patch reconstruction error.
        """
        was_training = self.training
        self.eval()
        objective = self.phase(0, 1)
        assert isinstance(objective, SimCLR | MAE)
        generator = torch.Generator().manual_seed(EVAL_SEED)
        size = min(self.config.batch_size, len(heldout))
        losses, weights, first, second = [], [], [], []
        indices = torch.arange(len(heldout)).numpy()
        try:
            for start in range(0, len(heldout) - size + 1, size):  # full batches: same negatives
                batch = objective.collate(heldout, indices[start : start + size], generator)
                batch = {k: v.to(device) for k, v in batch.items()}
                if isinstance(objective, SimCLR):
                    views = objective.views(batch)
                    h = self.encoder.pooled(views)
                    losses.append(
                        float(nt_xent(self.heads["projection"](h), objective.temperature))
                    )
                    z = nn.functional.normalize(h.float(), dim=1)
                    first.append(z[:size])
                    second.append(z[size:])
                else:
                    x = objective.inputs(batch)
                    visible = self.encoder.patch_tokens(x, batch["keep"])
                    pred = objective.decoder(visible, batch["keep"], batch["masked"])
                    target = patch_targets(x, objective.patch)
                    losses.append(float(masked_mse(pred, target, batch["masked"])))
                weights.append(size)
        finally:
            self.train(was_training)
        metrics = {"heldout_loss": sum(w * v for w, v in zip(weights, losses, strict=True))}
        metrics["heldout_loss"] /= max(1, sum(weights))
        if first:
            metrics["alignment"] = alignment(torch.cat(first), torch.cat(second))
            metrics["uniformity"] = uniformity(torch.cat(first))
        return metrics


def projection_head(p: ImagePretext) -> dict[str, nn.Module]:
    assert p.config.hidden
    return {"projection": ProjectionHead(p.config.hidden, min(128, p.config.hidden))}


def mae_decoder(p: ImagePretext) -> dict[str, nn.Module]:
    c = p.config
    assert c.hidden
    if c.architecture != "vit":
        raise ValueError(f"objective='mae' needs architecture='vit', got {c.architecture!r}")
    grid = c.image_size // c.patch_size
    width = decoder_width(c.hidden)
    return {"decoder": MAEDecoder(c.hidden, grid, c.patch_size**2 * p.channels, width)}


def build_simclr(p: ImagePretext) -> SimCLR:
    c = p.config
    spec = simclr_spec(c.crop_min_scale, c.image_size)
    return SimCLR(p.heads["projection"], c.simclr_temperature, spec, p.pixel_mean, p.pixel_std)


def build_mae(p: ImagePretext) -> MAE:
    c = p.config
    assert c.mask_rate is not None
    patches = (c.image_size // c.patch_size) ** 2
    return MAE(
        p.heads["decoder"], c.mask_rate, c.patch_size, patches, mae_spec(c.crop_min_scale),
        p.pixel_mean, p.pixel_std,
    )  # fmt: skip


register("image", "simclr", Recipe(projection_head, (build_simclr,)))
register("image", "mae", Recipe(mae_decoder, (build_mae,)))
