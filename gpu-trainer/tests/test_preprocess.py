"""Decision 0005 image preprocessing: decode, channels, antialiased resize, normalize."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from png_writer import png_bytes
from sklearn.datasets import load_digits

from selfsup_trainer.vision.preprocess import (
    aa_weights,
    decode_image,
    preprocess_image,
    preprocess_pixels,
    resize_aa,
    to_channels,
)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """sklearn's 8x8 digits scaled to uint8 0-255: [N, 8, 8]."""
    images = load_digits().images
    return np.rint(images * (255 / 16)).astype(np.uint8)


def _photo(digits: np.ndarray, height: int, width: int) -> np.ndarray:
    """A real-data colour image [H, W, 3]: three digits tiled and resized with Pillow."""
    tiles = [Image.fromarray(d).resize((width, height), Image.NEAREST) for d in digits[:3]]
    return np.stack([np.asarray(t) for t in tiles], axis=2)


def _encode(array: np.ndarray, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("height", "width", "size"),
    [(28, 28, 16), (8, 8, 32), (20, 13, 16), (13, 40, 7), (5, 64, 64), (32, 32, 5)],
)
@pytest.mark.parametrize("channels", [1, 3])
def test_resize_matches_torch_antialiased_bilinear(digits, height, width, size, channels):
    img = _photo(digits, height, width)[:, :, :channels].astype(np.float64)
    ours = resize_aa(img, size)
    x = torch.from_numpy(img.transpose(2, 0, 1)[None].copy())
    ref = torch.nn.functional.interpolate(
        x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )[0].numpy()
    assert ours.shape == (size, size, channels)
    assert np.abs(ours.transpose(2, 0, 1) - ref).max() < 1e-4


def test_resize_is_identity_at_same_size(digits):
    img = _photo(digits, 12, 12).astype(np.float64)
    assert np.array_equal(resize_aa(img, 12), img)
    assert np.allclose(aa_weights(9, 9), np.eye(9))


def test_weights_follow_the_spec_formula():
    # 4 -> 2: scale 2, support 2; output 0 has centre 1, taps j in [0, 3) with raw weights
    # 0.75, 0.75, 0.25 (sum 1.75); output 1 mirrors it.
    w = aa_weights(4, 2)
    assert np.allclose(w.sum(axis=1), 1.0)
    assert np.allclose(w[0], np.array([3, 3, 1, 0]) / 7)
    assert np.allclose(w[1], np.array([0, 1, 3, 3]) / 7)


def test_to_channels_grey_and_colour(digits):
    rgb = _photo(digits, 6, 5)
    grey = to_channels(rgb, 1)
    want = 0.299 * rgb[:, :, 0] + 0.587 * rgb[:, :, 1] + 0.114 * rgb[:, :, 2]
    assert grey.dtype == np.float64 and grey.shape == (6, 5, 1)
    assert np.array_equal(grey[:, :, 0], want)  # float, not rounded
    rep = to_channels(digits[0][:, :, None], 3)
    assert rep.shape == (8, 8, 3) and np.array_equal(rep[:, :, 0], rep[:, :, 2])
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        to_channels(rgb, 2)


@pytest.mark.parametrize("interlace", [False, True])
@pytest.mark.parametrize(
    ("colour", "samples", "out_channels"), [(0, 1, 1), (2, 3, 3), (4, 2, 1), (6, 4, 3)]
)
def test_16bit_png_rounds_by_257(digits, colour, samples, out_channels, interlace):
    rng = np.random.default_rng(colour)
    values = (digits[:samples].transpose(1, 2, 0).astype(np.uint16) * 257) + rng.integers(
        0, 257, size=(8, 8, samples), dtype=np.uint16
    )
    values = np.tile(values, (2, 2, 1))[:13, :11]  # odd sizes exercise the short Adam7 passes
    got = decode_image(png_bytes(values, colour, 16, interlace))
    want = np.rint(values[:, :, :out_channels].astype(np.float64) / 257).astype(np.uint8)
    assert got.dtype == np.uint8 and got.shape == (13, 11, out_channels)
    assert np.array_equal(got, want)


def test_16bit_grey_from_pillow(digits):
    values = digits[0].astype(np.uint16) * 250 + 17
    data = _encode(values.astype(np.uint16))  # Pillow writes I;16 as a 16-bit grey PNG
    assert data[24] == 16
    assert np.array_equal(decode_image(data)[:, :, 0], np.rint(values / 257).astype(np.uint8))


def test_16bit_png_corruption_is_reported(digits):
    data = bytearray(png_bytes(digits[0][:, :, None].astype(np.uint16) * 257, 0, 16))
    data[45] ^= 0xFF  # inside the IDAT body (signature 8 + IHDR 25 + IDAT header 8)
    with pytest.raises(ValueError, match="CRC mismatch in IDAT"):
        decode_image(bytes(data))
    with pytest.raises(ValueError, match="truncated PNG"):
        decode_image(bytes(data[:44]))


def test_palette_rgba_grey_alpha_and_bilevel(digits):
    rgb = _photo(digits, 8, 8)
    pal = Image.fromarray(rgb).quantize(colors=16)
    buf = io.BytesIO()
    pal.save(buf, format="PNG")
    want = np.asarray(pal.convert("RGB"))
    assert np.array_equal(decode_image(buf.getvalue()), want)

    rgba = np.concatenate([rgb, digits[3][:, :, None]], axis=2)
    assert np.array_equal(decode_image(_encode(rgba)), rgb)  # alpha ignored, not composited
    la = np.stack([digits[0], digits[1]], axis=2)
    assert np.array_equal(decode_image(_encode_la(la)), la[:, :, :1])

    bits = digits[0] > 100
    bilevel = io.BytesIO()
    Image.fromarray(bits).save(bilevel, format="PNG")
    assert np.array_equal(decode_image(bilevel.getvalue())[:, :, 0], bits.astype(np.uint8) * 255)


def _encode_la(la: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(la, mode="LA").save(buf, format="PNG")
    return buf.getvalue()


def test_jpeg_grey_stays_one_channel(digits):
    grey = np.asarray(Image.fromarray(digits[5]).resize((32, 32)))
    assert decode_image(_encode(grey, "JPEG", quality=95)).shape == (32, 32, 1)
    colour = decode_image(_encode(_photo(digits, 16, 24), "JPEG", quality=95))
    assert colour.shape == (16, 24, 3) and colour.dtype == np.uint8


def test_preprocess_image_normalizes_to_nchw(digits):
    rgb = _photo(digits, 20, 12)
    spec = {
        "image_size": 8,
        "channels": 3,
        "resize": "bilinear-aa",
        "fit": "stretch",
        "scale": 255,
        "mean": [0.5, 0.4, 0.3],
        "std": [0.2, 0.25, 0.3],
        "layout": "NCHW",
    }
    x = preprocess_image(_encode(rgb), spec)
    assert x.dtype == np.float32 and x.shape == (3, 8, 8)
    resized = resize_aa(rgb.astype(np.float64), 8)
    want = (resized / 255 - np.array(spec["mean"])) / np.array(spec["std"])
    assert np.abs(x - want.transpose(2, 0, 1).astype(np.float32)).max() == 0.0
    grey = preprocess_pixels(digits[7], {**spec, "channels": 1, "mean": [0.3], "std": [0.3]})
    assert grey.shape == (1, 8, 8)
    assert np.allclose(grey[0], (digits[7] / 255 - 0.3) / 0.3, atol=1e-6)


def test_bad_inputs_raise_value_errors(digits):
    with pytest.raises(ValueError, match="not a PNG or JPEG"):
        decode_image(b"GIF89a....")
    with pytest.raises(ValueError, match="undecodable image"):
        decode_image(_encode(digits[0])[:30])
    spec = {"image_size": 8, "channels": 1, "mean": [0.5], "std": [0.5], "resize": "nearest"}
    with pytest.raises(ValueError, match=r"preprocessing\.resize must be 'bilinear-aa'"):
        preprocess_pixels(digits[0], spec)
    with pytest.raises(ValueError, match=r"preprocessing\.mean must list 3 numbers"):
        preprocess_pixels(digits[0], {**spec, "resize": "bilinear-aa", "channels": 3})


def test_committed_parity_fixture_is_current():
    """parity.json (the Worker's 1e-5 gate) must be what this module computes today."""
    folder = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "images"
    doc = json.loads((folder / "parity.json").read_text())
    assert len(doc["images"]) >= 15
    for entry in doc["images"]:
        data = (folder / entry["file"]).read_bytes()
        pixels = decode_image(data)
        assert hashlib.sha256(pixels.tobytes()).hexdigest() == entry["pixels_sha256"], entry["file"]
        for t in entry["tensors"]:
            spec = {
                "image_size": t["image_size"],
                "channels": t["channels"],
                "scale": 255,
                **doc["specs"][str(t["channels"])],
            }
            want = np.frombuffer(base64.b64decode(t["float32_le"]), dtype="<f4")
            assert np.array_equal(preprocess_image(data, spec).ravel(), want), entry["file"]
