"""Build the committed tiny image encoder and the digits probe set the edge tests use.

Usage: ``python -m selfsup_trainer.vision.fixture ENCODER_DIR PROBE_ZIP [--steps N]``
(``gpu-trainer/scripts/make_image_fixture.sh`` runs it with the repository's paths).

- ``PROBE_ZIP``: 300 sklearn digits (30 per class), 8x8 grey PNGs in class folders.
- ``ENCODER_DIR``: a tiny ViT (16 px, 4 px patches, hidden 64, 2 layers) trained with MAE on the
  other 1,497 digits as 8x8 PNGs (the pipeline upsamples them to 16 px with the edge's filter),
  plus ``reference_embeddings.json``: Python onnxruntime outputs for a few probe images pushed
  through :func:`preprocess.preprocess_image`, batch of one, for the Worker to match.
"""

from __future__ import annotations

import argparse
import base64
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..config import TrainConfig
from . import sample_data
from .pipeline import pretrain
from .preprocess import preprocess_image

PER_CLASS = 30
REFERENCE_MEMBERS = 8
ARTIFACT_FILES = ("manifest.json", "model.onnx", "model.onnx.data", "model.int8.onnx")


def split_digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, probe images, probe labels): the last 30 of each class probe."""
    images, labels = sample_data.digits()
    probe = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        probe[np.flatnonzero(labels == digit)[-PER_CLASS:]] = True
    return images[~probe], labels[~probe], images[probe], labels[probe]


def fixture_config(steps: int) -> TrainConfig:
    return TrainConfig(
        modality="image",
        objective="mae",
        architecture="vit",
        preset="tiny",
        layers=2,
        hidden=64,
        heads=2,
        intermediate=128,
        dropout=0.0,
        image_size=16,
        patch_size=4,
        crop_min_scale=0.5,
        steps=steps,
        batch_size=64,
        lr=2e-3,
        log_every=50,
        eval_every=0,
        seed=0,
    )


def reference_embeddings(encoder_dir: Path, probe_zip: Path) -> dict:
    """Python onnxruntime embeddings (fp32 and int8) of the first probe member of some classes."""
    manifest = json.loads((encoder_dir / "manifest.json").read_text())
    spec = manifest["preprocessing"]
    sessions = {
        variant: ort.InferenceSession(
            str(encoder_dir / files["model"]), providers=["CPUExecutionProvider"]
        )
        for variant, files in manifest["variants"].items()
    }
    cases = []
    with zipfile.ZipFile(probe_zip) as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".png"))
        firsts = [next(n for n in names if n.startswith(f"{d}/")) for d in range(10)]
        for name in firsts[:REFERENCE_MEMBERS]:
            data = zf.read(name)
            pixels = preprocess_image(data, spec)[None]  # [1, C, S, S]
            case = {
                "member": name,
                "png_base64": base64.b64encode(data).decode("ascii"),
                "pixel_values_sum": float(pixels.astype(np.float64).sum()),
            }
            for variant, session in sessions.items():
                out = session.run(["embeddings"], {"pixel_values": pixels})[0][0]
                case[variant] = [round(float(v), 7) for v in out]
            cases.append(case)
    return {
        "note": "onnxruntime (Python) outputs of preprocess.preprocess_image(png, manifest "
        "preprocessing), batch of 1",
        "cases": cases,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("encoder_dir", type=Path)
    parser.add_argument("probe_zip", type=Path)
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args(argv)
    train_x, train_y, probe_x, probe_y = split_digits()
    args.probe_zip.parent.mkdir(parents=True, exist_ok=True)
    sample_data.write_png_zip(args.probe_zip, probe_x, probe_y)
    with tempfile.TemporaryDirectory() as tmp:
        data = sample_data.write_png_zip(Path(tmp) / "digits-train.zip", train_x, train_y)
        run = Path(tmp) / "run"
        manifest = pretrain(fixture_config(args.steps), data, run, eval_path=args.probe_zip)
        assert manifest is not None
        args.encoder_dir.mkdir(parents=True, exist_ok=True)
        names = [*ARTIFACT_FILES, "model.onnx.data", "model.int8.onnx.data"]
        for name in dict.fromkeys(names):
            (args.encoder_dir / name).write_bytes((run / name).read_bytes())
    reference = reference_embeddings(args.encoder_dir, args.probe_zip)
    (args.encoder_dir / "reference_embeddings.json").write_text(json.dumps(reference, indent=1))


if __name__ == "__main__":
    main()
