"""Time-series ``pretrain`` hooks: series dataset -> patch Transformer -> exported artifact
folder (decision 0005), through the one skeleton :func:`selfsup_trainer.runs.pretrain`.

The manifest's ``preprocessing`` tells the edge everything it must do itself — pad at the end
to a multiple of ``patch_size``, keep the first ``max_length`` points — since normalization is
inside the graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import runs
from ..checkpoint import encoder_weights, load_checkpoint
from ..config import MAX_SERIES_LENGTH, TrainConfig
from ..export import ExportSpec, Feed, export_artifact, file_sha256
from ..objective import Pretext
from ..probe import knn_accuracy, linear_accuracy, split
from ..runs import Run
from ..weights import WEIGHTS, staged_weights
from .data import SeriesError, SeriesSet, batch_arrays, heldout_split, read_series
from .models import PatchTransformerEncoder, shape_of_state
from .pretext import SeriesPretext

# Parity batches: a single series, then 3 and 8 rows of different lengths so the dynamic batch
# and length axes and the padding are all exercised; each row is cut to a share of its length.
PARITY_BATCHES = (1, 3, 8)
PARITY_SHARES = (1.0, 0.5, 0.85, 0.3, 1.0, 0.65, 0.15, 0.9, 0.4, 0.75, 1.0, 0.55)


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def model_length(config: TrainConfig, longest: int) -> int:
    """The trained ``max_length``: ``series_length`` (0 = the data's longest) rounded up to a
    multiple of ``series_patch``, at most :data:`MAX_SERIES_LENGTH` (rounded down then)."""
    patch = config.series_patch
    length = round_up(config.series_length or longest, patch)
    if length > MAX_SERIES_LENGTH:
        length = MAX_SERIES_LENGTH // patch * patch
    if config.objective == "temporal" and length // patch < 2:
        raise ValueError(
            f"objective=temporal needs at least 2 patches but max_length={length} holds "
            f"{length // patch} of series_patch={patch}; lower series_patch (e.g. "
            f"{max(1, length // 4)}) or raise series_length"
        )
    return length


def parity_feeds(
    heldout: SeriesSet, patch: int, sizes: tuple[int, ...] = PARITY_BATCHES
) -> list[Feed]:
    """Held-out rows padded at the end as the edge pads them (zeros, observed 0)."""
    feeds, row = [], 0
    for size in sizes:
        picks = [(row + j) % len(heldout) for j in range(size)]
        cuts = [
            max(1, round(int(heldout.lengths[i]) * PARITY_SHARES[(row + j) % 12]))
            for j, i in enumerate(picks)
        ]
        row += size
        width = round_up(max(cuts), patch)
        values = np.zeros((size, heldout.channels, width), dtype=np.float32)
        observed = np.zeros((size, width), dtype=np.float32)
        for j, (i, cut) in enumerate(zip(picks, cuts, strict=True)):
            values[j, :, :cut] = heldout.values[i, :, :cut]
            observed[j, :cut] = 1.0
        feeds.append({"values": values, "observed": observed})
    return feeds


def export_spec(
    heldout: SeriesSet,
    patch: int,
    channels: int,
    max_length: int,
    sizes: tuple[int, ...] = PARITY_BATCHES,
) -> ExportSpec:
    length = min(2 * patch, max_length)
    return ExportSpec(
        input_names=["values", "observed"],
        example_inputs=(torch.randn(2, channels, length), torch.ones(2, length)),
        dynamic_axes={
            "values": {0: "batch", 2: "length"},
            "observed": {0: "batch", 1: "length"},
            "embeddings": {0: "batch"},
        },
        parity_feeds=parity_feeds(heldout, patch, sizes),
    )


def fit_to_model(series: SeriesSet, encoder: PatchTransformerEncoder, path: Path) -> SeriesSet:
    """Pad/truncate a probe set to the encoder's patch grid (keep_first, as the edge does)."""
    if series.channels != encoder.channels:
        raise SeriesError(
            f"{path}: the series have {series.channels} channel(s) but the model takes "
            f"{encoder.channels}; use a probe set with {encoder.channels} channel(s)"
        )
    width = min(round_up(series.values.shape[2], encoder.patch), encoder.max_length)
    return series.fit(width)


@torch.no_grad()
def embed_series(
    encoder: PatchTransformerEncoder, series: SeriesSet, batch_size: int = 256
) -> torch.Tensor:
    """Embeddings ``[N, hidden]`` in eval mode on the encoder's device, returned on CPU."""
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    out = []
    for start in range(0, len(series), batch_size):
        indices = np.arange(start, min(start + batch_size, len(series)))
        values, observed = batch_arrays(series, indices, encoder.patch)
        out.append(encoder(values.to(device), observed.to(device)).float().cpu())
    encoder.train(was_training)
    return torch.cat(out)


def probe_series(
    encoder: PatchTransformerEncoder, path: Path, seed: int = 0, limit: int = 5000
) -> dict[str, float]:
    """kNN and linear accuracy on a seeded 80/20 split of the labeled set at ``path``."""
    series = read_series(path, max_length=encoder.max_length)
    labels = series.require_labels(path)
    if len(series) > limit:
        series = series.subset(np.arange(limit))
        labels = labels[:limit]
    names = sorted(set(labels))
    if len(names) < 2:
        raise SeriesError(f"{path}: the probe set has {len(names)} label(s); it needs at least 2")
    y = torch.tensor([names.index(label) for label in labels])
    x = embed_series(encoder, fit_to_model(series, encoder, path))
    tr, te = split(len(series), 0.2, seed)
    args = (x[tr], y[tr], x[te], y[te], len(names))
    return {"knn_accuracy": knn_accuracy(*args), "linear_accuracy": linear_accuracy(*args)}


class Series(runs.Modality):
    """Time-series hooks: read (truncating), patch Transformer, in-graph preprocessing."""

    throughput_key = "points_per_second"

    def load(self, run: Run) -> tuple[SeriesSet, SeriesSet]:
        config = run.config
        # Truncating while reading (keep_first) bounds memory by the model's length; with
        # series_length 0 only MAX_SERIES_LENGTH cuts, so the data's longest still decides.
        cap = model_length(config, config.series_length or MAX_SERIES_LENGTH)
        self.series = series = read_series(run.data, max_length=cap)
        self.max_length = max_length = model_length(config, series.max_length)
        train_set, self.heldout = heldout_split(
            series.fit(max_length), config.heldout_fraction, config.heldout_max
        )
        self.mean, self.std = train_set.channel_stats()
        run.log(
            f"dataset {run.data}: {len(series)} series, {series.channels} channel(s), length "
            f"{series.stats['min_length']}-{series.stats['max_length']} -> max_length "
            f"{max_length} ({series.stats['truncated']} truncated), {len(train_set)} train / "
            f"{len(self.heldout)} held out"
        )
        return train_set, self.heldout

    def build(self, run: Run) -> Pretext:
        dataset_norm = run.config.normalization == "dataset"
        return SeriesPretext(
            run.config,
            self.series.channels,
            self.max_length,
            self.mean.tolist() if dataset_norm else None,
            self.std.tolist() if dataset_norm else None,
        )

    def describe(self, run: Run, pretext: Pretext) -> dict[str, Any]:
        config, encoder, channels = run.config, pretext.encoder, self.series.channels
        dataset_norm = config.normalization == "dataset"
        return {
            **runs.encoder_fields(config, "mean", ["values", "observed"]),
            "architecture": {
                "type": "patch_transformer",
                "layers": config.layers,
                "hidden": config.hidden,
                "heads": config.heads,
                "intermediate": config.intermediate,
                "channels": channels,
                "patch_size": config.series_patch,
                "max_patches": self.max_length // config.series_patch,
            },
            "weights": WEIGHTS,  # what a fine-tune job builds on (with architecture)
            "preprocessing": {
                "channels": channels,
                "max_length": self.max_length,
                "patch_size": config.series_patch,
                "normalization": config.normalization,
                "mean": encoder.mean.tolist() if dataset_norm else None,
                "std": encoder.std.tolist() if dataset_norm else None,
                "in_graph": True,
                "pad": "end",
                "truncate": "keep_first",
            },
            "matryoshka_dims": [],
            "dataset": {
                "sha256": file_sha256(run.data),
                "stats": {**self.series.stats, "heldout": len(self.heldout)},
            },
        }

    def probe(self, run: Run, pretext: Pretext, eval_path: Path) -> dict[str, float]:
        return probe_series(pretext.encoder, eval_path, run.config.seed)

    def export(self, run: Run, pretext: Pretext, fields: dict[str, Any]) -> dict[str, Any]:
        c = run.config
        spec = export_spec(self.heldout, c.series_patch, self.series.channels, self.max_length)
        with staged_weights(pretext.encoder) as weights:
            return export_artifact(pretext.encoder, run.out_dir, spec, fields, log=run.log,
                                   extra_files=weights)  # fmt: skip


def pretrain(
    config: TrainConfig, data: str | Path, out_dir: str | Path, **options: Any
) -> dict[str, Any] | None:
    """Train a patch Transformer on the series at ``data`` (JSONL or CSV, optionally gzipped;
    labels, if any, are ignored) and export it to ``out_dir``; ``options`` are
    :func:`runs.pretrain`'s (``eval_path``: a labeled series set).

    Raises:
        SeriesError: the dataset cannot be read (the message names line and column).
        ValueError: an impossible config for this data.
    """
    return runs.pretrain(Series(), config, data, out_dir, **options)


def encoder_from_checkpoint(step_dir: Path) -> PatchTransformerEncoder:
    """Rebuild a checkpoint's encoder on CPU (shape from its weights, config from the file)."""
    state = load_checkpoint(step_dir)  # this process wrote it (or a sha-verified download)
    config = TrainConfig.from_dict(state["config"]).resolve()
    channels, max_length = shape_of_state(state["model"], config.series_patch)
    encoder = PatchTransformerEncoder(config, channels, max_length)
    encoder.load_state_dict(encoder_weights(state["model"]))
    return encoder


def checkpoint_probe(step_dir: Path, eval_path: Path) -> dict[str, float]:
    """kNN/linear probe accuracies of a checkpoint's encoder on a labeled series set."""
    return probe_series(encoder_from_checkpoint(Path(step_dir)), Path(eval_path))
