"""Length-bucketed, resumable batching shared by every modality.

Batches are a pure function of (seed, epoch), so a checkpoint only needs the global micro-batch
counter to resume on exactly the same data. A dataset only needs ``len()`` and a ``lengths``
array (tokens, points or a constant for images).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


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
        corpus: Any,
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
