"""A small PNG writer for decoder tests and the parity fixtures: every colour type and bit depth,
Adam7 interlacing, and rows cycling through all five filter types so decoders meet each one.
Deliberately independent of Pillow, whose encoder uses only some filters and no 16-bit colour.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from selfsup_trainer.vision.preprocess import ADAM7


def png_bytes(values: np.ndarray, colour: int, depth: int, interlace: bool = False) -> bytes:
    """Encode [H, W, samples] integer samples as a PNG of the given colour type and bit depth."""
    height, width, samples = values.shape

    def pack(sub: np.ndarray) -> np.ndarray:
        """Rows of packed big-endian samples, [h, stride] uint8."""
        if depth == 16:
            return sub.astype(">u2").reshape(sub.shape[0], -1).view(np.uint8)
        if depth == 8:
            return sub.astype(np.uint8).reshape(sub.shape[0], -1)
        flat = sub.reshape(sub.shape[0], -1).astype(np.uint8)
        per = 8 // depth
        pad = (-flat.shape[1]) % per
        flat = np.pad(flat, ((0, 0), (0, pad)))
        groups = flat.reshape(flat.shape[0], -1, per)
        shifts = np.array([8 - depth * (k + 1) for k in range(per)], dtype=np.uint8)
        return (groups << shifts).sum(axis=2).astype(np.uint8)

    bpp = max(1, samples * depth // 8)
    passes = ADAM7 if interlace else ((0, 0, 1, 1),)
    data = bytearray()
    for x0, y0, dx, dy in passes:
        sub = values[y0::dy, x0::dx]
        if sub.size:
            data += filter_rows(pack(sub), bpp)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, int(interlace))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(bytes(data), 9))
        + chunk(b"IEND", b"")
    )


def filter_rows(raw: np.ndarray, bpp: int) -> bytes:
    """PNG-filter uint8 rows [H, stride], row y with filter type y % 5."""
    out = bytearray()
    prior = np.zeros(raw.shape[1], dtype=np.int64)
    for y, row in enumerate(raw.astype(np.int64)):
        kind = y % 5
        left = np.concatenate([np.zeros(bpp, np.int64), row[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int64), prior[:-bpp]])
        if kind == 0:
            pred = np.zeros_like(row)
        elif kind == 1:
            pred = left
        elif kind == 2:
            pred = prior
        elif kind == 3:
            pred = (left + prior) // 2
        else:
            p = left + prior - upleft
            pa, pb, pc = abs(p - left), abs(p - prior), abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prior, upleft))
        out.append(kind)
        out += ((row - pred) & 255).astype(np.uint8).tobytes()
        prior = row
    return bytes(out)
