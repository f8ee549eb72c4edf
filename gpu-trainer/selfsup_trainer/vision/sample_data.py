"""Real image sets for tests, the fixture and the benchmark, written in the dataset formats of
decision 0005 (a PNG zip with one folder per class, IDX files).

sklearn digits (BSD-3) comes with scikit-learn (a dev dependency: nothing in the training path
imports this module); Fashion-MNIST (MIT) is read from the Debian package's IDX files.
"""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def digits() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's 1,797 handwritten digits as 8-bit pixels.

    Returns:
        uint8 images [1797, 8, 8] (the 0-16 intensities scaled to 0-255) and int64 labels [1797].
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    pixels = np.rint(data.images * (255.0 / 16.0)).astype(np.uint8)
    return pixels, data.target.astype(np.int64)


def fashion_mnist(split: str = "train", limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST from ``/usr/share/datasets/fashion-mnist`` (``apt-get install -y
    dataset-fashion-mnist``).

    Args:
        split: ``train`` (60k) or ``t10k`` (10k).
        limit: keep the first ``limit`` images.

    Returns:
        uint8 images [N, 28, 28] and int64 labels [N].
    """
    prefix = {"train": "train", "t10k": "t10k", "test": "t10k"}[split]
    images_path = FASHION_MNIST / f"{prefix}-images-idx3-ubyte.gz"
    if not images_path.exists():
        raise FileNotFoundError(
            f"{images_path} is missing; install it with apt-get install -y dataset-fashion-mnist"
        )
    with gzip.open(images_path) as f:
        images = _read_idx_array(f.read())
    with gzip.open(FASHION_MNIST / f"{prefix}-labels-idx1-ubyte.gz") as f:
        labels = _read_idx_array(f.read()).astype(np.int64)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def _read_idx_array(data: bytes) -> np.ndarray:
    _, _, kind, dims = struct.unpack(">BBBB", data[:4])
    assert kind == 0x08, "sample IDX files are unsigned bytes"
    shape = struct.unpack(f">{dims}I", data[4 : 4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def png_bytes(image: np.ndarray) -> bytes:
    """Encode uint8 [H, W] (grey) or [H, W, 3] (RGB) as PNG."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def write_png_zip(
    path: Path, images: np.ndarray, labels: np.ndarray | None = None, extra: int = 0
) -> Path:
    """Write ``images`` as PNG members of a zip, in one folder per label when labels are given.

    Args:
        path: the .zip to write.
        images: uint8 [N, H, W] or [N, H, W, 3].
        labels: [N] class ids (folder names) or None for a flat archive.
        extra: also write this many members a reader must skip (a hidden file, ``__MACOSX/``,
            a text file), to exercise the ignore rules.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i, image in enumerate(images):
            folder = f"{labels[i]}/" if labels is not None else ""
            zf.writestr(f"{folder}{i:05d}.png", png_bytes(image))
        skipped = ["README.txt", ".DS_Store", "__MACOSX/._00000.png"]
        for name in skipped[:extra]:
            zf.writestr(name, b"not an image")
    return path


def idx_bytes(array: np.ndarray) -> bytes:
    """Serialize a uint8 array in IDX format (``idx3`` for images, ``idx1`` for labels)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    return header + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
