"""BERT-family encoder (post-LN, as Hugging Face `BertModel`) for imported and continued models.

Our own text encoder (:mod:`.model`) is pre-LN; checkpoints of public encoders such as
all-MiniLM-L6-v2 are post-LN BERTs. This module mirrors ``BertModel``'s parameter names exactly,
so a ``model.safetensors`` loads with ``load_state_dict`` and the weights we save
(``encoder.safetensors``) load back into ``BertModel`` too. Its interface is the one objectives and
the exporter use: :meth:`hidden_states`, :meth:`pool`, ``forward`` -> pooled unit vectors, and the
``tok``/``pos`` embeddings (tied MLM decoder, FLOP counting).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .model import pool


@dataclass
class BertShape:
    """The architecture numbers of a BERT checkpoint (``config.json`` of ``BertModel``)."""

    layers: int
    hidden: int
    heads: int
    intermediate: int
    vocab_size: int
    max_position: int
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    @classmethod
    def from_hf_config(cls, cfg: dict[str, Any]) -> BertShape:
        """Read a Hugging Face ``config.json``.

        Raises:
            ValueError: not a BERT-family config (another model type or activation).
        """
        kind = cfg.get("model_type", "bert")
        if kind != "bert":
            raise ValueError(
                f"config.json model_type={kind!r}: only BERT-family encoders (model_type 'bert', "
                "e.g. all-MiniLM-L6-v2, bge-small, e5-small) can be imported"
            )
        act = cfg.get("hidden_act", "gelu")
        if act != "gelu":
            raise ValueError(f"config.json hidden_act={act!r}: only 'gelu' is supported")
        return cls(
            layers=int(cfg["num_hidden_layers"]),
            hidden=int(cfg["hidden_size"]),
            heads=int(cfg["num_attention_heads"]),
            intermediate=int(cfg["intermediate_size"]),
            vocab_size=int(cfg["vocab_size"]),
            max_position=int(cfg.get("max_position_embeddings", 512)),
            type_vocab_size=int(cfg.get("type_vocab_size", 2)),
            layer_norm_eps=float(cfg.get("layer_norm_eps", 1e-12)),
        )

    def to_manifest(self) -> dict[str, Any]:
        """The manifest's ``architecture`` block (``kind`` tells the trainer which class)."""
        return {"kind": "bert", **self.__dict__}

    @classmethod
    def from_manifest(cls, arch: dict[str, Any]) -> BertShape:
        fields = {k: v for k, v in arch.items() if k != "kind"}
        return cls(**fields)


class _Embeddings(nn.Module):
    def __init__(self, s: BertShape) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(s.vocab_size, s.hidden, padding_idx=0)
        self.position_embeddings = nn.Embedding(s.max_position, s.hidden)
        self.token_type_embeddings = nn.Embedding(s.type_vocab_size, s.hidden)
        self.LayerNorm = nn.LayerNorm(s.hidden, eps=s.layer_norm_eps)


class _SelfAttention(nn.Module):
    def __init__(self, s: BertShape) -> None:
        super().__init__()
        self.query = nn.Linear(s.hidden, s.hidden)
        self.key = nn.Linear(s.hidden, s.hidden)
        self.value = nn.Linear(s.hidden, s.hidden)


class _DenseNorm(nn.Module):
    def __init__(self, inp: int, out: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(inp, out)
        self.LayerNorm = nn.LayerNorm(out, eps=eps)


class _Attention(nn.Module):
    def __init__(self, s: BertShape) -> None:
        super().__init__()
        self.self = _SelfAttention(s)
        self.output = _DenseNorm(s.hidden, s.hidden, s.layer_norm_eps)


class _Intermediate(nn.Module):
    def __init__(self, s: BertShape) -> None:
        super().__init__()
        self.dense = nn.Linear(s.hidden, s.intermediate)


class _Layer(nn.Module):
    def __init__(self, s: BertShape, dropout: float) -> None:
        super().__init__()
        self.heads = s.heads
        self.attention = _Attention(s)
        self.intermediate = _Intermediate(s)
        self.output = _DenseNorm(s.intermediate, s.hidden, s.layer_norm_eps)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """[batch, seq, hidden] -> [batch, seq, hidden]; ``keep``: [batch, 1, 1, seq] bool."""
        batch, seq, hidden = x.shape
        att = self.attention.self
        q, k, v = (
            proj(x).view(batch, seq, self.heads, hidden // self.heads).transpose(1, 2)
            for proj in (att.query, att.key, att.value)
        )
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=p)
        y = self.attention.output.dense(y.transpose(1, 2).reshape(batch, seq, hidden))
        x = self.attention.output.LayerNorm(x + F.dropout(y, p, self.training))
        h = self.output.dense(F.gelu(self.intermediate.dense(x)))
        return self.output.LayerNorm(x + F.dropout(h, p, self.training))


class _Stack(nn.Module):
    def __init__(self, s: BertShape, dropout: float) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(s, dropout) for _ in range(s.layers))


class BertEncoder(nn.Module):
    """Post-LN BERT with masked mean (or CLS) pooling and L2 normalisation in ``forward``."""

    def __init__(self, shape: BertShape, pooling: str = "mean", dropout: float = 0.1) -> None:
        super().__init__()
        self.shape = shape
        self.pooling = pooling
        self.max_position = shape.max_position
        self.embeddings = _Embeddings(shape)
        self.encoder = _Stack(shape, dropout)
        self.dropout = dropout

    @property
    def tok(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    @property
    def pos(self) -> nn.Embedding:
        return self.embeddings.position_embeddings

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
            token_type_ids: [batch, seq] segment ids; all zeros when None (single sentences).

        Returns:
            [batch, seq, hidden] contextual token states.
        """
        e = self.embeddings
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = e.word_embeddings(input_ids) + e.position_embeddings(positions)[None]
        # Segment 0's embedding is added to every token, as BertModel does without token_type_ids.
        x = x + (
            e.token_type_embeddings(token_type_ids)
            if token_type_ids is not None
            else e.token_type_embeddings.weight[0]
        )
        x = F.dropout(e.LayerNorm(x), self.dropout, self.training)
        keep = attention_mask.bool()[:, None, None, :]
        for layer in self.encoder.layer:
            x = layer(x, keep)
        return x

    def pool(self, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """[batch, seq, hidden] -> [batch, hidden] unit vectors."""
        return pool(states, attention_mask, self.pooling)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """[batch, seq] ids and mask -> [batch, hidden] L2-normalised embeddings."""
        return self.pool(self.hidden_states(input_ids, attention_mask), attention_mask)


def hf_state_dict(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys of a ``BertModel`` checkpoint as :class:`BertEncoder` names them.

    Checkpoints saved from ``BertForMaskedLM`` or similar prefix everything with ``bert.``; the
    pooler (a tanh layer over [CLS] that sentence encoders do not use) is dropped.
    """
    out = {}
    for key, value in weights.items():
        key = key.removeprefix("bert.")
        if key.startswith(("pooler.", "cls.")) or key.endswith("position_ids"):
            continue
        out[key] = value
    return out
