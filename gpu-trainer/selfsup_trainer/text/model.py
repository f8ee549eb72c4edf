"""BERT-style text encoder whose forward pass returns the final, pooled, L2-normalised vector.

Pooling and normalisation live inside the model so that the exported ONNX graph emits exactly
what the edge serves; objective heads (:mod:`.mlm`, :mod:`.nsp`) consume
:meth:`Encoder.hidden_states`. The block stack is the core's pre-LN one (:mod:`..transformer`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TrainConfig
from ..transformer import BlockStack


class Encoder(BlockStack):
    """Token (+position, +segment for NSP) embeddings, pre-LN transformer, pooling, L2-norm."""

    def __init__(self, config: TrainConfig, vocab_size: int) -> None:
        super().__init__()
        assert config.hidden and config.layers and config.heads and config.intermediate
        self.pooling = config.pooling
        self.max_position = config.max_position or config.max_tokens
        self.tok = nn.Embedding(vocab_size, config.hidden)
        self.pos = nn.Embedding(self.max_position, config.hidden)
        self.seg = (
            nn.Embedding(config.type_vocab_size, config.hidden) if config.type_vocab_size else None
        )
        self.emb_ln = nn.LayerNorm(config.hidden)
        self.drop = nn.Dropout(config.dropout)
        self.init_stack(config)

    def hidden_states(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """
        Args:
            input_ids: [batch, seq] int64.
            attention_mask: [batch, seq], 1 for real tokens and 0 for padding.
            token_type_ids: [batch, seq] segment ids (NSP only).

        Returns:
            [batch, seq, hidden] contextual token states.
        """
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.tok(input_ids) + self.pos(positions)[None]
        if self.seg is not None and token_type_ids is not None:
            x = x + self.seg(token_type_ids)
        x = self.drop(self.emb_ln(x))
        return self.run_blocks(x, attention_mask.bool()[:, None, None, :])

    def pool(self, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """[batch, seq, hidden] -> [batch, hidden] unit vectors."""
        return pool(states, attention_mask, self.pooling)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """
        Args:
            input_ids: [batch, seq] int64.
            attention_mask: [batch, seq] int64, 1 for real tokens.

        Returns:
            [batch, hidden] L2-normalised embeddings (the exported ``embeddings`` output).
        """
        return self.pool(self.hidden_states(input_ids, attention_mask), attention_mask)


def pool(states: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Masked mean (or [CLS]) of [batch, seq, hidden] states -> [batch, hidden] unit vectors."""
    if pooling == "cls":
        pooled = states[:, 0]
    else:
        mask = attention_mask.to(states.dtype).unsqueeze(-1)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    return F.normalize(pooled, p=2.0, dim=-1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
