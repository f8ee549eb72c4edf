"""``pretrain``: corpus -> tokenizer -> training -> exported artifact folder.

The corpus is streamed twice (tokenizer training, then tokenization), never held as text; only
the held-out slice (at most ``heldout_max`` documents) is kept as strings for the parity gates.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from . import postprocess
from .checkpoint import STATE_FILE
from .config import TrainConfig
from .corpus import CorpusError, CorpusStats, file_sha256, is_heldout, iter_documents
from .data import BatchStream, TokenizedCorpus
from .engine import StepInfo, train
from .export import export_text_artifact
from .objectives import Pretext, text_encoder
from .probe import probe_accuracies, read_labeled
from .runs import default_checkpoint_every, final_metrics, leave_group, start_run, total_steps_of
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


def pretrain(
    config: TrainConfig,
    data: str | Path,
    out_dir: str | Path,
    resume: str | Path | None = None,
    stop_at: int | None = None,
    tokenizer: str | Path | None = None,
    callback: Callable[[StepInfo], None] | None = None,
    log: Callable[[str], None] = print,
    default_checkpoints: int = 0,
    eval_path: Path | None = None,
    init: Path | None = None,
    init_ref: str | None = None,
) -> dict[str, Any] | None:
    """Train an encoder on ``data`` and export it to ``out_dir``.

    Args:
        config: training config (resolved here); ignored in favour of the checkpoint's on resume,
            except ``checkpoint_every``/``log_every``/``eval_every``.
        data: corpus file.
        out_dir: artifact folder (also holds ``checkpoints/``).
        resume: checkpoint folder or run folder to continue from.
        stop_at: stop after this many steps without exporting (preemption drill).
        tokenizer: reuse this tokenizer.json instead of training one (the upstream trainer is
            not bit-reproducible across processes, so comparisons between runs need this).
        callback: per-step progress hook.
        default_checkpoints: with ``checkpoint_every`` 0, checkpoint about this many times over
            the run (its length is known only here when it is given in epochs).
        eval_path: labeled probe set (.jsonl ``{"text", "label"}``); kNN/linear probe accuracies
            of the final encoder go into the manifest's metrics.
        init: folder of a registered version (manifest.json, encoder.safetensors,
            tokenizer.json) to continue pretraining from: its architecture, tokenizer and weights
            replace the preset's and a new tokenizer (continued / domain-adaptive pretraining).
        init_ref: the version's ``name@N``, recorded in the manifest as ``init_from``.

    Returns:
        The manifest, or None when stopped early or on a non-zero DDP rank.
    """
    data, out_dir = Path(data), Path(out_dir)
    init_manifest = read_version(Path(init)) if init is not None else None
    if init_manifest is not None and resume is None:
        configure_from(config, init_manifest)
        tokenizer = Path(init) / "tokenizer.json"
    # Only rank 0 trains the tokenizer (the upstream trainer is not reproducible); the others
    # wait in the group start_run joined, then load its file.
    run = start_run(config, out_dir, resume, log)
    config, resume_state, checkpoint = run.config, run.resume_state, run.checkpoint
    rank, world, log = run.rank, run.world, run.log

    tokenizer_path = out_dir / "tokenizer.json"
    if resume_state is not None:
        if checkpoint / "tokenizer.json" != tokenizer_path:
            shutil.copy(checkpoint / "tokenizer.json", tokenizer_path)
        tokenizer = load_tokenizer(str(tokenizer_path))
    elif tokenizer is not None:
        if Path(tokenizer) != tokenizer_path:
            shutil.copy(tokenizer, tokenizer_path)
        tokenizer = load_tokenizer(str(tokenizer_path))
    else:
        if rank == 0:
            docs, _ = split_documents(data, config)
            train_tokenizer(
                docs, config.vocab_size, config.max_tokens, config.tokenizer_min_frequency
            ).save(str(tokenizer_path))
        if world > 1:
            dist.barrier()  # torchrun on one node: ranks share out_dir
        tokenizer = load_tokenizer(str(tokenizer_path))
    stats = CorpusStats()
    docs, heldout_texts = split_documents(data, config, stats)
    corpus = TokenizedCorpus.encode(tokenizer, docs)
    if len(heldout_texts) < 2:
        raise CorpusError(
            f"{data}: only {len(heldout_texts)} held-out document(s) with heldout_fraction="
            f"{config.heldout_fraction}; raise heldout_fraction or use a larger corpus"
        )
    heldout = TokenizedCorpus.encode(tokenizer, heldout_texts)
    log(
        f"corpus {data}: {stats.used} documents used ({stats.empty} empty, "
        f"{stats.duplicates} duplicates dropped), {len(corpus)} train / {len(heldout)} held out, "
        f"{corpus.num_tokens:,} train tokens, vocab {tokenizer.get_vocab_size()}"
    )
    per_epoch = BatchStream(corpus, config.batch_size, config.seed, 1).per_epoch
    total_steps = total_steps_of(config, per_epoch)
    if not config.checkpoint_every and default_checkpoints:
        config.checkpoint_every = default_checkpoint_every(total_steps, default_checkpoints)
    pretext = Pretext(config, tokenizer.get_vocab_size(), SpecialIds.of(tokenizer))
    if init_manifest is not None and resume_state is None:
        load_weights(pretext.encoder, Path(init) / init_manifest["weights"])
        log(f"continuing from {init_ref or init}: {init_manifest['architecture']}")
    result = train(
        pretext, corpus, heldout, config, total_steps, out_dir, resume_state, callback, stop_at, log
    )
    leave_group(world)
    if result.steps < total_steps or rank != 0:
        return None
    served, facts = postprocess.apply(pretext.encoder, config.postprocess, corpus, heldout, log)
    fields = {
        "modality": config.modality,
        "dims": config.hidden,
        "pooling": config.pooling,
        "normalize": True,
        "max_tokens": config.max_tokens,
        "inputs": ["input_ids", "attention_mask"],
        "output": "embeddings",
        "objective": config.objective,
        "preset": config.preset,
        "architecture": architecture_block(config, pretext.encoder, tokenizer.get_vocab_size()),
        "weights": WEIGHTS,
        **({"init_from": init_ref or str(init)} if init is not None else {}),
        **facts,
        "preprocessing": {"tokenizer": "tokenizer.json", "lowercase": True},
        "matryoshka_dims": list(config.matryoshka_dims),
        "corpus": {"sha256": file_sha256(data), "stats": stats.to_dict()},
        "config": {**config.to_dict(), "steps": total_steps},
        "metrics": {
            **final_metrics(result, "tokens_per_second"),
            "mean_pairwise_cosine": facts["isotropy"]["mean_pairwise_cosine"],
        },
    }
    if eval_path is not None:
        texts, labels = read_labeled(Path(eval_path))
        fields["metrics"].update(probe_accuracies(served, tokenizer, texts, labels))
    log("metrics: " + " ".join(f"{k} {v:.4g}" for k, v in fields["metrics"].items()))
    return export_text_artifact(
        served, tokenizer_path, out_dir, heldout_texts, fields, log=log, weights=pretext.encoder
    )


def encoder_from_checkpoint(step_dir: Path) -> tuple[torch.nn.Module, Any]:
    """Rebuild the encoder of a checkpoint on CPU (for the eval probes), with its tokenizer."""
    # weights_only=False: this is the checkpoint this process has just written.
    state = torch.load(step_dir / STATE_FILE, map_location="cpu", weights_only=False)
    config = TrainConfig.from_dict(state["config"]).resolve()
    tokenizer = load_tokenizer(str(step_dir / "tokenizer.json"))
    encoder = text_encoder(config, tokenizer.get_vocab_size())
    prefix = "encoder."
    weights = {k[len(prefix) :]: v for k, v in state["model"].items() if k.startswith(prefix)}
    encoder.load_state_dict(weights)
    return encoder, tokenizer


def checkpoint_probe(step_dir: Path, eval_path: Path) -> dict[str, float]:
    """kNN/linear probe accuracies of a checkpoint's encoder on a labeled probe set."""
    encoder, tokenizer = encoder_from_checkpoint(step_dir)
    texts, labels = read_labeled(eval_path)
    return probe_accuracies(encoder, tokenizer, texts, labels)
