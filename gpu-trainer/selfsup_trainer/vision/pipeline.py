"""Image ``pretrain`` hooks: dataset file -> SimCLR/MAE training -> exported artifact folder.

The whole dataset is decoded once into memory as resized 0-255 pixels (decision 0005's exact
preprocessing), a seeded slice is held out for evaluation and the export parity gates, and the
manifest records the preprocessing the edge must repeat (size, channels, mean/std).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import runs
from ..checkpoint import load_checkpoint
from ..config import TrainConfig
from ..export import ExportSpec, export_artifact, file_sha256
from ..objective import Pretext
from ..probe import knn_accuracy, linear_accuracy, split
from ..runs import Run
from ..weights import WEIGHTS, staged_weights
from .data import SCALE, ImageSet, read_images, split_heldout
from .models import describe
from .pretext import ImagePretext

PARITY_SIZES = (1, 3, 8)  # held-out batches the export gates run (dynamic batch axis)
PROBE_LIMIT = 2000  # probe-set images used by the trainer-side kNN/linear probes


class Images(runs.Modality):
    """Image hooks: decode once into memory, SimCLR/MAE pretext, preprocessing in the manifest."""

    throughput_key = "images_per_second"

    def load(self, run: Run) -> tuple[ImageSet, ImageSet]:
        config, data = run.config, run.data
        if config.modality != "image":
            raise ValueError(f"modality={config.modality!r} reached the image pipeline; use image")
        if config.matryoshka_dims:
            raise ValueError(
                f"matryoshka_dims={config.matryoshka_dims} is not trained for images; leave it "
                "empty"
            )
        self.dataset = dataset = read_images(data, config.image_size, config.channels)
        # Recorded in the config (and so in every checkpoint): resume and probes use these.
        config.channels = dataset.channels
        train_idx, held_idx = split_heldout(
            len(dataset), config.heldout_fraction, config.heldout_max, config.seed
        )
        train_set, self.heldout = dataset.subset(train_idx), dataset.subset(held_idx)
        stats = dataset.stats
        run.log(
            f"images {data}: {stats['images']} ({stats['ignored']} members ignored, "
            f"{stats['classes']} classes), {len(train_set)} train / {len(self.heldout)} held "
            f"out, {config.channels}x{config.image_size}x{config.image_size}, "
            f"mean {dataset.mean} std {dataset.std}"
        )
        return train_set, self.heldout

    def build(self, run: Run) -> Pretext:
        return ImagePretext(run.config, self.dataset.channels, self.dataset.mean, self.dataset.std)

    def describe(self, run: Run, pretext: Pretext) -> dict[str, Any]:
        config = run.config
        # The checkpoint's statistics on resume (its buffers), the data's otherwise.
        self.mean, self.std = statistics(pretext)
        pooling = config.pooling if config.architecture == "vit" else "mean"
        return {
            **runs.encoder_fields(config, pooling, ["pixel_values"]),
            "architecture": describe(pretext.encoder, config),
            "weights": WEIGHTS,  # what a fine-tune job builds on (with architecture)
            "preprocessing": preprocessing(config, self.mean, self.std),
            "matryoshka_dims": [],
            "dataset": {"sha256": file_sha256(run.data), "stats": self.dataset.stats},
        }

    def probe(self, run: Run, pretext: Pretext, eval_path: Path) -> dict[str, float]:
        return probe_images(pretext.encoder, eval_path, run.config, self.mean, self.std)

    def export(self, run: Run, pretext: Pretext, fields: dict[str, Any]) -> dict[str, Any]:
        spec = image_spec(self.heldout, self.mean, self.std)
        with staged_weights(pretext.encoder) as weights:
            return export_artifact(pretext.encoder, run.out_dir, spec, fields, log=run.log,
                                   extra_files=weights)  # fmt: skip


def pretrain(
    config: TrainConfig, data: str | Path, out_dir: str | Path, **options: Any
) -> dict[str, Any] | None:
    """Train an image encoder on ``data`` (.zip/.tar/.tar.gz of PNG/JPEG, or IDX) and export
    it to ``out_dir``; ``options`` are :func:`runs.pretrain`'s (``eval_path``: a labeled image
    probe set, class folders or IDX labels).
    """
    return runs.pretrain(Images(), config, data, out_dir, **options)


def statistics(pretext: nn.Module) -> tuple[list[float], list[float]]:
    """The normalization a pretext trained with (its buffers), rounded as the manifest has it."""
    mean = [round(float(v), 6) for v in pretext.pixel_mean]
    std = [round(float(v), 6) for v in pretext.pixel_std]
    return mean, std


def preprocessing(config: TrainConfig, mean: list[float], std: list[float]) -> dict[str, Any]:
    """The manifest's ``preprocessing`` entry (decision 0005)."""
    return {
        "image_size": config.image_size,
        "channels": config.channels,
        "resize": "bilinear-aa",
        "fit": "stretch",
        "scale": int(SCALE),
        "mean": mean,
        "std": std,
        "layout": "NCHW",
    }


def image_spec(
    heldout: ImageSet, mean: list[float], std: list[float], sizes: tuple[int, ...] = PARITY_SIZES
) -> ExportSpec:
    """``pixel_values [batch, C, S, S] -> embeddings`` with a dynamic batch; parity on held-out
    images in batches of ``sizes`` (1, 3 and 8)."""
    pixels = heldout.normalized(mean, std).numpy()
    feeds, start = [], 0
    for size in sizes:
        if start + size > len(pixels):
            break
        feeds.append({"pixel_values": pixels[start : start + size]})
        start += size
    return ExportSpec(
        input_names=["pixel_values"],
        example_inputs=(torch.from_numpy(pixels[:2]).clone(),),
        dynamic_axes={"pixel_values": {0: "batch"}, "embeddings": {0: "batch"}},
        parity_feeds=feeds,
    )


@torch.no_grad()
def embed_images(
    encoder: torch.nn.Module, pixel_values: torch.Tensor, batch_size: int = 256
) -> torch.Tensor:
    """Embeddings [N, hidden] of normalized ``pixel_values`` [N, C, S, S] in eval mode, on CPU."""
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    try:
        out = [
            encoder(pixel_values[i : i + batch_size].to(device)).float().cpu()
            for i in range(0, len(pixel_values), batch_size)
        ]
    finally:
        encoder.train(was_training)
    return torch.cat(out)


def probe_images(
    encoder: torch.nn.Module,
    eval_path: Path,
    config: TrainConfig,
    mean: list[float],
    std: list[float],
    seed: int = 0,
) -> dict[str, float]:
    """kNN and linear accuracy of ``encoder`` on a seeded 80/20 split of a labeled image set.

    Raises:
        ValueError: the probe set has no labels (class folders) or fewer than 2 classes.
    """
    probe_set = read_images(eval_path, config.image_size, config.channels)
    if probe_set.labels is None:
        raise ValueError(
            f"{eval_path.name}: {probe_set.stats['unlabeled']} images have no class; a probe "
            "set needs every image in a class folder (cat/001.png) or an idx1 labels file"
        )
    if len(probe_set) > PROBE_LIMIT:
        keep = np.random.default_rng(seed).permutation(len(probe_set))[:PROBE_LIMIT]
        probe_set = probe_set.subset(np.sort(keep))
    assert probe_set.labels is not None
    names = sorted(set(probe_set.labels))
    if len(names) < 2:
        raise ValueError(f"the eval probe set has {len(names)} class(es); it needs at least 2")
    y = torch.tensor([names.index(label) for label in probe_set.labels])
    # Convolutions over 2,000 images take tens of seconds on CPU: use the GPU when there is one.
    home = next(encoder.parameters()).device
    encoder.to("cuda" if torch.cuda.is_available() else home)
    try:
        x = embed_images(encoder, probe_set.normalized(mean, std))
    finally:
        encoder.to(home)
    tr, te = split(len(y), 0.2, seed)
    args = (x[tr], y[tr], x[te], y[te], len(names))
    return {"knn_accuracy": knn_accuracy(*args), "linear_accuracy": linear_accuracy(*args)}


def pretext_from_checkpoint(step_dir: Path) -> ImagePretext:
    """Rebuild a checkpoint's pretext (encoder, heads, normalization buffers) on CPU."""
    state = load_checkpoint(Path(step_dir))
    config = TrainConfig.from_dict(state["config"]).resolve()
    channels = int(state["model"]["pixel_mean"].numel())
    config.channels = channels
    pretext = ImagePretext(config, channels, [0.0] * channels, [1.0] * channels)
    pretext.load_state_dict(state["model"])
    return pretext


def checkpoint_probe(step_dir: Path, eval_path: Path) -> dict[str, float]:
    """kNN/linear probe accuracies of a checkpoint's encoder on a labeled image set."""
    pretext = pretext_from_checkpoint(step_dir)
    mean, std = statistics(pretext)
    return probe_images(pretext.encoder, Path(eval_path), pretext.config, mean, std)
