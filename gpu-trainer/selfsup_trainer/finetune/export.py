"""A fine-tuned version's artifact: one graph with two outputs — ``embeddings`` (as every
version serves them, postprocess included) and ``logits`` — through the shared exporter and its
parity gates, plus the encoder's weights and the head's (``head.safetensors``)."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from ..export import LOGITS, ExportSpec, export_artifact
from ..weights import staged_weights
from .model import Head

HEAD_FILE = "head.safetensors"


class ClassifierGraph(nn.Module):
    """``inputs -> (embeddings, logits)``: the encoder runs once for both outputs."""

    def __init__(self, encoder: nn.Module, head: Head, post: nn.Module | None) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head
        self.post = post if post is not None else nn.Identity()

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(*inputs)
        return self.post(z), self.head(z)


def with_logits(spec: ExportSpec) -> ExportSpec:
    """``spec`` with the ``logits`` output (dynamic batch) after ``embeddings``."""
    axes = {**spec.dynamic_axes, LOGITS: {0: "batch"}}
    return dataclasses.replace(spec, outputs=(*spec.outputs, LOGITS), dynamic_axes=axes)


def export_classifier(
    encoder: nn.Module,
    head: Head,
    post: nn.Module | None,
    spec: ExportSpec,
    out_dir: Path,
    fields: dict[str, Any],
    extra_files: dict[str, Path],
    log=print,
) -> dict[str, Any]:
    """Export with the embeddings' gates and the logits' (fp32 max abs diff, int8 argmax
    agreement); int8 is left out when below them. Returns the manifest."""
    graph = ClassifierGraph(encoder, head, post).eval()
    with tempfile.TemporaryDirectory() as tmp, staged_weights(encoder) as weights:
        head_path = Path(tmp) / HEAD_FILE
        state = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
        save_file(state, str(head_path))
        files = {**extra_files, **weights, HEAD_FILE: head_path}
        return export_artifact(
            graph, out_dir, with_logits(spec), fields, log=log, extra_files=files,
            int8_optional=True,
        )  # fmt: skip
