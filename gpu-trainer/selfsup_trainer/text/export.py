"""Text's export: parity on tokenized held-out documents, ``tokenizer.json`` and the PyTorch
weights (``encoder.safetensors``) shipped with the ONNX files, and the int8 kernel file our WASM
encoder serves (:mod:`.kernel`) when the encoder is one it can run (bare, or centred/whitened)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from ..export import ExportSpec, KernelWriter, export_artifact, row_cosines
from .bert import BertEncoder
from .kernel import KERNEL_FILE, KernelArch, pack_kernel, reference_embed
from .model import Encoder
from .postprocess import PostProcessed
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
        kernel = kernel_writer(encoder, spec)
        return export_artifact(
            encoder, out_dir, spec, manifest_fields, gates, log, extra, kernel=kernel
        )


def kernel_arch(encoder: torch.nn.Module) -> KernelArch | None:
    """The kernel header of a bare BertEncoder (post-LN) or Encoder (pre-LN); None for anything
    else (a post-processed one: :func:`kernel_parts` unwraps it first)."""
    if isinstance(encoder, BertEncoder):
        s = encoder.shape
        return KernelArch(
            s.layers, s.hidden, s.heads, s.intermediate, s.vocab_size, s.max_position,
            "post", encoder.pooling, s.layer_norm_eps,
        )  # fmt: skip
    if isinstance(encoder, Encoder):
        block = encoder.blocks[0]
        return KernelArch(
            len(encoder.blocks), encoder.tok.embedding_dim, block.attn.heads,
            block.mlp[0].out_features, encoder.tok.num_embeddings, encoder.pos.num_embeddings,
            "pre", encoder.pooling, encoder.emb_ln.eps,
        )  # fmt: skip
    return None


def kernel_parts(
    encoder: torch.nn.Module,
) -> tuple[torch.nn.Module, tuple[np.ndarray, np.ndarray | None] | None]:
    """(the encoder whose weights the kernel packs, its post-processing for :func:`pack_kernel`):
    a PostProcessed wrapper gives its inner encoder and its ``mean``/``matrix`` buffers."""
    if not isinstance(encoder, PostProcessed):
        return encoder, None
    as_numpy = lambda t: t.detach().cpu().float().numpy()  # noqa: E731
    matrix = encoder.matrix
    return encoder.encoder, (
        as_numpy(encoder.mean),
        as_numpy(matrix) if matrix is not None else None,
    )


def kernel_writer(encoder: torch.nn.Module, spec: ExportSpec) -> KernelWriter:
    """The :data:`~selfsup_trainer.export.KernelWriter` of ``encoder``: packs its weights, embeds
    each held-out row (without its padding) with :func:`reference_embed` and gates it against
    the fp32 graph's embeddings (post-processing included) with the int8 gates."""

    def write(staging: Path, fp32: np.ndarray, gates: dict[str, float], log) -> dict | None:
        inner, post = kernel_parts(encoder)
        arch = kernel_arch(inner)
        if arch is None:
            name = type(inner).__name__
            log(f"int8 kernel: {name} is not a BERT/text encoder (bare or post-processed); none")
            return None
        weights = {k: v.detach().cpu().float().numpy() for k, v in inner.state_dict().items()}
        try:
            blob = pack_kernel(weights, arch, post)
        except ValueError as error:
            log(f"int8 kernel: {error}; none written")
            return None
        rows = [
            ids[r, mask[r] == 1].tolist()
            for ids, mask in ((f["input_ids"], f["attention_mask"]) for f in spec.parity_feeds)
            for r in range(len(ids))
        ]
        embedded = np.stack([reference_embed(blob, row) for row in rows])
        cos = row_cosines(fp32, embedded)
        text = f"mean {cos.mean():.5f}, min {cos.min():.5f} over {len(cos)} rows"
        if not (cos.mean() >= gates["int8_mean_cosine"] and cos.min() >= gates["int8_min_cosine"]):
            log(f"int8 kernel vs fp32 below gate ({text}); none written")
            return None
        (staging / KERNEL_FILE).write_bytes(blob)
        log(f"parity int8 kernel ({text}), {len(blob):,} bytes")
        return {"mean_cosine": float(cos.mean()), "min_cosine": float(cos.min()), "rows": len(cos)}

    return write
