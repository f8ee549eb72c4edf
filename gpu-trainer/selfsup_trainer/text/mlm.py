"""Masked language modelling (BERT): 15% of tokens, 80% [MASK] / 10% random / 10% unchanged.

Masking happens in the collate step (CPU, per batch, seeded by step) so the model never sees
labels, and the loss is computed on masked positions only: gathering the ~15% masked states
before the vocabulary projection skips ~85% of the largest matmul of a small model.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import TokenizedCorpus, pad_batch, token_units
from .model import Encoder
from .tokenizer import OUR_SPECIALS, SpecialIds

IGNORE = -100


def mask_tokens(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    rate: float,
    vocab_size: int,
    generator: torch.Generator,
    specials: SpecialIds = OUR_SPECIALS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply BERT masking.

    Args:
        input_ids: [batch, seq] int64; not modified.
        attention_mask: [batch, seq], 0 on padding.
        rate: share of maskable tokens selected for prediction.
        vocab_size: random replacements are drawn from [specials.first_piece, vocab_size).
        generator: source of randomness (CPU).
        specials: the vocabulary's [PAD]/[CLS]/[SEP]/[MASK] ids.

    Returns:
        (masked input_ids [batch, seq], labels [batch, seq] with IGNORE where not selected).
        [PAD], [CLS], [SEP] and padding are never selected; at least one token is.
    """
    maskable = (attention_mask != 0) & (input_ids != specials.pad)
    maskable &= (input_ids != specials.cls) & (input_ids != specials.sep)
    probs = torch.rand(input_ids.shape, generator=generator)
    selected = (probs < rate) & maskable
    if not selected.any() and maskable.any():
        # A batch without any target would give a NaN loss; pick one maskable token.
        candidates = maskable.flatten().nonzero().squeeze(1)
        pick = candidates[torch.randint(len(candidates), (1,), generator=generator)]
        selected.view(-1)[pick] = True
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE))
    action = torch.rand(input_ids.shape, generator=generator)
    to_mask = selected & (action < 0.8)
    to_random = selected & (action >= 0.8) & (action < 0.9)
    random_ids = torch.randint(
        specials.first_piece, vocab_size, input_ids.shape, generator=generator
    )
    masked = torch.where(to_mask, torch.full_like(input_ids, specials.mask), input_ids)
    masked = torch.where(to_random, random_ids, masked)
    return masked, labels


class MLMHead(nn.Module):
    """Transform + decoder tied to the input embeddings (BERT's ``cls.predictions``)."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        hidden = encoder.tok.embedding_dim
        self.dense = nn.Linear(hidden, hidden)
        self.ln = nn.LayerNorm(hidden)
        self.bias = nn.Parameter(torch.zeros(encoder.tok.num_embeddings))

    def forward(self, states: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """[..., hidden] states -> [..., vocab] logits; ``embedding``: tied [vocab, hidden]."""
        return F.linear(self.ln(F.gelu(self.dense(states))), embedding, self.bias)


def mlm_loss(
    encoder: Encoder,
    head: MLMHead,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    labels: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Cross-entropy over masked positions only (see :func:`masked_lm_loss`)."""
    states = encoder.hidden_states(input_ids, attention_mask)
    return masked_lm_loss(states, head, encoder.tok.weight, labels)


def masked_lm_loss(
    states: torch.Tensor, head: MLMHead, embedding: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """
    Args:
        states: [batch, seq, hidden] encoder states.
        head: the MLM head.
        embedding: [vocab, hidden] tied input embedding.
        labels: [batch, seq] target ids, IGNORE where not masked.

    Returns:
        (mean loss, {"correct": n correct predictions, "count": n masked}) as tensors.
    """
    selected = labels != IGNORE
    logits = head(states[selected], embedding)  # [n_masked, vocab]
    targets = labels[selected]
    loss = F.cross_entropy(logits.float(), targets)
    correct = (logits.argmax(-1) == targets).sum()
    return loss, {"correct": correct, "count": selected.sum()}


class MLM:
    """Objective: collate (pad + mask) and loss."""

    name = "mlm"
    unit_name = "tok"

    def __init__(
        self, head: MLMHead, rate: float, vocab_size: int, specials: SpecialIds = OUR_SPECIALS
    ) -> None:
        self.head, self.rate, self.vocab_size, self.specials = head, rate, vocab_size, specials
        self.predicted_fraction = rate  # the vocabulary projection runs on masked tokens only

    def collate(
        self, corpus: TokenizedCorpus, indices: np.ndarray, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        ids, mask = pad_batch([corpus.ids(int(i)) for i in indices])
        masked, labels = mask_tokens(
            ids, mask, self.rate, self.vocab_size, generator, self.specials
        )
        return {"input_ids": masked, "attention_mask": mask, "labels": labels}

    def units(self, batch: dict[str, torch.Tensor]) -> tuple[int, int, int]:
        return token_units(batch)

    def loss(self, encoder: Encoder, batch: dict[str, torch.Tensor]):
        return mlm_loss(
            encoder, self.head, batch["input_ids"], batch["attention_mask"], batch["labels"]
        )
