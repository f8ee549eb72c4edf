"""The pre-LN Transformer block stack every modality's Transformer encoder runs.

Pre-LN blocks (LayerNorm before attention/MLP, one final LayerNorm) are used instead of BERT's
post-LN because they train stably with short warmups and high learning rates, which matters for
the short runs this platform does. The text encoder, the ViT and the series patch Transformer
differ only in how they embed their input and pool; :class:`BlockStack` is what they share.
Attribute names (``blocks``, ``final_ln``) are the ones checkpoints and ``encoder.safetensors``
files already use, so the mixin changes no weight name.
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


class BlockStack(nn.Module):
    """Mixin: ``config.layers`` pre-LN :class:`Block` s plus a final LayerNorm.

    Subclasses call :meth:`init_stack` in ``__init__`` (after their embeddings, so the
    truncated-normal init covers those too) and :meth:`run_blocks` in their forward.
    """

    blocks: nn.ModuleList
    final_ln: nn.LayerNorm

    def init_stack(self, config: TrainConfig) -> None:
        assert config.hidden and config.layers and config.heads and config.intermediate
        self.blocks = nn.ModuleList(
            Block(config.hidden, config.heads, config.intermediate, config.dropout)
            for _ in range(config.layers)
        )
        self.final_ln = nn.LayerNorm(config.hidden)
        self.apply(init_weights)

    def run_blocks(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        """[batch, seq, hidden] -> final-LayerNorm states; ``keep`` [batch, 1, 1, seq] bool
        marks real keys (None: attend everywhere)."""
        for block in self.blocks:
            x = block(x, keep)
        return self.final_ln(x)


def init_weights(module: nn.Module) -> None:
    # BERT's truncated-normal(0.02) init; PyTorch's default Kaiming init trains worse here.
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.trunc_normal_(module.weight, std=0.02, a=-0.04, b=0.04)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
