"""Image preprocessing shared, bit for bit, with the Worker (decision 0005).

The edge (``api/services/image/preprocess.ts``) has no PIL or numpy, so every step here is spelled
out as plain arithmetic that the TypeScript port repeats: decode to 8-bit, pick channels, resize
with the separable antialiased bilinear filter in float64, normalize to float32 NCHW. The parity
gate (``scripts/image_parity_fixture.py`` + ``tests/image_units.test.ts``) holds the two within
1e-5.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour type -> samples per pixel (0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA).
_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7 passes: (x start, y start, x step, y step).
ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)
GREY_WEIGHTS = (0.299, 0.587, 0.114)


def decode_image(data: bytes) -> np.ndarray:
    """Decode a PNG or JPEG file to 8-bit pixels, as decision 0005 step 1 says.

    Palette images are expanded to RGB, alpha is dropped, 16-bit samples become
    ``round(v / 257)``, EXIF orientation is ignored.

    Args:
        data: the encoded file.

    Returns:
        uint8 array [H, W, C] with C = 1 (grey) or 3 (colour).

    Raises:
        ValueError: the bytes are not a decodable PNG or JPEG.
    """
    if data[:8] == PNG_SIGNATURE and len(data) >= 33 and data[24] == 16:
        # Pillow truncates 16-bit colour to the high byte (v >> 8); the contract rounds (v / 257),
        # so 16-bit PNGs take the small decoder below.
        return _decode_png16(data)
    if data[:8] != PNG_SIGNATURE and data[:3] != b"\xff\xd8\xff":
        raise ValueError("not a PNG or JPEG: send the file's bytes (PNG or JPEG)")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return _pil_to_array(im)
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"undecodable image: {exc}") from exc


def _pil_to_array(im: Image.Image) -> np.ndarray:
    """Map a loaded Pillow image (8-bit or less) to uint8 [H, W, 1|3]."""
    mode = im.mode
    if mode in ("1", "L", "LA", "La", "I;16", "I;16B", "I"):
        # "1", 2- and 4-bit grey arrive scaled to 0-255 by bit replication (PNG spec sBIT-free
        # scaling: v * 255 / (2^d - 1)), the same as png.ts.
        grey = np.asarray(im.convert("L") if mode in ("1", "LA", "La") else im)
        if grey.dtype != np.uint8:  # 16-bit grey only reaches here from non-PNG sources
            grey = np.rint(grey.astype(np.float64) / 257.0).astype(np.uint8)
        return grey[:, :, None].copy()
    return np.asarray(im.convert("RGB")).copy()


def _decode_png16(data: bytes) -> np.ndarray:
    """Decode a 16-bit PNG (colour types 0, 2, 4, 6; Adam7 allowed) to uint8 with round(v/257)."""
    pos, idat, header = 8, bytearray(), None
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise ValueError("truncated PNG")
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise ValueError(f"CRC mismatch in {kind.decode('latin-1')}")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise ValueError("truncated PNG: no IHDR chunk")
    width, height, _depth, colour, _comp, _filter, interlace = header
    if colour not in _PNG_SAMPLES or colour == 3:
        raise ValueError(f"invalid PNG: colour type {colour} at bit depth 16")
    samples = _PNG_SAMPLES[colour]
    try:
        raw = zlib.decompress(bytes(idat))
    except zlib.error as exc:
        raise ValueError(f"corrupt PNG image data: {exc}") from exc
    out = np.zeros((height, width, samples), dtype=np.uint16)
    passes = ADAM7 if interlace == 1 else ((0, 0, 1, 1),)
    offset = 0
    for x0, y0, dx, dy in passes:
        pw, ph = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if pw <= 0 or ph <= 0:
            continue
        rows, offset = _unfilter(raw, offset, pw, ph, samples * 2)
        out[y0::dy, x0::dx] = rows.view(">u2").reshape(ph, pw, samples)
    v8 = np.floor(out.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)  # round half up
    return v8[:, :, :1].copy() if samples <= 2 else v8[:, :, :3].copy()


def _unfilter(raw: bytes, offset: int, width: int, height: int, bpp: int) -> tuple[np.ndarray, int]:
    """Undo PNG row filters of one (sub-)image: (uint8 [height, width * bpp], next offset)."""
    stride = width * bpp
    if offset + height * (stride + 1) > len(raw):
        raise ValueError("truncated PNG: image data shorter than the header says")
    out = np.zeros((height, stride), dtype=np.uint8)
    prior = [0] * stride
    for y in range(height):
        kind = raw[offset]
        line = list(raw[offset + 1 : offset + 1 + stride])
        offset += stride + 1
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:
            line = [(a + b) & 255 for a, b in zip(line, prior, strict=True)]
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prior[i]) >> 1)) & 255
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                c = prior[i - bpp] if i >= bpp else 0
                b = prior[i]
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        elif kind != 0:
            raise ValueError(f"invalid PNG: row filter {kind}")
        out[y] = line
        prior = line
    return out, offset


def to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """Convert decoded pixels to the model's channel count (decision 0005 step 2).

    Args:
        img: uint8 or float [H, W, C], C in {1, 3}.
        channels: the model's channels, 1 or 3.

    Returns:
        float64 [H, W, channels] on the 0-255 scale; colour -> grey is
        ``0.299 R + 0.587 G + 0.114 B`` (not rounded), grey -> colour replicates.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if img.ndim != 3 or img.shape[2] not in (1, 3):
        raise ValueError(f"image must be [H, W, 1|3], got shape {tuple(img.shape)}")
    x = img.astype(np.float64)
    if x.shape[2] == channels:
        return x
    if channels == 3:
        return np.repeat(x, 3, axis=2)
    # Summed in this order in both implementations so float64 rounding is identical.
    grey = (
        GREY_WEIGHTS[0] * x[:, :, 0] + GREY_WEIGHTS[1] * x[:, :, 1] + GREY_WEIGHTS[2] * x[:, :, 2]
    )
    return grey[:, :, None]


def aa_weights(n: int, m: int) -> np.ndarray:
    """Antialiased bilinear resampling matrix from ``n`` to ``m`` samples (decision 0005 step 3).

    Args:
        n: input length.
        m: output length.

    Returns:
        float64 [m, n]; row ``i`` holds output ``i``'s normalized triangle-filter weights.
    """
    if n < 1 or m < 1:
        raise ValueError(f"resize lengths must be >= 1, got {n} -> {m}")
    scale = n / m
    support = max(scale, 1.0)
    w = np.zeros((m, n), dtype=np.float64)
    for i in range(m):
        center = (i + 0.5) * scale
        lo = max(math.floor(center - support + 0.5), 0)
        hi = min(math.floor(center + support + 0.5), n)
        row = [max(0.0, 1.0 - abs((j - center + 0.5) / support)) for j in range(lo, hi)]
        total = sum(row)  # left-to-right sum, as the TS port does
        for k, value in enumerate(row):
            w[i, lo + k] = value / total if total != 0.0 else 0.0
    return w


def resize_aa(img: np.ndarray, size: int) -> np.ndarray:
    """Stretch-resize to ``size × size`` with the separable antialiased bilinear filter.

    Rows (width) first, then columns, in float64 on 0-255 values; identity when the size matches.

    Args:
        img: float64 [H, W, C].
        size: output side length.

    Returns:
        float64 [size, size, C].
    """
    if img.ndim != 3:
        raise ValueError(f"image must be [H, W, C], got shape {tuple(img.shape)}")
    height, width, _ = img.shape
    x = np.asarray(img, dtype=np.float64)
    if width != size:
        x = np.einsum("mw,hwc->hmc", aa_weights(width, size), x)
    if height != size:
        x = np.einsum("kh,hmc->kmc", aa_weights(height, size), x)
    return x


def check_image_spec(spec: Mapping[str, Any]) -> None:
    """Raise ValueError unless ``spec`` is a preprocessing dict this module implements."""
    for key, want in (("resize", "bilinear-aa"), ("fit", "stretch"), ("layout", "NCHW")):
        if spec.get(key, want) != want:
            raise ValueError(f"preprocessing.{key} must be {want!r}, got {spec.get(key)!r}")
    channels = spec.get("channels")
    if channels not in (1, 3):
        raise ValueError(f"preprocessing.channels must be 1 or 3, got {channels!r}")
    size = spec.get("image_size")
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"preprocessing.image_size must be a positive integer, got {size!r}")
    for key in ("mean", "std"):
        values = spec.get(key)
        if not isinstance(values, (list, tuple)) or len(values) != channels:
            raise ValueError(f"preprocessing.{key} must list {channels} numbers, got {values!r}")
    if any(float(s) <= 0 for s in spec["std"]):
        raise ValueError(f"preprocessing.std must be positive, got {spec['std']!r}")
    if float(spec.get("scale", 255)) <= 0:
        raise ValueError(f"preprocessing.scale must be positive, got {spec.get('scale')!r}")


def preprocess_pixels(img: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """Channels, resize and normalize already-decoded pixels (e.g. IDX digits).

    Args:
        img: uint8 [H, W, C] (C in {1, 3}) or [H, W] grey.
        spec: the manifest's ``preprocessing`` dict (image_size, channels, scale, mean, std).

    Returns:
        float32 [channels, image_size, image_size].
    """
    check_image_spec(spec)
    if img.ndim == 2:
        img = img[:, :, None]
    channels, size = int(spec["channels"]), int(spec["image_size"])
    x = resize_aa(to_channels(img, channels), size)
    scale = float(spec.get("scale", 255))
    mean = np.asarray(spec["mean"], dtype=np.float64)
    std = np.asarray(spec["std"], dtype=np.float64)
    x = (x / scale - mean) / std  # [S, S, C]; float64 until the final cast, as in the Worker
    return np.ascontiguousarray(x.transpose(2, 0, 1)).astype(np.float32)


def preprocess_image(data: bytes, spec: Mapping[str, Any]) -> np.ndarray:
    """Decode and preprocess one encoded image exactly as the Worker does.

    Args:
        data: PNG or JPEG bytes.
        spec: the manifest's ``preprocessing`` dict.

    Returns:
        float32 [channels, image_size, image_size].
    """
    return preprocess_pixels(decode_image(data), spec)
