"""BERT's original pair objective: MLM on "[CLS] A [SEP] B [SEP]" plus next-sentence prediction
(B follows A in the corpus, or B is a random document from it).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import TokenizedCorpus, pad_batch, token_units
from .mlm import MLMHead, mask_tokens, masked_lm_loss
from .model import Encoder
from .tokenizer import CLS_ID, SEP_ID


class NSPHead(nn.Module):
    """BERT pooler (tanh over the [CLS] state) + 2-way classifier; label 1 means "is next"."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.pooler = nn.Linear(hidden, hidden)
        self.classifier = nn.Linear(hidden, 2)

    def forward(self, cls_state: torch.Tensor) -> torch.Tensor:
        """[batch, hidden] -> [batch, 2] logits."""
        return self.classifier(torch.tanh(self.pooler(cls_state)))


def make_pair(a: np.ndarray, b: np.ndarray, max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """Join two encoded documents (each "[CLS] ... [SEP]") into one pair, trimming the longer
    side first as BERT does.

    Returns:
        ids and token_type_ids, both of length <= max_tokens.
    """
    a, b = list(a[1:-1]), list(b[1:-1])
    while len(a) + len(b) + 3 > max_tokens:
        (a if len(a) >= len(b) else b).pop()
    ids = np.array([CLS_ID, *a, SEP_ID, *b, SEP_ID], dtype=np.int64)
    types = np.array([0] * (len(a) + 2) + [1] * (len(b) + 1), dtype=np.int64)
    return ids, types


class MLMNSP:
    name = "mlm+nsp"
    unit_name = "tok"

    def __init__(
        self, mlm_head: MLMHead, nsp_head: NSPHead, rate: float, vocab_size: int, max_tokens: int
    ) -> None:
        self.mlm_head, self.nsp_head = mlm_head, nsp_head
        self.rate, self.vocab_size, self.max_tokens = rate, vocab_size, max_tokens
        self.predicted_fraction = rate

    def units(self, batch: dict[str, torch.Tensor]) -> tuple[int, int, int]:
        return token_units(batch)

    def collate(
        self, corpus: TokenizedCorpus, indices: np.ndarray, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        n = len(corpus)
        coins = torch.rand(len(indices), generator=generator).tolist()
        randoms = torch.randint(n, (len(indices),), generator=generator).tolist()
        pairs, types, labels = [], [], []
        for index, coin, other in zip(indices.tolist(), coins, randoms, strict=True):
            is_next = coin < 0.5 and index + 1 < n
            partner = index + 1 if is_next else other
            if not is_next and partner == index + 1:
                partner = (partner + 1) % n  # a "random" pair must not be the true next one
            ids, tt = make_pair(corpus.ids(index), corpus.ids(partner), self.max_tokens)
            pairs.append(ids)
            types.append(tt)
            labels.append(int(is_next))
        ids, mask = pad_batch(pairs)
        token_types, _ = pad_batch(types)
        masked, mlm_labels = mask_tokens(ids, mask, self.rate, self.vocab_size, generator)
        return {
            "input_ids": masked,
            "attention_mask": mask,
            "token_type_ids": token_types,
            "labels": mlm_labels,
            "nsp_labels": torch.tensor(labels),
        }

    def loss(self, encoder: Encoder, batch: dict[str, torch.Tensor]):
        ids, mask, types = batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
        states = encoder.hidden_states(ids, mask, types)
        mlm, stats = masked_lm_loss(states, self.mlm_head, encoder.tok.weight, batch["labels"])
        nsp_logits = self.nsp_head(states[:, 0])
        nsp = F.cross_entropy(nsp_logits.float(), batch["nsp_labels"])
        stats["nsp_correct"] = (nsp_logits.argmax(-1) == batch["nsp_labels"]).sum()
        return mlm + nsp, stats
