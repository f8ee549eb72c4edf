"""BERT-style text encoder whose forward pass returns the final, pooled, L2-normalised vector.

Pooling and normalisation live inside the model so that the exported ONNX graph emits exactly
what the edge serves; objective heads (``objectives/``) consume :meth:`Encoder.hidden_states`.

Pre-LN blocks (LayerNorm before attention/MLP, one final LayerNorm) are used instead of BERT's
post-LN because they train stably with short warmups and high learning rates, which matters for
the short runs this platform does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import TrainConfig


class SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: [batch, seq, hidden].
            keep: [batch, 1, 1, seq] bool, True where the key is a real token.

        Returns:
            [batch, seq, hidden].
        """
        batch, seq, hidden = x.shape
        q, k, v = self.qkv(x).view(batch, seq, 3, self.heads, hidden // self.heads).unbind(2)
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            attn_mask=keep,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.out(y.transpose(1, 2).reshape(batch, seq, hidden))


class Block(nn.Module):
    def __init__(self, hidden: int, heads: int, intermediate: int, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(hidden)
        self.attn = SelfAttention(hidden, heads, dropout)
        self.ln2 = nn.LayerNorm(hidden)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, intermediate),
            nn.GELU(),
            nn.Linear(intermediate, hidden),
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x), keep))
        return x + self.drop(self.mlp(self.ln2(x)))


class Encoder(nn.Module):
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
        self.blocks = nn.ModuleList(
            Block(config.hidden, config.heads, config.intermediate, config.dropout)
            for _ in range(config.layers)
        )
        self.final_ln = nn.LayerNorm(config.hidden)
        self.apply(_init_weights)

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
        keep = attention_mask.bool()[:, None, None, :]
        for block in self.blocks:
            x = block(x, keep)
        return self.final_ln(x)

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


def _init_weights(module: nn.Module) -> None:
    # BERT's truncated-normal(0.02) init; PyTorch's default Kaiming init trains worse here.
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.trunc_normal_(module.weight, std=0.02, a=-0.04, b=0.04)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
