"""Batched SimCLR augmentations: shapes, reproducibility, and each op against its definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from selfsup_trainer.vision import augment as A
from selfsup_trainer.vision import sample_data
from selfsup_trainer.vision.augment import AugmentSpec, augment, draw

OFF = AugmentSpec(flip=False, jitter_p=0.0, grey_p=0.0, blur_p=0.0)


@pytest.fixture(scope="module")
def rgb() -> torch.Tensor:
    """8 real colour images [8, 3, 16, 16] on the 0-255 scale: digits stacked as R, G, B."""
    images, _ = sample_data.digits()
    x = torch.from_numpy(images[:24].astype(np.float32)).reshape(8, 3, 8, 8)
    return F.interpolate(x, size=16, mode="bilinear", antialias=True)


def identity_u(n: int) -> torch.Tensor:
    """Uniforms for a full-image crop at aspect 1, no flip, no jitter/grey/blur."""
    u = torch.full((n, A.N_PARAMS), 0.99)
    u[:, A.CROP_SCALE], u[:, A.CROP_RATIO] = 1.0, 0.5
    u[:, A.CROP_X] = u[:, A.CROP_Y] = 0.5
    return u


def test_shapes_range_and_reproducibility(rgb):
    spec = AugmentSpec(crop_min_scale=0.3, blur_p=0.5)
    u = draw(8, torch.Generator().manual_seed(3))
    out = augment(rgb, u, spec)
    assert out.shape == rgb.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, augment(rgb, draw(8, torch.Generator().manual_seed(3)), spec))
    other = augment(rgb, draw(8, torch.Generator().manual_seed(4)), spec)
    assert not torch.allclose(out, other)
    grey = augment(rgb[:, :1], u, spec)
    assert grey.shape == (8, 1, 16, 16)


def test_full_crop_is_identity_and_flip_mirrors(rgb):
    u = identity_u(8)
    np.testing.assert_allclose(augment(rgb, u, OFF), rgb / 255, atol=1e-5)
    u[:, A.FLIP] = 0.0
    flipped = augment(rgb, u, AugmentSpec(flip=True, jitter_p=0.0, grey_p=0.0, blur_p=0.0))
    np.testing.assert_allclose(flipped, rgb.flip(-1) / 255, atol=1e-5)


def test_crop_area_follows_the_scale(rgb):
    """A centred half-side crop (area 1/4) is the image's middle, magnified 2x."""
    u = identity_u(8)
    u[:, A.CROP_SCALE] = 0.0
    out = augment(rgb, u, AugmentSpec(crop_min_scale=0.25, flip=False, jitter_p=0, blur_p=0))
    middle = F.interpolate(rgb[:, :, 4:12, 4:12], size=16, mode="bilinear", align_corners=False)
    np.testing.assert_allclose(out[:, :, 2:-2, 2:-2], middle[:, :, 2:-2, 2:-2] / 255, atol=1e-4)


def test_jitter_and_grey_follow_their_definitions(rgb):
    x = rgb / 255
    u = identity_u(8)
    u[:, A.JITTER] = 0.0
    u[:, A.BRIGHTNESS] = 1.0  # factor 1 + 0.4
    u[:, [A.CONTRAST, A.SATURATION, A.HUE]] = 0.5  # neutral
    spec = AugmentSpec(flip=False, grey_p=0.0, blur_p=0.0)
    np.testing.assert_allclose(A.colour_jitter(x, u, spec), (x * 1.4).clamp(0, 1), atol=1e-5)
    u[:, A.BRIGHTNESS] = 0.5
    u[:, A.HUE] = 1.0  # a hue turn keeps luma (Y of YIQ) where nothing clips
    turned = A.colour_jitter(x * 0.5 + 0.25, u, spec)
    np.testing.assert_allclose(A.grey(turned), A.grey(x * 0.5 + 0.25), atol=1e-4)
    u[:, A.GREY] = torch.tensor([0.0, 1.0] * 4)  # every other image turns grey
    out = A.random_grey(x, u, AugmentSpec(grey_p=0.2))
    luma = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    for c in range(3):
        np.testing.assert_allclose(out[0::2, c], luma[0::2], atol=1e-6)
    assert torch.equal(out[1::2], x[1::2])


def test_blur_is_a_per_image_gaussian(rgb):
    x = rgb / 255
    u = identity_u(8)
    u[:, A.BLUR] = torch.tensor([0.0, 0.9] * 4)  # even images blurred, odd untouched
    u[:, A.BLUR_SIGMA] = torch.linspace(0, 1, 8)
    spec = AugmentSpec(blur_p=0.5, blur_sigma=(0.5, 2.0))
    out = A.gaussian_blur(x, u, spec)
    assert torch.equal(out[1::2], x[1::2])
    for i in (0, 2, 6):  # reference: one image at a time with a 2-D kernel
        sigma = 0.5 + 1.5 * float(u[i, A.BLUR_SIGMA])
        taps = torch.arange(3.0) - 1
        k = torch.exp(-(taps**2) / (2 * sigma**2))
        k2 = torch.outer(k / k.sum(), k / k.sum())
        ref = F.conv2d(
            F.pad(x[i : i + 1], (1, 1, 1, 1), mode="reflect"), k2.expand(3, 1, 3, 3), groups=3
        )
        np.testing.assert_allclose(out[i : i + 1], ref, atol=1e-5)
