"""Text's fine-tuning hooks: ``{"text", "label"}`` JSONL, the base's tokenizer, the base's
postprocess refitted on the fine-tune data for the ``embeddings`` output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import TrainConfig
from ..export import ExportSpec
from ..finetune.config import FinetuneConfig
from ..finetune.hooks import PARITY_SIZES, FinetuneHooks
from . import postprocess
from .data import TokenizedCorpus, pad_batch, token_units
from .export import text_spec
from .postprocess import PostProcessed
from .pretext import text_encoder
from .probe import read_labeled
from .tokenizer import load_tokenizer
from .weights import configure_from, load_weights, read_version

MAX_EXAMPLES = 1_000_000  # read_labeled's limit for a training set (probes read 2000)


class TextTask:
    """Batches of token ids, right-padded per batch."""

    unit_name = "tok"

    def collate(self, data: TokenizedCorpus, indices: np.ndarray) -> dict[str, torch.Tensor]:
        ids, mask = pad_batch([data.ids(int(i)) for i in indices])
        return {"input_ids": ids, "attention_mask": mask}

    def inputs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return batch["input_ids"], batch["attention_mask"]

    def units(self, batch: dict[str, torch.Tensor]) -> tuple[int, int, int]:
        return token_units(batch)


class TextFinetune(FinetuneHooks):
    task = TextTask()

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        super().__init__(folder, manifest)
        read_version(folder)  # a text architecture this trainer can build
        self.tokenizer = load_tokenizer(str(folder / "tokenizer.json"))

    def max_tokens(self, config: FinetuneConfig) -> int:
        base = int(self.manifest["max_tokens"])
        if config.max_tokens is not None and config.max_tokens > base:
            raise ValueError(
                f"max_tokens={config.max_tokens} exceeds the base's max_tokens={base}; use at "
                f"most {base}"
            )
        return config.max_tokens or base

    def encoder(self, config: FinetuneConfig) -> nn.Module:
        base = TrainConfig()
        configure_from(base, self.manifest)
        base.dropout = config.dropout
        self.tokenizer.enable_truncation(max_length=self.max_tokens(config))
        encoder = text_encoder(base, self.tokenizer.get_vocab_size())
        load_weights(encoder, self.folder / self.manifest["weights"])
        return encoder

    def read(self, path: Path) -> tuple[list[str], list[str]]:
        return read_labeled(path, limit=MAX_EXAMPLES)

    def subset(self, raw: list[str], rows: list[int]) -> list[str]:
        return [raw[i] for i in rows]

    def prepare(self, raw: list[str], config: FinetuneConfig) -> TokenizedCorpus:
        return TokenizedCorpus.encode(self.tokenizer, raw)

    def spec(self, raw_heldout: list[str]) -> ExportSpec:
        return text_spec(self.tokenizer, raw_heldout, PARITY_SIZES)

    def embedding_output(
        self, encoder: nn.Module, train: TokenizedCorpus, heldout: TokenizedCorpus, log: Any
    ) -> tuple[nn.Module | None, dict[str, Any]]:
        kind = (self.manifest.get("postprocess") or {}).get("kind", "none")
        served, facts = postprocess.apply(encoder, kind, train, heldout, log)
        if isinstance(served, PostProcessed):
            # The same transform, applied to vectors the graph computes once for both outputs.
            return PostProcessed(nn.Identity(), served.mean, served.matrix), facts
        return None, facts

    def extra_files(self, config: FinetuneConfig, staging: Path) -> dict[str, Path]:
        path = staging / "tokenizer.json"
        self.tokenizer.save(str(path))  # truncation = this version's max_tokens
        return {"tokenizer.json": path}

    def manifest_fields(self, config: FinetuneConfig) -> dict[str, Any]:
        return {"max_tokens": self.max_tokens(config)}
