"""Tokenized corpus held as one flat int32 array, padding, and token throughput units.

The text is streamed once through the tokenizer; only ids are kept (4 bytes/token), with
offsets per document (batching: :mod:`selfsup_trainer.batches`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from tokenizers import Tokenizer

from .tokenizer import PAD_ID


class TokenizedCorpus:
    """Documents as token id arrays (with [CLS]/[SEP], truncated to ``max_tokens``)."""

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray) -> None:
        self.tokens = tokens
        self.offsets = offsets
        self.lengths = np.diff(offsets)

    @classmethod
    def encode(
        cls, tokenizer: Tokenizer, texts: Iterable[str], chunk: int = 1024
    ) -> TokenizedCorpus:
        pieces: list[np.ndarray] = []
        lengths: list[int] = []
        buffer: list[str] = []

        def flush() -> None:
            for enc in tokenizer.encode_batch(buffer):
                pieces.append(np.asarray(enc.ids, dtype=np.int32))
                lengths.append(len(enc.ids))
            buffer.clear()

        for text in texts:
            buffer.append(text)
            if len(buffer) >= chunk:
                flush()
        if buffer:
            flush()
        tokens = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return cls(tokens, offsets)

    def __len__(self) -> int:
        return len(self.lengths)

    def ids(self, index: int) -> np.ndarray:
        return self.tokens[self.offsets[index] : self.offsets[index + 1]]

    @property
    def num_tokens(self) -> int:
        return int(self.tokens.size)


def pad_batch(sequences: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence.

    Returns:
        input_ids [batch, seq] int64 and attention_mask [batch, seq] int64.
    """
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), PAD_ID, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.from_numpy(seq.astype(np.int64))
        mask[row, : len(seq)] = 1
    return ids, mask


def token_units(batch: dict[str, torch.Tensor], copies: int = 1) -> tuple[int, int, int]:
    """(real tokens, padded tokens, rows) under the attention mask, each encoded ``copies``
    times (SimCSE encodes every row twice)."""
    mask = batch["attention_mask"]
    return int(mask.sum()) * copies, mask.numel() * copies, mask.shape[0] * copies
