"""``finetune``: a version's encoder + a linear head trained on a labeled set, exported as a new
version. Resume, seeding, the process group and the training loop are pretraining's
(:func:`selfsup_trainer.runs.start_run`, :func:`selfsup_trainer.engine.train`)."""

from __future__ import annotations

import importlib
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..batches import BatchStream
from ..contract import FINETUNE_OBJECTIVE
from ..ddp import distributed, leave_group, pick_device
from ..engine import StepInfo, train
from ..export import LOGITS, file_sha256
from ..runs import default_checkpoint_every, start_run, total_steps_of
from ..weights import WEIGHTS
from .config import FinetuneConfig
from .export import export_classifier
from .hooks import PARITY_SIZES, FinetuneHooks, read_base
from .model import Classifier, Labeled

HOOKS = {
    "text": "selfsup_trainer.text.finetune:TextFinetune",
    "image": "selfsup_trainer.vision.finetune:ImageFinetune",
    "timeseries": "selfsup_trainer.series.finetune:SeriesFinetune",
}
PARITY_ROWS = sum(PARITY_SIZES)  # what the export gates can use
# What a fine-tuned version keeps of its base's manifest (inputs, preprocessing, architecture).
KEPT = ("modality", "dims", "pooling", "normalize", "max_tokens", "inputs", "output")
KEPT += ("preset", "architecture", "preprocessing", "matryoshka_dims")


def hooks_for(folder: Path, manifest: dict[str, Any]) -> FinetuneHooks:
    modality = manifest.get("modality")
    if modality not in HOOKS:
        raise ValueError(f"--init: modality {modality!r} cannot be fine-tuned; use {list(HOOKS)}")
    module, name = HOOKS[modality].split(":")
    return getattr(importlib.import_module(module), name)(folder, manifest)


def stratified_split(labels: list[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train rows, validation rows): ``fraction`` of each class (at least one row of every
    class with two or more) held out, seeded."""
    rng = random.Random(seed)
    train, held = [], []
    for name in sorted(set(labels)):
        rows = [i for i, label in enumerate(labels) if label == name]
        rng.shuffle(rows)
        count = min(max(1, round(len(rows) * fraction)), len(rows) - 1)
        held += rows[:count]
        train += rows[count:]
    return sorted(train), sorted(held)


def class_index(labels: list[str], names: list[str], path: Path) -> np.ndarray:
    """Each label's index in ``names``.

    Raises:
        ValueError: a label the training set does not have, naming it.
    """
    unknown = sorted(set(labels) - set(names))
    if unknown:
        raise ValueError(
            f"{path}: label(s) {unknown[:5]} do not occur in the training set ({names[:10]}); "
            "use an eval set with the training set's classes"
        )
    lookup = {name: i for i, name in enumerate(names)}
    return np.array([lookup[label] for label in labels], dtype=np.int64)


def labeled_sets(
    hooks: FinetuneHooks, data: Path, eval_path: str | Path | None, config: FinetuneConfig
) -> tuple[Labeled, Labeled, list[str], Any]:
    """(train set, eval set, class names, raw rows for the parity gates): the eval set is
    ``eval_path`` or a stratified ``validation_split`` of ``data``. The parity rows are the eval
    set's; a validation split of fewer than :data:`PARITY_ROWS` is topped up with training rows
    (int8's argmax agreement gate, 0.97, fails on a single flip among 28 rows).

    Raises:
        ValueError: fewer than 2 classes, or eval labels the training set does not have.
    """
    raw, labels = hooks.read(data)
    names = sorted(set(labels))
    if len(names) < 2:
        raise ValueError(f"{data}: {len(names)} class(es); fine-tuning needs at least 2")
    if eval_path is not None:
        train_rows = list(range(len(labels)))
        raw_eval, eval_labels = hooks.read(Path(eval_path))
        raw_parity = raw_eval
    else:
        train_rows, held_rows = stratified_split(labels, config.validation_split, config.seed)
        raw_eval, eval_labels = hooks.subset(raw, held_rows), [labels[i] for i in held_rows]
        top_up = train_rows[: max(0, PARITY_ROWS - len(held_rows))]
        raw_parity = hooks.subset(raw, held_rows + top_up)
    y_train = class_index([labels[i] for i in train_rows], names, data)
    train_set = Labeled(hooks.prepare(hooks.subset(raw, train_rows), config), y_train)
    where = Path(eval_path) if eval_path is not None else data
    eval_set = Labeled(hooks.prepare(raw_eval, config), class_index(eval_labels, names, where))
    return train_set, eval_set, names, raw_parity


def describe(
    hooks: FinetuneHooks,
    config: FinetuneConfig,
    names: list[str],
    finetuned_from: str,
    data: Path,
    eval_path: str | Path | None,
) -> dict[str, Any]:
    """The manifest's fields before the postprocess facts, config and metrics: the base's
    inputs, preprocessing and architecture, then the head and the lineage."""
    return {
        **{k: hooks.manifest[k] for k in KEPT if k in hooks.manifest},
        **hooks.manifest_fields(config),
        "objective": FINETUNE_OBJECTIVE,
        "weights": WEIGHTS,
        "head": {"output": LOGITS, "labels": names, "activation": "softmax"},
        "finetuned_from": finetuned_from,
        "dataset": {
            "sha256": file_sha256(data),
            "classes": len(names),
            **({"eval_sha256": file_sha256(eval_path)} if eval_path is not None else {}),
        },
    }


def finetune(
    init: str | Path,
    config: FinetuneConfig,
    data: str | Path,
    out_dir: str | Path,
    *,
    eval_path: str | Path | None = None,
    init_ref: str | None = None,
    resume: str | Path | None = None,
    stop_at: int | None = None,
    callback: Callable[[StepInfo], Any] | None = None,
    log: Callable[[str], None] = print,
    default_checkpoints: int = 0,
) -> dict[str, Any] | None:
    """Fine-tune the version at ``init`` on the labeled set ``data`` and export it.

    Args:
        init: the base version's artifact folder (manifest.json, its ``weights``; text: its
            tokenizer.json).
        config: fine-tuning config; on resume the checkpoint's (except checkpoint/log/eval
            intervals).
        data: labeled set (text JSONL ``{"text", "label"}``, image archive with class folders or
            IDX with labels, series JSONL/CSV with ``label``).
        out_dir: artifact folder (also holds ``checkpoints/``).
        eval_path: labeled set for early stopping and metrics; without it a stratified
            ``validation_split`` of ``data``.
        init_ref: the base's ``name@N`` (the manifest's ``finetuned_from``).
        resume / stop_at / callback / log / default_checkpoints: as for pretraining.

    Returns:
        The manifest, or None when stopped early (preemption) or on a non-zero DDP rank.

    Raises:
        ValueError: a base without weights, an unlabeled set, fewer than 2 classes, bad config.
    """
    init = Path(init)
    hooks = hooks_for(init, read_base(init))
    run = start_run(config, Path(data), Path(out_dir), resume, log)
    config, log = run.config, run.log
    encoder = hooks.encoder(config)
    train_set, eval_set, names, raw_parity = labeled_sets(hooks, run.data, eval_path, config)
    per_epoch = BatchStream(train_set, config.batch_size, config.seed, 1).per_epoch
    total_steps = total_steps_of(config, per_epoch)  # type: ignore[arg-type]
    if not config.eval_every:
        config.eval_every = max(1, per_epoch // config.grad_accum)
    if not config.checkpoint_every and default_checkpoints:
        config.checkpoint_every = default_checkpoint_every(total_steps, default_checkpoints)
    log(
        f"fine-tuning {init_ref or init} on {run.data}: {len(train_set)} train / "
        f"{len(eval_set)} eval rows, {len(names)} classes, {total_steps} steps"
    )
    classifier = Classifier(config, encoder, hooks.task, names, int(hooks.manifest["dims"]))
    if run.resume_state is None:
        device = pick_device(config, distributed()[1])  # type: ignore[arg-type]
        classifier.init_head(train_set, device)
    result = train(
        classifier, train_set, eval_set, config, total_steps, run.out_dir,  # type: ignore[arg-type]
        run.resume_state, callback, stop_at, log,
    )  # fmt: skip
    leave_group(run.world)
    if (result.steps < total_steps and not result.stopped_early) or run.rank != 0:
        return None
    classifier.restore_best()
    final = classifier.evaluate(eval_set, classifier.head.linear.weight.device)
    post, facts = hooks.embedding_output(encoder, train_set.data, eval_set.data, log)
    metrics = {
        **final,
        "train_loss": float(np.mean(result.losses[-max(1, config.log_every) :])),
        "steps": result.steps,
        "best_evaluation": classifier.best_step,
        "stopped_early": float(result.stopped_early),
        "train_examples": len(train_set),
        "eval_examples": len(eval_set),
    }
    log("metrics: " + " ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    fields = {
        **describe(hooks, config, names, init_ref or str(init), run.data, eval_path),
        **facts,
        "config": {**config.to_dict(), "steps": total_steps},
        "metrics": metrics,
    }
    with tempfile.TemporaryDirectory() as tmp:
        extra = hooks.extra_files(config, Path(tmp))
        return export_classifier(
            encoder, classifier.head, post, hooks.spec(raw_parity), run.out_dir, fields, extra, log
        )
