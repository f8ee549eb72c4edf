"""SimCLR's augmentations as batched tensor ops on the device (Chen et al. 2020, appendix A).

One call augments a whole batch: random resized crop and horizontal flip are one
``affine_grid``/``grid_sample``; colour jitter, random grayscale and Gaussian blur (a separable,
grouped convolution with a kernel per image) are elementwise or single kernels. No per-image
Python.

The randomness is not drawn here: ``collate`` draws ``u = draw(n, generator)`` on the CPU from
the step's generator and puts it in the batch, and :func:`augment` turns those uniforms into
parameters. So a resumed run augments exactly as the uninterrupted one did, on any device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Columns of the uniform parameter matrix u [N, N_PARAMS].
CROP_SCALE, CROP_RATIO, CROP_X, CROP_Y, FLIP = 0, 1, 2, 3, 4
JITTER, BRIGHTNESS, CONTRAST, SATURATION, HUE = 5, 6, 7, 8, 9
GREY, BLUR, BLUR_SIGMA = 10, 11, 12
N_PARAMS = 13
LUMA = (0.299, 0.587, 0.114)  # the same weights as preprocess.GREY_WEIGHTS
# RGB <-> YIQ: hue rotation is a rotation of the (I, Q) chroma plane.
RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))
YIQ_TO_RGB = torch.linalg.inv(torch.tensor(RGB_TO_YIQ, dtype=torch.float64)).tolist()


@dataclass(frozen=True)
class AugmentSpec:
    """Strengths and probabilities (defaults: SimCLR's CIFAR recipe, colour strength 0.5).

    Attributes:
        crop_min_scale: smallest crop area as a fraction of the image (aspect in [3/4, 4/3]).
        flip: horizontal flip with probability 1/2.
        jitter_p: probability of colour jitter; brightness/contrast/saturation factors are drawn
            from ``[1 - s, 1 + s]`` and the hue shift from ``[-hue, hue]`` turns.
        grey_p: probability of converting a colour image to grey.
        blur_p: probability of a Gaussian blur (kernel ~10% of the side, sigma in blur_sigma).
    """

    crop_min_scale: float = 0.3
    flip: bool = True
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grey_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)


def simclr_spec(crop_min_scale: float, image_size: int) -> AugmentSpec:
    """SimCLR's augmentations; blur only from 64 px up, as SimCLR did for CIFAR's 32 px images
    (a 3-pixel kernel on a tiny image erases what the crop left)."""
    return AugmentSpec(crop_min_scale=crop_min_scale, blur_p=0.5 if image_size >= 64 else 0.0)


def mae_spec(crop_min_scale: float) -> AugmentSpec:
    """MAE's augmentations: random resized crop and flip only."""
    return AugmentSpec(crop_min_scale=crop_min_scale, jitter_p=0.0, grey_p=0.0, blur_p=0.0)


def draw(count: int, generator: torch.Generator) -> torch.Tensor:
    """Uniforms for ``count`` augmented images: float32 [count, N_PARAMS] on the CPU."""
    return torch.rand(count, N_PARAMS, generator=generator)


def grey(x: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> luma [N, 1, H, W] (the image itself when C == 1)."""
    if x.shape[1] == 1:
        return x
    w = x.new_tensor(LUMA)[None, :, None, None]
    return (x * w).sum(dim=1, keepdim=True)


def crop_and_flip(x: torch.Tensor, u: torch.Tensor, spec: AugmentSpec) -> torch.Tensor:
    """Random resized crop back to the input size, plus horizontal flip, in one resampling.

    Args:
        x: [N, C, S, S] float32.
        u: [N, N_PARAMS] uniforms (columns CROP_* and FLIP).

    Returns:
        [N, C, S, S].
    """
    lo = spec.crop_min_scale
    area = lo + (1.0 - lo) * u[:, CROP_SCALE]
    log_ratio = math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * u[:, CROP_RATIO]
    ratio = log_ratio.exp()
    # Width/height as fractions of the side; a crop wider than the image is clipped to it.
    w = (area * ratio).sqrt().clamp(max=1.0)
    h = (area / ratio).sqrt().clamp(max=1.0)
    cx = (2 * u[:, CROP_X] - 1) * (1 - w)  # centre in [-1, 1] coordinates, crop inside
    cy = (2 * u[:, CROP_Y] - 1) * (1 - h)
    sign = torch.where(u[:, FLIP] < 0.5, -1.0, 1.0) if spec.flip else torch.ones_like(w)
    zero = torch.zeros_like(w)
    theta = torch.stack(
        [torch.stack([w * sign, zero, cx], 1), torch.stack([zero, h, cy], 1)], 1
    )  # [N, 2, 3]: output coords -> input coords
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def colour_jitter(x: torch.Tensor, u: torch.Tensor, spec: AugmentSpec) -> torch.Tensor:
    """Brightness, contrast, then (colour only) saturation and hue, each clamped to [0, 1].

    Images whose JITTER uniform is >= ``jitter_p`` get neutral factors (1, 1, 1, 0 turns).

    Args:
        x: [N, C, S, S] in [0, 1].
        u: [N, N_PARAMS] uniforms.
    """
    on = (u[:, JITTER] < spec.jitter_p).float()

    def factor(column: int, strength: float) -> torch.Tensor:
        f = 1.0 + strength * (2 * u[:, column] - 1) * on
        return f[:, None, None, None]

    x = (x * factor(BRIGHTNESS, spec.brightness)).clamp(0, 1)
    mean = grey(x).mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * factor(CONTRAST, spec.contrast) + mean).clamp(0, 1)
    if x.shape[1] == 1:
        return x
    g = grey(x)
    x = (g + (x - g) * factor(SATURATION, spec.saturation)).clamp(0, 1)
    angle = (2 * math.pi * spec.hue * (2 * u[:, HUE] - 1) * on)[:, None, None]
    to_yiq = x.new_tensor(RGB_TO_YIQ)
    yiq = torch.einsum("ij,njhw->nihw", to_yiq, x)
    i, q = yiq[:, 1], yiq[:, 2]
    cos, sin = angle.cos(), angle.sin()
    yiq = torch.stack([yiq[:, 0], i * cos - q * sin, i * sin + q * cos], dim=1)
    return torch.einsum("ij,njhw->nihw", x.new_tensor(YIQ_TO_RGB), yiq).clamp(0, 1)


def random_grey(x: torch.Tensor, u: torch.Tensor, spec: AugmentSpec) -> torch.Tensor:
    """Colour images become their luma (replicated to 3 channels) with probability grey_p."""
    if x.shape[1] == 1 or spec.grey_p <= 0:
        return x
    chosen = (u[:, GREY] < spec.grey_p)[:, None, None, None]
    return torch.where(chosen, grey(x).expand_as(x), x)


def gaussian_blur(x: torch.Tensor, u: torch.Tensor, spec: AugmentSpec) -> torch.Tensor:
    """Per-image Gaussian blur as two grouped 1-D convolutions (reflect padding).

    Images not chosen (BLUR uniform >= blur_p) get a delta kernel, so one call covers all.
    """
    if spec.blur_p <= 0:
        return x
    n, c, height, width = x.shape
    size = max(3, int(0.1 * min(height, width)) // 2 * 2 + 1)  # odd, ~10% of the side
    lo, hi = spec.blur_sigma
    sigma = (lo + (hi - lo) * u[:, BLUR_SIGMA])[:, None]
    taps = torch.arange(size, device=x.device, dtype=x.dtype) - size // 2
    kernel = torch.exp(-(taps[None] ** 2) / (2 * sigma**2))
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    delta = (taps == 0).to(x.dtype)[None].expand(n, -1)
    kernel = torch.where((u[:, BLUR] < spec.blur_p)[:, None], kernel, delta)  # [N, size]
    kernel = kernel.repeat_interleave(c, dim=0)  # one kernel per (image, channel) group
    pad = size // 2
    y = x.reshape(1, n * c, height, width)
    y = F.conv2d(F.pad(y, (pad, pad, 0, 0), mode="reflect"), kernel[:, None, None, :], groups=n * c)
    y = F.conv2d(F.pad(y, (0, 0, pad, pad), mode="reflect"), kernel[:, None, :, None], groups=n * c)
    return y.reshape(n, c, height, width)


def augment(images: torch.Tensor, u: torch.Tensor, spec: AugmentSpec) -> torch.Tensor:
    """Augment a batch of 0-255 images; the result is on the 0-1 scale (before mean/std).

    Runs in float32 even under autocast: the resampling and colour maths are cheap and bf16
    would quantize pixel values to ~3 significant digits.

    Args:
        images: [N, C, S, S] pixel values on the 0-255 scale (any float dtype, any device).
        u: [N, N_PARAMS] uniforms from :func:`draw` (moved to the images' device).
        spec: strengths and probabilities.

    Returns:
        float32 [N, C, S, S] in [0, 1].
    """
    with torch.autocast(images.device.type, enabled=False):
        x = images.float() / 255.0
        u = u.to(device=x.device, dtype=torch.float32)
        x = crop_and_flip(x, u, spec)
        if spec.jitter_p > 0:
            x = colour_jitter(x, u, spec)
        x = random_grey(x, u, spec)
        return gaussian_blur(x, u, spec)
