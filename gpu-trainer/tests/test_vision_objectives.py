"""SimCLR's NT-Xent and MAE's masking/loss against their definitions; encoder shapes and sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from selfsup_trainer.config import TrainConfig
from selfsup_trainer.losses import nt_xent
from selfsup_trainer.vision.data import ImageSet
from selfsup_trainer.vision.mae import mask_indices, masked_mse, patchify
from selfsup_trainer.vision.models import ResNetEncoder, ViTEncoder, build_encoder
from selfsup_trainer.vision.pretext import ImagePretext


def image_config(objective: str, **overrides) -> TrainConfig:
    base = {
        "modality": "image",
        "objective": objective,
        "preset": "tiny",
        "hidden": 32,
        "heads": 2,
        "layers": 1,
        "intermediate": 64,
        "image_size": 16,
        "patch_size": 4,
        "channels": 1,
        "steps": 1,
    }
    return TrainConfig(**{**base, **overrides}).resolve()


def test_nt_xent_equals_a_naive_loop():
    torch.manual_seed(0)
    z = torch.randn(12, 5)
    t = 0.2
    n = len(z) // 2
    u = z / z.norm(dim=1, keepdim=True)
    total = 0.0
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        others = [k for k in range(2 * n) if k != i]  # 1 positive + 2N - 2 negatives
        denominator = sum(math.exp(float(u[i] @ u[k]) / t) for k in others)
        total += -math.log(math.exp(float(u[i] @ u[positive]) / t) / denominator)
    assert float(nt_xent(z, t)) == pytest.approx(total / (2 * n), rel=1e-5)
    with pytest.raises(ValueError, match="even number of rows"):
        nt_xent(z[:5], t)


def test_mae_masks_the_configured_share_per_image():
    keep, masked = mask_indices(64, 16, 0.75, torch.Generator().manual_seed(0))
    assert keep.shape == (64, 4) and masked.shape == (64, 12)
    both = torch.cat([keep, masked], dim=1).sort(dim=1).values
    assert torch.equal(both, torch.arange(16).expand(64, -1))  # a partition of the patches
    assert len({tuple(row) for row in keep.sort(dim=1).values.tolist()}) > 50  # per image
    again, _ = mask_indices(64, 16, 0.75, torch.Generator().manual_seed(0))
    assert torch.equal(keep, again)
    assert mask_indices(2, 4, 0.99, torch.Generator())[0].shape == (2, 1)  # always one visible


def test_mae_loss_touches_only_masked_patches():
    torch.manual_seed(0)
    keep, masked = mask_indices(4, 16, 0.75, torch.Generator().manual_seed(1))
    target = torch.randn(4, 16, 48)
    pred = torch.randn(4, 12, 48)
    loss = masked_mse(pred, target, masked)
    changed = target.clone()
    changed.scatter_(1, keep[:, :, None].expand(-1, -1, 48), 100.0)  # visible targets only
    assert float(masked_mse(pred, changed, masked)) == float(loss)
    expected = torch.stack([((pred[b] - target[b, masked[b]]) ** 2).mean() for b in range(4)])
    assert float(loss) == pytest.approx(float(expected.mean()), rel=1e-6)


def test_mae_step_trains_encoder_and_decoder():
    """One collate + loss + backward through the pretext reaches both encoder and decoder."""
    config = image_config("mae")
    pretext = ImagePretext(config, 1, [0.3], [0.3])
    data = ImageSet(torch.rand(4, 1, 16, 16) * 255, None, [0.3], [0.3])
    objective = pretext.phase(0, 1)
    batch = objective.collate(data, np.arange(4), torch.Generator().manual_seed(0))
    loss, _ = pretext(batch, objective)
    loss.backward()
    assert pretext.heads["decoder"].pred.weight.grad.abs().sum() > 0
    assert pretext.encoder.embed.weight.grad.abs().sum() > 0


def test_patch_order_matches_the_vit_tokens():
    """MAE's targets are laid out in the same patch order the ViT embeds."""
    config = image_config("mae", channels=3)
    vit = ViTEncoder(config, 3)
    x = torch.randn(2, 3, 16, 16)
    conv = vit.embed(x).flatten(2).transpose(1, 2)  # [B, P, hidden]
    # A stride-p conv is a matmul on each patch flattened as (row, col, channel) after a permute.
    w = vit.embed.weight.permute(0, 2, 3, 1).reshape(config.hidden, -1)
    linear = patchify(x, 4) @ w.T + vit.embed.bias
    np.testing.assert_allclose(conv.detach(), linear.detach(), atol=1e-5)
    all_idx = torch.arange(16).expand(2, -1)
    states = vit.eval().patch_tokens(x, all_idx)
    np.testing.assert_allclose(states.mean(1).detach(), vit.pooled(x).detach(), atol=1e-5)


@pytest.mark.parametrize("architecture", ["vit", "resnet"])
def test_encoders_return_unit_vectors(architecture):
    config = image_config("simclr", architecture=architecture, channels=3)
    encoder = build_encoder(config, 3).eval()
    out = encoder(torch.randn(5, 3, 16, 16))
    assert out.shape == (5, 32)
    np.testing.assert_allclose(out.norm(dim=1).detach(), np.ones(5), atol=1e-5)


def test_presets_fit_the_edge():
    """int8 files: ViT MatMuls quantize (1 byte/weight), ResNet convolutions stay fp32."""
    sizes = {}
    for preset in ("tiny", "mini", "small"):
        for arch, cls in (("vit", ViTEncoder), ("resnet", ResNetEncoder)):
            config = TrainConfig(
                modality="image", objective="simclr", architecture=arch, preset=preset, steps=1
            ).resolve()
            sizes[arch, preset] = sum(p.numel() for p in cls(config, 3).parameters())
    assert sizes["vit", "small"] * 1.05 < 25e6  # ~1 byte per parameter once quantized
    assert sizes["resnet", "small"] * 4 < 25e6  # fp32 convolutions
    assert sizes["resnet", "tiny"] < sizes["resnet", "mini"] < sizes["resnet", "small"]
