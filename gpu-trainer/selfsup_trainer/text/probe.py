"""Text probe sets: read ``{"text", "label"}`` records, embed them, kNN/linear accuracies."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer

from ..probe import knn_accuracy, linear_accuracy, split
from .model import Encoder


def read_labeled(path: Path, limit: int = 2000) -> tuple[list[str], list[str]]:
    """Read a probe set (.jsonl ``{"text", "label"}``), at most ``limit`` records.

    Raises:
        ValueError: a line that is not such a record, naming file and line.
    """
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                texts.append(str(rec["text"]))
                labels.append(str(rec["label"]))
            except (ValueError, KeyError, TypeError):
                raise ValueError(
                    f"{path}:{number}: not a labeled record; each line must be a JSON object "
                    '{"text": ..., "label": ...}'
                ) from None
            if len(texts) >= limit:
                break
    return texts, labels


@torch.no_grad()
def embed(
    encoder: Encoder, tokenizer: Tokenizer, texts: list[str], batch_size: int = 64
) -> torch.Tensor:
    """Pooled embeddings ``[len(texts), hidden]`` in eval mode (dropout off), on CPU."""
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer.encode_batch(texts[i : i + batch_size])
        width = max(len(e.ids) for e in enc)
        ids = torch.zeros(len(enc), width, dtype=torch.long)
        mask = torch.zeros(len(enc), width, dtype=torch.long)
        for row, e in enumerate(enc):
            ids[row, : len(e.ids)] = torch.tensor(e.ids)
            mask[row, : len(e.ids)] = 1
        out.append(encoder(ids.to(device), mask.to(device)).float().cpu())
    encoder.train(was_training)
    return torch.cat(out)


def probe_accuracies(
    encoder: Encoder, tokenizer: Tokenizer, texts: list[str], labels: list[str], seed: int = 0
) -> dict[str, float]:
    """kNN and linear accuracy on a seeded 80/20 split of ``texts``."""
    names = sorted(set(labels))
    if len(names) < 2:
        raise ValueError(f"the eval probe set has {len(names)} label(s); it needs at least 2")
    y = torch.tensor([names.index(label) for label in labels])
    x = embed(encoder, tokenizer, texts)
    tr, te = split(len(texts), 0.2, seed)
    args = (x[tr], y[tr], x[te], y[te], len(names))
    return {"knn_accuracy": knn_accuracy(*args), "linear_accuracy": linear_accuracy(*args)}
