"""Unsupervised SimCSE (Gao et al., 2021): a sentence and itself under a second dropout mask
are a positive pair; the other sentences of the batch are negatives (InfoNCE).

No projection head: the loss acts directly on the pooled, normalised vector that is exported,
so what is optimised is what is served.
"""

from __future__ import annotations

import numpy as np
import torch

from ..losses import info_nce
from .data import TokenizedCorpus, pad_batch, token_units
from .model import Encoder


class SimCSE:
    name = "simcse"
    unit_name = "tok"
    predicted_fraction = 0.0

    def __init__(self, temperature: float) -> None:
        self.temperature = temperature

    def units(self, batch: dict[str, torch.Tensor]) -> tuple[int, int, int]:
        return token_units(batch, copies=2)  # every row is encoded twice

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
