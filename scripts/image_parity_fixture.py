"""Image preprocessing parity fixture: the trainer's tensors for the committed test images.

Run with the trainer venv from the repo root:

    gpu-trainer/.venv/bin/python scripts/image_parity_fixture.py            # parity.json only
    gpu-trainer/.venv/bin/python scripts/image_parity_fixture.py --images   # also re-cut the images

``--images`` rebuilds ``tests/fixtures/images/*`` from scikit-image's sample photos
(``apt-get install -y python3-skimage``) and Fashion-MNIST (``apt-get install -y
dataset-fashion-mnist``). PNG variants Pillow cannot write (16-bit colour, Adam7, 2-bit grey) come
from the small writer below, which cycles through all five row filters so decoders meet each one.

``parity.json`` holds, per image, the decoded pixels' shape and SHA-256 (``decode_image``) and the
float32 tensors of ``preprocess_image`` for image sizes 16 and 32 at 1 and 3 channels, as
little-endian base64. ``tests/image_units.test.ts`` asserts the Worker reproduces them within 1e-5
(PNG) and reports the JPEG difference.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "gpu-trainer"))
sys.path.insert(0, str(REPO / "gpu-trainer" / "tests"))
from png_writer import png_bytes  # noqa: E402
from selfsup_trainer.vision.preprocess import decode_image, preprocess_image  # noqa: E402

OUT = REPO / "tests" / "fixtures" / "images"
SKIMAGE = Path("/usr/lib/python3/dist-packages/skimage/data")
FASHION = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
SPECS = {
    1: {"mean": [0.45], "std": [0.25]},
    3: {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
}
# Every image at 16 px; three (covering upscaling on one or both axes) also at 32 px, which keeps
# parity.json near 150 KB.
SIZES = (16, 32)
AT_32 = {"grey.png", "wide_interlaced.png", "grey_alpha_tall.png"}
# The files write_images() cuts; other helpers' files in the folder are not part of the gate.
FILES = (
    "bilevel.png",
    "grey.jpg",
    "grey.png",
    "grey16.png",
    "grey2bit.png",
    "grey_alpha_tall.png",
    "palette.png",
    "palette4.png",
    "photo.jpg",
    "progressive.jpg",
    "rgb.png",
    "rgb16.png",
    "rgba.png",
    "rgba16_interlaced.png",
    "wide_interlaced.png",
)


def pil_bytes(im: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def fashion(index: int) -> np.ndarray:
    """One Fashion-MNIST test image, uint8 [28, 28]."""
    with gzip.open(FASHION, "rb") as f:
        raw = f.read()
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 28, 28)[index]


def sixteen_bit(img8: np.ndarray, factor: int) -> np.ndarray:
    """Average-pool an 8-bit crop by ``factor``: the fractional means × 257 are real 16-bit data."""
    h, w = (img8.shape[0] // factor) * factor, (img8.shape[1] // factor) * factor
    x = img8[:h, :w].astype(np.float64).reshape(h // factor, factor, w // factor, factor, -1)
    return np.rint(x.mean(axis=(1, 3)) * 257).astype(np.uint16)


def write_images() -> None:
    """Cut the committed test images (small crops, < 100 KB together) from real photos."""
    astronaut = np.asarray(Image.open(SKIMAGE / "astronaut.png").convert("RGB"))
    coffee = np.asarray(Image.open(SKIMAGE / "coffee.png").convert("RGB"))
    camera = np.asarray(Image.open(SKIMAGE / "camera.png").convert("L"))
    chelsea = np.asarray(Image.open(SKIMAGE / "chelsea.png").convert("RGB"))
    face = astronaut[60:108, 180:228]  # 48 x 48
    cam = camera[:, :, None]
    files: dict[str, bytes] = {
        "rgb.png": pil_bytes(Image.fromarray(face)),
        "grey.png": pil_bytes(Image.fromarray(fashion(0))),
        "palette.png": pil_bytes(Image.fromarray(coffee[150:190, 250:290]).quantize(colors=64)),
        "palette4.png": pil_bytes(
            Image.fromarray(chelsea[80:116, 150:186]).quantize(colors=16), bits=4
        ),
        "rgb16.png": png_bytes(sixteen_bit(coffee[100:180, 300:380], 2), colour=2, depth=16),
        "grey16.png": png_bytes(sixteen_bit(cam[100:160, 200:260], 2), colour=0, depth=16),
        "rgba.png": pil_bytes(
            Image.fromarray(
                np.concatenate([face[:40, :40], camera[200:240, 200:240, None]], axis=2)
            )
        ),
        "grey_alpha_tall.png": pil_bytes(
            Image.fromarray(
                np.stack([camera[50:87, 300:320], camera[150:187, 100:120]], axis=2), "LA"
            )
        ),
        "wide_interlaced.png": png_bytes(
            chelsea[120:139, 100:145], colour=2, depth=8, interlace=True
        ),
        "rgba16_interlaced.png": png_bytes(
            np.concatenate(
                [
                    sixteen_bit(coffee[200:226, 100:156], 2),
                    sixteen_bit(camera[0:26, 0:56, None], 2),
                ],
                axis=2,
            ),
            colour=6,
            depth=16,
            interlace=True,
        ),
        "grey2bit.png": png_bytes((fashion(1)[:, :, None] >> 6), colour=0, depth=2),
        "bilevel.png": pil_bytes(Image.fromarray(fashion(2) > 96)),
        "photo.jpg": pil_bytes(Image.fromarray(chelsea[60:124, 120:184]), "JPEG", quality=90),
        "grey.jpg": pil_bytes(Image.fromarray(camera[80:128, 200:248]), "JPEG", quality=90),
        "progressive.jpg": pil_bytes(
            Image.fromarray(coffee[40:88, 380:436]), "JPEG", quality=90, progressive=True
        ),
    }
    if sorted(files) != sorted(FILES):
        raise RuntimeError("FILES must list exactly the images write_images() writes")
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (OUT / name).write_bytes(data)
    total = sum(len(d) for d in files.values())
    print(f"wrote {len(files)} images, {total} bytes")


def parity() -> dict:
    """The trainer's decode + preprocess output for every committed PNG/JPEG."""
    images = []
    for path in (OUT / name for name in FILES):
        data = path.read_bytes()
        pixels = decode_image(data)
        tensors = []
        for size in SIZES:
            if size != SIZES[0] and path.name not in AT_32:
                continue
            for channels in (1, 3):
                spec = {
                    "image_size": size,
                    "channels": channels,
                    "resize": "bilinear-aa",
                    "fit": "stretch",
                    "scale": 255,
                    "layout": "NCHW",
                    **SPECS[channels],
                }
                x = preprocess_image(data, spec)
                tensors.append(
                    {
                        "image_size": size,
                        "channels": channels,
                        "float32_le": base64.b64encode(x.astype("<f4").tobytes()).decode(),
                    }
                )
        images.append(
            {
                "file": path.name,
                "format": "jpeg" if path.suffix == ".jpg" else "png",
                "height": int(pixels.shape[0]),
                "width": int(pixels.shape[1]),
                "channels": int(pixels.shape[2]),
                "pixels_sha256": hashlib.sha256(pixels.tobytes()).hexdigest(),
                "tensors": tensors,
            }
        )
    return {
        "generator": "scripts/image_parity_fixture.py (selfsup_trainer.vision.preprocess)",
        "specs": {str(c): s for c, s in SPECS.items()},
        "images": images,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", action="store_true", help="re-cut the test images first")
    args = parser.parse_args()
    if args.images:
        write_images()
    doc = parity()
    (OUT / "parity.json").write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"wrote {OUT / 'parity.json'}: {len(doc['images'])} images")


if __name__ == "__main__":
    main()
