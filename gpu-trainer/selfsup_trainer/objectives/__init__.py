"""Pretext objectives. Each exposes ``collate(corpus, indices, generator) -> batch`` (CPU, does
the masking/pairing) and ``loss(encoder, batch) -> (loss, stats)``; trainable heads live in
:class:`Pretext` so that one ``state_dict`` and one optimizer cover encoder and heads.
"""

from __future__ import annotations

from torch import nn

from ..bert import BertEncoder, BertShape
from ..config import TrainConfig
from ..model import Encoder
from ..tokenizer import OUR_SPECIALS, SpecialIds
from .mlm import MLM, MLMHead
from .nsp import MLMNSP, NSPHead
from .simcse import SimCSE


class Pretext(nn.Module):
    """Encoder plus the heads its objective needs; :meth:`phase` picks the objective per step."""

    def __init__(
        self, config: TrainConfig, vocab_size: int, specials: SpecialIds = OUR_SPECIALS
    ) -> None:
        super().__init__()
        self.config = config
        self.encoder = text_encoder(config, vocab_size)
        self.specials = specials
        self.heads = nn.ModuleDict()
        if "mlm" in config.objective:
            self.heads["mlm"] = MLMHead(self.encoder)
        if config.objective == "mlm+nsp":
            assert config.hidden
            self.heads["nsp"] = NSPHead(config.hidden)
        self.vocab_size = vocab_size

    def forward(self, batch: dict, objective) -> tuple:
        """Loss of ``objective`` on ``batch``; going through ``forward`` lets DDP sync grads."""
        return objective.loss(self.encoder, batch)

    def phase(self, step: int, total_steps: int):
        """Objective for optimizer step ``step`` (0-based) of ``total_steps``."""
        c = self.config
        if c.objective == "mlm" or (
            c.objective == "mlm+simcse" and step < round(c.mlm_fraction * total_steps)
        ):
            return MLM(self.heads["mlm"], c.mask_rate, self.vocab_size, self.specials)
        if c.objective in ("simcse", "mlm+simcse"):
            return SimCSE(c.simcse_temperature)
        if c.objective == "mlm+nsp":
            return MLMNSP(
                self.heads["mlm"], self.heads["nsp"], c.mask_rate, self.vocab_size, c.max_tokens
            )
        raise ValueError(f"objective={c.objective!r} has no implementation")


def text_encoder(config: TrainConfig, vocab_size: int) -> Encoder | BertEncoder:
    """The text encoder ``config.architecture`` names, freshly initialised."""
    if config.architecture == "bert":
        assert config.layers and config.hidden and config.heads and config.intermediate
        shape = BertShape(
            config.layers,
            config.hidden,
            config.heads,
            config.intermediate,
            vocab_size,
            config.max_position or config.max_tokens,
        )
        return BertEncoder(shape, config.pooling, config.dropout)
    return Encoder(config, vocab_size)


__all__ = ["MLM", "MLMNSP", "MLMHead", "NSPHead", "Pretext", "SimCSE", "text_encoder"]
