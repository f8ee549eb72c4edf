"""Tokenized corpus held as one flat int32 array, and length-bucketed, resumable batching.

The text is streamed once through the tokenizer; only ids are kept (4 bytes/token), with
offsets per document. Batches are a pure function of (seed, epoch), so a checkpoint only needs
the global micro-batch counter to resume on exactly the same data.
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


def epoch_batches(
    lengths: np.ndarray,
    batch_size: int,
    seed: int,
    epoch: int,
    bucket_batches: int = 50,
    rank: int = 0,
    world_size: int = 1,
) -> list[np.ndarray]:
    """Shuffled batches of document indices for one epoch, bucketed by length.

    Documents are shuffled, cut into windows of ``batch_size * bucket_batches``, sorted by length
    inside each window and split into batches; the batch order is shuffled again so that the run
    does not see short-then-long sequences. Padding drops to a few percent while each batch stays
    a random sample of the corpus.

    Returns:
        This rank's batches; every rank gets the same number (extras are dropped).
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    window = batch_size * bucket_batches
    batches: list[np.ndarray] = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    # A ragged last batch would change the step's shape and (for SimCSE) its negatives.
    if len(batches) > 1 and len(batches[-1]) < batch_size:
        last = batches.pop()
        if len(batches[-1]) != batch_size:
            batches.append(last)
    batches = [batches[i] for i in rng.permutation(len(batches))]
    usable = len(batches) - len(batches) % world_size if len(batches) >= world_size else 0
    if usable == 0:
        raise ValueError(
            f"corpus yields {len(batches)} batches of batch_size={batch_size}, fewer than "
            f"world_size={world_size}; lower batch_size or use more data"
        )
    return batches[rank:usable:world_size]


class BatchStream:
    """Maps a global micro-batch counter to (epoch, batch) so resume is exact."""

    def __init__(
        self,
        corpus: TokenizedCorpus,
        batch_size: int,
        seed: int,
        bucket_batches: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.corpus = corpus
        self.args = (batch_size, seed)
        self.bucket_batches = bucket_batches
        self.rank, self.world_size = rank, world_size
        self._epoch = -1
        self._batches: list[np.ndarray] = []
        self.per_epoch = len(self._for_epoch(0))

    def _for_epoch(self, epoch: int) -> list[np.ndarray]:
        if epoch != self._epoch:
            batch_size, seed = self.args
            self._batches = epoch_batches(
                self.corpus.lengths,
                batch_size,
                seed,
                epoch,
                self.bucket_batches,
                self.rank,
                self.world_size,
            )
            self._epoch = epoch
        return self._batches

    def get(self, micro_step: int) -> np.ndarray:
        epoch, index = divmod(micro_step, self.per_epoch)
        return self._for_epoch(epoch)[index]


def step_generator(seed: int, micro_step: int, rank: int = 0) -> torch.Generator:
    """Masking/pairing randomness is keyed by step, so resuming needs no saved data RNG."""
    return torch.Generator().manual_seed(seed * 1_000_003 + micro_step * 131 + rank)
