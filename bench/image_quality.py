"""Image SSL quality: SimCLR (ResNet) and MAE (ViT) on sklearn digits and Fashion-MNIST, probed.

Run with the trainer venv:

    gpu-trainer/.venv/bin/python bench/image_quality.py [--full] [--threads 2]
        [--datasets digits,fashion] [--objectives simclr,mae] [--steps N] [--json out.json]

Each objective pretrains through the real pipeline (``vision.pipeline.pretrain``: IDX reading
with the edge's resize, training, ONNX export, parity gates) on unlabeled train images. The
trained encoder (rebuilt from the run's last checkpoint) then embeds a labeled probe-train split
and a disjoint test split; linear (standardized logistic regression, L-BFGS) and cosine kNN
probes fit on probe-train and score on test. Baselines: the raw-pixel floor (decision 0005's raw
baseline: the preprocessed pixels, average-pooled to at most 1024 values, same probes) and a
random-init encoder of the same architecture and normalization.

Default: CPU-sized (tiny presets, digits at their native 8 px, 5k Fashion-MNIST images at 16
px; a few minutes on 2 idle cores). ``--full``: the GPU run (small presets, 32 px, all of
Fashion-MNIST for 30 epochs).
Fashion-MNIST needs ``apt-get install -y dataset-fashion-mnist``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "gpu-trainer"))

from selfsup_trainer.checkpoint import find_checkpoint  # noqa: E402
from selfsup_trainer.config import TrainConfig  # noqa: E402
from selfsup_trainer.probe import knn_accuracy, linear_accuracy  # noqa: E402
from selfsup_trainer.vision import sample_data  # noqa: E402
from selfsup_trainer.vision.data import read_images  # noqa: E402
from selfsup_trainer.vision.models import BasicBlock  # noqa: E402
from selfsup_trainer.vision.pipeline import embed_images, pretext_from_checkpoint, pretrain  # noqa: E402
from selfsup_trainer.vision.pretext import ImagePretext  # noqa: E402

# Per profile: per dataset the image size, split sizes and overrides of the objectives' configs
# (full profile: the run length in epochs, aiming at ~10 minutes of one H100 for all four runs,
# unmeasured); per objective the config. The CPU settings were picked by short sweeps on digits
# and Fashion-MNIST (temperature 0.1 over 0.2/0.5, crop scale >= 0.6 for 8-16 px images).
DIGITS = {"pretrain": None, "probe_train": None, "test": None}
PROFILES: dict[str, dict] = {
    "cpu": {
        "digits": {**DIGITS, "image_size": 8, "patch_size": 2, "simclr": {"crop_min_scale": 0.6}},
        "fashion": {
            "image_size": 16,
            "patch_size": 4,
            "pretrain": 5000,
            "probe_train": 5000,
            "test": 2000,
            "simclr": {"crop_min_scale": 0.6},
        },
        "simclr": {"preset": "tiny", "batch_size": 128, "steps": 1000, "simclr_temperature": 0.1},
        "mae": {"preset": "tiny", "batch_size": 128, "steps": 1000},
    },
    "full": {
        "digits": {
            **DIGITS,
            "image_size": 32,
            "patch_size": 4,
            "simclr": {"crop_min_scale": 0.6, "epochs": 150},
            "mae": {"epochs": 150},
        },
        "fashion": {
            "image_size": 32,
            "patch_size": 4,
            "pretrain": 60000,
            "probe_train": 60000,
            "test": 10000,
            "simclr": {"epochs": 30},
            "mae": {"epochs": 30},
        },
        "simclr": {"preset": "small", "batch_size": 512, "simclr_temperature": 0.1},
        "mae": {"preset": "small", "batch_size": 512, "lr": 1.5e-3},
    },
}
ARCHITECTURE = {"simclr": "resnet", "mae": "vit"}


def load(name: str, sizes: dict) -> dict[str, np.ndarray]:
    """uint8 images [N, H, W] and labels: pretrain (unlabeled), probe_train and test splits.

    digits: a seeded 80/20 split; pretraining and probe-train share the 80%. Fashion-MNIST:
    pretrain and probe-train are prefixes of the official train split, test is t10k.
    """
    if name == "digits":
        x, y = sample_data.digits()
        order = np.random.default_rng(0).permutation(len(x))
        cut = round(0.8 * len(x))
        tr, te = order[:cut], order[cut:]
        return {
            "pretrain": x[tr],
            "train_x": x[tr],
            "train_y": y[tr],
            "test_x": x[te],
            "test_y": y[te],
        }
    x, y = sample_data.fashion_mnist("train", limit=max(sizes["pretrain"], sizes["probe_train"]))
    tx, ty = sample_data.fashion_mnist("t10k", limit=sizes["test"])
    n = sizes["probe_train"]
    return {
        "pretrain": x[: sizes["pretrain"]],
        "train_x": x[:n],
        "train_y": y[:n],
        "test_x": tx,
        "test_y": ty,
    }


def labeled_zip(path: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """An archive with one idx3 images file and one idx1 labels file (decision 0005)."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("images-idx3-ubyte", sample_data.idx_bytes(images))
        zf.writestr("labels-idx1-ubyte", sample_data.idx_bytes(labels))
    return path


def raw_features(pixels: torch.Tensor) -> torch.Tensor:
    """Normalized pixels [N, C, S, S] average-pooled until at most 1024 values, flattened."""
    side = pixels.shape[-1]
    factor = 1
    while pixels.shape[1] * math.ceil(side / factor) ** 2 > 1024:
        factor += 1
    if factor > 1:
        pixels = F.avg_pool2d(pixels, factor, ceil_mode=True)
    return pixels.flatten(1)


def random_init(config: TrainConfig, channels: int, mean: list, std: list) -> torch.nn.Module:
    """A freshly initialised encoder of the same architecture.

    The ResNet's zero-initialised last BN gain (a training trick: each block starts as the
    identity) would leave a random net whose strided 1x1 shortcuts just subsample pixels down
    to one; the gains are reset to 1 so the baseline is a real random convolutional net.
    """
    torch.manual_seed(config.seed)
    encoder = ImagePretext(config, channels, mean, std).encoder
    for module in encoder.modules():
        if isinstance(module, BasicBlock):
            torch.nn.init.ones_(module.bn2.weight)
    return encoder


def probes(train_x, train_y, test_x, test_y) -> tuple[float, float]:
    classes = int(max(train_y.max(), test_y.max())) + 1
    args = (train_x, train_y, test_x, test_y, classes)
    return knn_accuracy(*args), linear_accuracy(*args)


def run_one(name: str, objective: str, profile: dict, args, tmp: Path, device: str) -> dict:
    sizes = profile[name]
    split = load(name, sizes)
    data = tmp / f"{name}-pretrain.idx"
    data.write_bytes(sample_data.idx_bytes(split["pretrain"]))
    overrides = {"lr": 2e-3, **profile[objective], **sizes.get(objective, {})}
    if args.steps:
        overrides.pop("epochs", None)
        overrides["steps"] = args.steps
    config = TrainConfig(
        modality="image",
        objective=objective,
        architecture=ARCHITECTURE[objective],
        image_size=sizes["image_size"],
        patch_size=sizes["patch_size"],
        dropout=0.0,
        log_every=50,
        eval_every=0,
        device=device,
        **overrides,
    )
    run = tmp / f"{name}-{objective}"
    started = time.perf_counter()
    manifest = pretrain(config, data, run, default_checkpoints=1, log=lambda m: print("   ", m))
    seconds = time.perf_counter() - started
    assert manifest is not None
    pretext = pretext_from_checkpoint(find_checkpoint(run)).to(device)
    spec = manifest["preprocessing"]
    mean, std = spec["mean"], spec["std"]
    train = read_images(
        labeled_zip(tmp / "train.zip", split["train_x"], split["train_y"]),
        spec["image_size"],
        spec["channels"],
    )
    test = read_images(
        labeled_zip(tmp / "test.zip", split["test_x"], split["test_y"]),
        spec["image_size"],
        spec["channels"],
    )
    ytr = torch.tensor([int(v) for v in train.labels or []])
    yte = torch.tensor([int(v) for v in test.labels or []])
    xtr, xte = train.normalized(mean, std), test.normalized(mean, std)
    ssl = probes(embed_images(pretext.encoder, xtr), ytr, embed_images(pretext.encoder, xte), yte)
    random_encoder = random_init(pretext.config, spec["channels"], mean, std).to(device)
    rand = probes(embed_images(random_encoder, xtr), ytr, embed_images(random_encoder, xte), yte)
    raw = probes(raw_features(xtr), ytr, raw_features(xte), yte)
    metrics = manifest["metrics"]
    return {
        "dataset": name,
        "objective": f"{objective} ({ARCHITECTURE[objective]} {config.preset})",
        "size": f"{spec['image_size']}px",
        "pretrain": len(split["pretrain"]),
        "probe": f"{len(ytr)}/{len(yte)}",
        "steps": metrics["steps"],
        "seconds": round(seconds),
        "img_per_s": round(metrics["images_per_second"]),
        "ssl_knn": ssl[0],
        "ssl_linear": ssl[1],
        "random_knn": rand[0],
        "random_linear": rand[1],
        "raw_knn": raw[0],
        "raw_linear": raw[1],
        "int8_mean_cosine": manifest["parity"]["int8"]["mean_cosine"],
    }


def table(rows: list[dict]) -> str:
    head = (
        "| dataset | objective | size | pretrain | probe tr/te | steps | s | img/s | kNN | linear "
        "| random kNN/lin | raw kNN/LR | lin/raw | lin/random |"
    )
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['objective']} | {r['size']} | {r['pretrain']} | {r['probe']} "
            f"| {r['steps']} | {r['seconds']} | {r['img_per_s']:,} | {r['ssl_knn']:.3f} "
            f"| {r['ssl_linear']:.3f} | {r['random_knn']:.3f}/{r['random_linear']:.3f} "
            f"| {r['raw_knn']:.3f}/{r['raw_linear']:.3f} | {r['ssl_linear'] / r['raw_linear']:.3f} "
            f"| {r['ssl_linear'] / r['random_linear']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="GPU-sized run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--datasets", default="digits,fashion")
    parser.add_argument("--objectives", default="simclr,mae")
    parser.add_argument("--steps", type=int, default=0, help="override every run's length")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    profile = PROFILES["full" if args.full else "cpu"]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            for objective in args.objectives.split(","):
                print(f"== {name} / {objective}", flush=True)
                rows.append(run_one(name, objective, profile, args, Path(tmp), device))
                print(table(rows[-1:]), flush=True)
    device_name = torch.cuda.get_device_name() if device == "cuda" else f"CPU x{args.threads}"
    print(f"\n{'full' if args.full else 'cpu'} profile on {device_name}\n{table(rows)}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
