"""Text's ``pretrain`` hooks: corpus -> tokenizer -> training -> exported artifact folder.

The corpus is streamed twice (tokenizer training, then tokenization), never held as text; only
the held-out slice (at most ``heldout_max`` documents) is kept as strings for the parity gates.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from .. import runs
from ..checkpoint import encoder_weights, load_checkpoint
from ..config import TrainConfig
from ..export import file_sha256
from ..objective import Pretext
from ..runs import Run
from . import postprocess
from .corpus import CorpusError, CorpusStats, is_heldout, iter_documents
from .data import TokenizedCorpus
from .export import export_text_artifact
from .pretext import TextPretext, text_encoder
from .probe import probe_accuracies, read_labeled
from .tokenizer import SpecialIds, load_tokenizer, train_tokenizer
from .weights import WEIGHTS, architecture_block, configure_from, load_weights, read_version


def split_documents(
    path: Path, config: TrainConfig, stats: CorpusStats | None = None
) -> tuple[Iterator[str], list[str]]:
    """Stream training documents; the held-out list fills as the stream is consumed.

    Held-out documents are chosen by hash (see :func:`is_heldout`) up to ``heldout_max``;
    later hash-selected documents go to training so none are wasted.
    """
    heldout: list[str] = []

    def train_docs() -> Iterator[str]:
        for text in iter_documents(path, stats):
            if len(heldout) < config.heldout_max and is_heldout(text, config.heldout_fraction):
                heldout.append(text)
            else:
                yield text

    return train_docs(), heldout


class Text(runs.Modality):
    """Text's hooks: tokenizer, tokenized corpus, (continued) encoder, postprocess, export."""

    def __init__(
        self,
        tokenizer: str | Path | None,
        init: Path | None,
        init_manifest: dict[str, Any] | None,
        init_ref: str | None,
    ) -> None:
        self.tokenizer_source = tokenizer
        self.init, self.init_manifest, self.init_ref = init, init_manifest, init_ref

    def load(self, run: Run) -> tuple[TokenizedCorpus, TokenizedCorpus]:
        config, data, log = run.config, run.data, run.log
        self.tokenizer_path = tokenizer_path = run.out_dir / "tokenizer.json"
        if run.resume_state is not None:
            assert run.checkpoint is not None
            if run.checkpoint / "tokenizer.json" != tokenizer_path:
                shutil.copy(run.checkpoint / "tokenizer.json", tokenizer_path)
        elif self.tokenizer_source is not None:
            if Path(self.tokenizer_source) != tokenizer_path:
                shutil.copy(self.tokenizer_source, tokenizer_path)
        else:
            # Only rank 0 trains the tokenizer (the upstream trainer is not reproducible); the
            # others wait in the group start_run joined, then load its file.
            if run.rank == 0:
                docs, _ = split_documents(data, config)
                train_tokenizer(
                    docs, config.vocab_size, config.max_tokens, config.tokenizer_min_frequency
                ).save(str(tokenizer_path))
            if run.world > 1:
                dist.barrier()  # torchrun on one node: ranks share out_dir
        self.tokenizer = tokenizer = load_tokenizer(str(tokenizer_path))
        self.stats = stats = CorpusStats()
        docs, self.heldout_texts = split_documents(data, config, stats)
        corpus = TokenizedCorpus.encode(tokenizer, docs)
        if len(self.heldout_texts) < 2:
            raise CorpusError(
                f"{data}: only {len(self.heldout_texts)} held-out document(s) with "
                f"heldout_fraction={config.heldout_fraction}; raise heldout_fraction or use a "
                "larger corpus"
            )
        heldout = TokenizedCorpus.encode(tokenizer, self.heldout_texts)
        log(
            f"corpus {data}: {stats.used} documents used ({stats.empty} empty, "
            f"{stats.duplicates} duplicates dropped), {len(corpus)} train / {len(heldout)} held "
            f"out, {corpus.num_tokens:,} train tokens, vocab {tokenizer.get_vocab_size()}"
        )
        self.corpus, self.heldout = corpus, heldout
        return corpus, heldout

    def build(self, run: Run) -> Pretext:
        pretext = TextPretext(
            run.config, self.tokenizer.get_vocab_size(), SpecialIds.of(self.tokenizer)
        )
        if self.init is not None and self.init_manifest is not None and run.resume_state is None:
            load_weights(pretext.encoder, self.init / self.init_manifest["weights"])
            run.log(
                f"continuing from {self.init_ref or self.init}: "
                f"{self.init_manifest['architecture']}"
            )
        return pretext

    def describe(self, run: Run, pretext: Pretext) -> dict[str, Any]:
        config = run.config
        self.served, facts = postprocess.apply(
            pretext.encoder, config.postprocess, self.corpus, self.heldout, run.log
        )
        self.isotropy = facts["isotropy"]
        vocab = self.tokenizer.get_vocab_size()
        inputs = ["input_ids", "attention_mask"]
        return {
            **runs.encoder_fields(config, config.pooling, inputs, max_tokens=config.max_tokens),
            "architecture": architecture_block(config, pretext.encoder, vocab),
            "weights": WEIGHTS,
            **({"init_from": self.init_ref or str(self.init)} if self.init is not None else {}),
            **facts,
            "preprocessing": {"tokenizer": "tokenizer.json", "lowercase": True},
            "matryoshka_dims": list(config.matryoshka_dims),
            "corpus": {"sha256": file_sha256(run.data), "stats": self.stats.to_dict()},
        }

    def extra_metrics(self) -> dict[str, float]:
        return {"mean_pairwise_cosine": self.isotropy["mean_pairwise_cosine"]}

    def probe(self, run: Run, pretext: Pretext, eval_path: Path) -> dict[str, float]:
        texts, labels = read_labeled(eval_path)
        return probe_accuracies(self.served, self.tokenizer, texts, labels)

    def export(self, run: Run, pretext: Pretext, fields: dict[str, Any]) -> dict[str, Any]:
        return export_text_artifact(
            self.served, self.tokenizer_path, run.out_dir, self.heldout_texts, fields,
            log=run.log, weights=pretext.encoder,
        )  # fmt: skip


def pretrain(
    config: TrainConfig,
    data: str | Path,
    out_dir: str | Path,
    tokenizer: str | Path | None = None,
    init: Path | None = None,
    init_ref: str | None = None,
    **options: Any,
) -> dict[str, Any] | None:
    """Train a text encoder on ``data`` and export it to ``out_dir``; ``options`` are
    :func:`runs.pretrain`'s (``eval_path``: a labeled .jsonl ``{"text", "label"}`` set).

    Args:
        tokenizer: reuse this tokenizer.json instead of training one (the upstream trainer is
            not bit-reproducible across processes, so comparisons between runs need this).
        init: folder of a registered version (manifest.json, encoder.safetensors,
            tokenizer.json) to continue pretraining from: its architecture, tokenizer and weights
            replace the preset's and a new tokenizer (continued / domain-adaptive pretraining).
        init_ref: the version's ``name@N``, recorded in the manifest as ``init_from``.

    Returns:
        The manifest, or None when stopped early or on a non-zero DDP rank.
    """
    init = Path(init) if init is not None else None
    init_manifest = read_version(init) if init is not None else None
    if init is not None and init_manifest is not None and options.get("resume") is None:
        configure_from(config, init_manifest)
        tokenizer = init / "tokenizer.json"
    hooks = Text(tokenizer, init, init_manifest, init_ref)
    return runs.pretrain(hooks, config, data, out_dir, **options)


def encoder_from_checkpoint(step_dir: Path) -> tuple[torch.nn.Module, Any]:
    """Rebuild the encoder of a checkpoint on CPU (for the eval probes), with its tokenizer."""
    state = load_checkpoint(step_dir)  # this process wrote it (or a sha-verified download)
    config = TrainConfig.from_dict(state["config"]).resolve()
    tokenizer = load_tokenizer(str(step_dir / "tokenizer.json"))
    encoder = text_encoder(config, tokenizer.get_vocab_size())
    encoder.load_state_dict(encoder_weights(state["model"]))
    return encoder, tokenizer


def checkpoint_probe(step_dir: Path, eval_path: Path) -> dict[str, float]:
    """kNN/linear probe accuracies of a checkpoint's encoder on a labeled probe set."""
    encoder, tokenizer = encoder_from_checkpoint(step_dir)
    texts, labels = read_labeled(eval_path)
    return probe_accuracies(encoder, tokenizer, texts, labels)
