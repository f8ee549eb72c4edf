"""Text's export: parity on tokenized held-out documents, ``tokenizer.json`` and the PyTorch
weights (``encoder.safetensors``) shipped with the ONNX files."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from ..export import ExportSpec, export_artifact
from .tokenizer import PAD_ID
from .weights import WEIGHTS, save_weights

# Batch sizes 1 and 3 first so the dynamic batch axis is exercised, then larger batches whose
# rows have different lengths so the dynamic sequence axis and padding are exercised too.
PARITY_BATCH_SIZES = (1, 3, 8, 8, 12)


def text_spec(
    tokenizer: Tokenizer, texts: list[str], sizes: tuple[int, ...] = PARITY_BATCH_SIZES
) -> ExportSpec:
    """(input_ids, attention_mask) -> embeddings, with dynamic batch and sequence."""
    ids = torch.full((2, 7), 5, dtype=torch.long)
    batches = parity_batches(tokenizer, texts, sizes)
    feeds = [{"input_ids": i, "attention_mask": m} for i, m in batches]
    return ExportSpec(
        input_names=["input_ids", "attention_mask"],
        example_inputs=(ids, torch.ones_like(ids)),
        dynamic_axes={
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            "embeddings": {0: "batch"},
        },
        parity_feeds=feeds,
    )


def parity_batches(
    tokenizer: Tokenizer, texts: list[str], sizes: tuple[int, ...] = PARITY_BATCH_SIZES
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Tokenize ``texts`` the way the edge does (no stored padding; pad each batch ourselves)."""
    batches, start = [], 0
    for size in sizes:
        chunk = texts[start : start + size]
        if not chunk:
            break
        start += size
        encodings = [tokenizer.encode(t).ids for t in chunk]
        width = max(len(e) for e in encodings)
        ids = np.full((len(chunk), width), PAD_ID, dtype=np.int64)
        mask = np.zeros((len(chunk), width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc)] = enc
            mask[row, : len(enc)] = 1
        batches.append((ids, mask))
    return batches


def export_text_artifact(
    encoder: torch.nn.Module,
    tokenizer_path: Path,
    out_dir: Path,
    heldout_texts: list[str],
    manifest_fields: dict[str, Any],
    gates: dict[str, float] | None = None,
    log=print,
    weights: torch.nn.Module | None = None,
) -> dict[str, Any]:
    """:func:`export_artifact` for a text encoder: parity on tokenized held-out documents,
    ``tokenizer.json`` shipped with the weights, and ``weights``' parameters as
    ``encoder.safetensors`` (what a later job continues from; ``manifest_fields["weights"]``)."""
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    spec = text_spec(tokenizer, heldout_texts)
    with tempfile.TemporaryDirectory() as tmp:
        extra = {"tokenizer.json": tokenizer_path}
        if weights is not None:
            extra[WEIGHTS] = save_weights(weights, Path(tmp) / WEIGHTS)
        return export_artifact(encoder, out_dir, spec, manifest_fields, gates, log, extra)
