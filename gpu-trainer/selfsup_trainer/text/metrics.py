"""Pretext metrics on the held-out slice: MLM accuracy/perplexity, and Wang & Isola (2020)
alignment and uniformity of the embedding space.

Evaluation runs under ``torch.random.fork_rng`` so that it never consumes the training RNG:
otherwise a resumed run that evaluates at different steps would diverge from the original.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..batches import step_generator
from ..losses import alignment, uniformity
from .data import TokenizedCorpus, pad_batch
from .mlm import MLM

if TYPE_CHECKING:
    from .pretext import TextPretext


def _batches(corpus: TokenizedCorpus, size: int):
    for start in range(0, len(corpus), size):
        yield np.arange(start, min(start + size, len(corpus)))


@torch.no_grad()
def evaluate(
    pretext: TextPretext, heldout: TokenizedCorpus, device: torch.device, batch_size: int = 32
) -> dict[str, float]:
    """Metrics dict; MLM keys only when the objective trains an MLM head.

    Positive pairs for alignment are two dropout views of the same held-out sentence (the
    unsupervised SimCSE view), since the corpus has no labelled pairs.
    """
    was_training = pretext.training
    metrics: dict[str, float] = {}
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(0)
        if "mlm" in pretext.heads:
            pretext.eval()
            mlm = MLM(
                pretext.heads["mlm"], pretext.config.mask_rate, pretext.vocab_size, pretext.specials
            )
            total_loss, correct, count = 0.0, 0, 0
            for i, indices in enumerate(_batches(heldout, batch_size)):
                batch = mlm.collate(heldout, indices, step_generator(12345, i))
                batch = {k: v.to(device) for k, v in batch.items()}
                loss, stats = mlm.loss(pretext.encoder, batch)
                n = int(stats["count"])
                total_loss += loss.item() * n
                correct += int(stats["correct"])
                count += n
            metrics["mlm_accuracy"] = correct / max(count, 1)
            metrics["perplexity"] = math.exp(min(total_loss / max(count, 1), 50.0))
        views, clean = [], []
        for indices in _batches(heldout, batch_size):
            ids, mask = pad_batch([heldout.ids(int(i)) for i in indices])
            ids, mask = ids.to(device), mask.to(device)
            pretext.train()
            views.append((pretext.encoder(ids, mask).float(), pretext.encoder(ids, mask).float()))
            pretext.eval()
            clean.append(pretext.encoder(ids, mask).float())
        a = torch.cat([v[0] for v in views])
        b = torch.cat([v[1] for v in views])
        metrics["alignment"] = alignment(a, b)
        metrics["uniformity"] = uniformity(torch.cat(clean))
    pretext.train(was_training)
    return metrics
