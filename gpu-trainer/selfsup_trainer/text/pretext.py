"""The text pretext: encoder, MLM/NSP heads, the text objectives' recipes, held-out metrics and
the MFU FLOP model (text is the one modality with one)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..config import TrainConfig
from ..mfu import flops_per_token
from ..objective import Objective, Pretext, Recipe, register
from .bert import BertEncoder, BertShape
from .data import TokenizedCorpus
from .metrics import evaluate
from .mlm import MLM, MLMHead
from .model import Encoder
from .nsp import MLMNSP, NSPHead
from .simcse import SimCSE
from .tokenizer import OUR_SPECIALS, SpecialIds


class TextPretext(Pretext):
    """Encoder plus the heads its objective needs (:data:`~..objective.RECIPES`)."""

    def __init__(
        self, config: TrainConfig, vocab_size: int, specials: SpecialIds = OUR_SPECIALS
    ) -> None:
        super().__init__(config)
        self.encoder = text_encoder(config, vocab_size)
        self.specials = specials
        self.vocab_size = vocab_size
        self.add_heads()

    def evaluate(self, heldout: TokenizedCorpus, device: torch.device) -> dict[str, float]:
        return evaluate(self, heldout, device)

    def flops_per_unit(self, objective: Objective, padded_length: float) -> float | None:
        c = self.config
        return flops_per_token(
            non_embedding_parameters(self), c.layers or 0, c.hidden or 0, padded_length,
            self.vocab_size, objective.predicted_fraction,
        )  # fmt: skip


def non_embedding_parameters(pretext: nn.Module) -> int:
    embeddings = pretext.encoder.tok.weight.numel() + pretext.encoder.pos.weight.numel()
    return sum(p.numel() for p in pretext.parameters()) - embeddings


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


def build_mlm(p: Any) -> MLM:
    return MLM(p.heads["mlm"], p.config.mask_rate, p.vocab_size, p.specials)


def build_simcse(p: Any) -> SimCSE:
    return SimCSE(p.config.simcse_temperature)


def build_mlm_nsp(p: Any) -> MLMNSP:
    c = p.config
    return MLMNSP(p.heads["mlm"], p.heads["nsp"], c.mask_rate, p.vocab_size, c.max_tokens)


def mlm_head(p: Any) -> dict[str, nn.Module]:
    return {"mlm": MLMHead(p.encoder)}


def mlm_nsp_heads(p: Any) -> dict[str, nn.Module]:
    assert p.config.hidden
    return {**mlm_head(p), "nsp": NSPHead(p.config.hidden)}


register("text", "mlm", Recipe(mlm_head, (build_mlm,)))
register("text", "simcse", Recipe(lambda p: {}, (build_simcse,)))
# MLM for mlm_fraction of the steps, then SimCSE.
register(
    "text", "mlm+simcse", Recipe(mlm_head, (build_mlm, build_simcse), lambda c: c.mlm_fraction)
)
register("text", "mlm+nsp", Recipe(mlm_nsp_heads, (build_mlm_nsp,)))

__all__ = ["MLM", "MLMNSP", "MLMHead", "NSPHead", "SimCSE", "TextPretext", "text_encoder"]
