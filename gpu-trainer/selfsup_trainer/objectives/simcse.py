"""Unsupervised SimCSE (Gao et al., 2021): a sentence and itself under a second dropout mask
are a positive pair; the other sentences of the batch are negatives (InfoNCE).

No projection head: the loss acts directly on the pooled, normalised vector that is exported,
so what is optimised is what is served.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..data import TokenizedCorpus, pad_batch
from ..model import Encoder
from .gather import gather_rows


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric-free InfoNCE as in SimCSE: row i of ``a`` must pick row i of ``b``.

    Args:
        a: [batch, dims] L2-normalised anchors.
        b: [batch, dims] L2-normalised positives (row-aligned with ``a``); under DDP the
            other ranks' ``b`` rows join as negatives.
        temperature: softmax temperature (SimCSE uses 0.05).

    Returns:
        Scalar mean loss.
    """
    candidates, offset = gather_rows(b)  # under DDP, every rank's positives are negatives too
    logits = (a @ candidates.T).float() / temperature  # cosines: rows are unit vectors
    return F.cross_entropy(logits, torch.arange(len(a), device=a.device) + offset)


class SimCSE:
    name = "simcse"

    def __init__(self, temperature: float) -> None:
        self.temperature = temperature

    def collate(
        self, corpus: TokenizedCorpus, indices: np.ndarray, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        ids, mask = pad_batch([corpus.ids(int(i)) for i in indices])
        return {"input_ids": ids, "attention_mask": mask}

    def loss(self, encoder: Encoder, batch: dict[str, torch.Tensor]):
        ids, mask = batch["input_ids"], batch["attention_mask"]
        # One forward over the doubled batch: both copies get independent dropout masks.
        z = encoder(torch.cat([ids, ids]), torch.cat([mask, mask]))
        a, b = z.chunk(2)
        loss = info_nce(a, b, self.temperature)
        return loss, {}
