"""Command line: ``python -m selfsup_trainer pretrain ...`` and ``... serve`` (the job loop)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from .config import OBJECTIVES, PRESETS, TrainConfig, parse_override
from .export import ParityError
from .text.corpus import CorpusError

# Flags that map 1:1 onto config keys; anything else goes through --set key=value.
FLAGS = {
    "--steps": ("steps", int),
    "--epochs": ("epochs", float),
    "--batch-size": ("batch_size", int),
    "--lr": ("lr", float),
    "--max-tokens": ("max_tokens", int),
    "--vocab-size": ("vocab_size", int),
    "--seed": ("seed", int),
    "--device": ("device", str),
    "--checkpoint-every": ("checkpoint_every", int),
    "--eval-every": ("eval_every", int),
    "--log-every": ("log_every", int),
}


FINETUNE_FLAGS = [
    ("--steps", "steps", int),
    ("--epochs", "epochs", float),
    ("--batch-size", "batch_size", int),
    ("--lr", "lr", float),
    ("--head-lr", "head_lr", float),
    ("--seed", "seed", int),
    ("--device", "device", str),
    ("--checkpoint-every", "checkpoint_every", int),
    ("--eval-every", "eval_every", int),
    ("--log-every", "log_every", int),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m selfsup_trainer",
        description="Self-supervised pretraining of text, image and time-series encoders, "
        "exported to ONNX.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    pre = sub.add_parser("pretrain", help="train an encoder on a local corpus and export it")
    pre.add_argument(
        "--data",
        required=True,
        help="text: .txt/.jsonl(.gz); image: .zip/.tar(.gz)/.idx(.gz); series: .jsonl/.csv(.gz)",
    )
    pre.add_argument("--modality", default="text", choices=list(OBJECTIVES))
    objectives = "; ".join(f"{m}: {' | '.join(o)}" for m, o in OBJECTIVES.items())
    pre.add_argument(
        "--objective", default=None, help=f"default: the modality's first. {objectives}"
    )
    pre.add_argument(
        "--eval", default=None, help="labeled probe set; its kNN/linear accuracy goes in metrics"
    )
    pre.add_argument("--preset", default="tiny", help=" | ".join(PRESETS))
    pre.add_argument("--out", required=True, help="artifact folder to write")
    for flag, (key, kind) in FLAGS.items():
        pre.add_argument(flag, dest=key, type=kind, default=None)
    pre.add_argument("--compile", action="store_true", help="torch.compile the model")
    pre.add_argument("--resume", default=None, help="checkpoint (or run folder) to continue")
    pre.add_argument("--tokenizer", default=None, help="reuse this tokenizer.json")
    pre.add_argument(
        "--init",
        default=None,
        help="text: continue pretraining an artifact folder with encoder.safetensors (e.g. one "
        "written by `import`): its architecture, tokenizer and weights; lr defaults to 1e-5",
    )
    pre.add_argument("--stop-at", type=int, default=None, help="stop after N steps, no export")
    pre.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="any config key"
    )
    add_finetune_parser(sub)
    serve = sub.add_parser(
        "serve",
        help="claim and run jobs from the API (env: SELFSUP_API_URL, SELFSUP_TRAINER_KEY)",
    )
    serve.add_argument("--api", default=os.environ.get("SELFSUP_API_URL", "http://127.0.0.1:8787"))
    serve.add_argument(
        "--name", default=os.environ.get("SELFSUP_TRAINER_NAME"), help="replica name"
    )
    serve.add_argument(
        "--work-dir",
        default=os.environ.get("SELFSUP_WORK_DIR", os.path.expanduser("~/.cache/selfsup-trainer")),
    )
    serve.add_argument("--once", action="store_true", help="exit after one job")
    imp = sub.add_parser(
        "import",
        help="export a local Hugging Face / sentence-transformers BERT folder and register it "
        "(env: SELFSUP_API_URL, SELFSUP_API_KEY)",
    )
    imp.add_argument("--from", dest="src", required=True, help="the model folder (local)")
    imp.add_argument("--name", default=None, help="model name to register; omit to only export")
    imp.add_argument("--out", default=None, help="artifact folder (default: runs/import-NAME)")
    imp.add_argument("--max-tokens", type=int, default=None, help="default: the folder's")
    imp.add_argument(
        "--postprocess",
        default="none",
        choices=["none", "center", "whiten"],
        help="center/whiten the vectors (fitted on --corpus) inside the exported graph",
    )
    imp.add_argument("--corpus", default=None, help="text corpus to fit --postprocess on")
    imp.add_argument("--api", default=os.environ.get("SELFSUP_API_URL", "http://127.0.0.1:8787"))
    return parser


def add_finetune_parser(sub: Any) -> None:
    ft = sub.add_parser(
        "finetune", help="fine-tune a version (encoder + linear head) on a labeled set"
    )
    ft.add_argument("--init", required=True, help="the base version's artifact folder")
    ft.add_argument("--data", required=True, help="labeled set (text JSONL, image archive, series)")
    ft.add_argument("--eval", default=None, help="labeled eval set (default: validation_split)")
    ft.add_argument("--out", required=True, help="artifact folder to write")
    ft.add_argument("--init-ref", default=None, help="the base's name@N (finetuned_from)")
    for flag, key, kind in FINETUNE_FLAGS:
        ft.add_argument(flag, dest=key, type=kind, default=None)
    ft.add_argument("--resume", default=None, help="checkpoint (or run folder) to continue")
    ft.add_argument("--stop-at", type=int, default=None, help="stop after N steps, no export")
    ft.add_argument("--no-progress", action="store_true", help="no progress bar")
    ft.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="any fine-tuning key"
    )


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    objective = args.objective or OBJECTIVES[args.modality][0]
    values: dict = {"modality": args.modality, "objective": objective, "preset": args.preset}
    for key, _ in FLAGS.values():
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    if args.compile:
        values["compile"] = True
    for text in args.set:
        key, value = parse_override(text)
        values[key] = value
    if "steps" not in values and "epochs" not in values and args.resume is None:
        values["epochs"] = 1.0
    return TrainConfig.from_dict(values)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        key = os.environ.get("SELFSUP_TRAINER_KEY", "")
        if not key:
            print(
                "error: set SELFSUP_TRAINER_KEY to an API key with the trainer scope",
                file=sys.stderr,
            )
            return 2
        from .serve import serve

        return serve(args.api, key, Path(args.work_dir), owner=args.name, once=args.once)
    if args.command == "import":
        return import_command(args)
    if args.command == "finetune":
        from .finetune.cli import finetune_command

        return finetune_command(args)
    from .modalities import pipeline_for  # torch import is slow; keep --help instant

    started = time.time()
    try:
        config = config_from_args(args)
        extra = {"tokenizer": args.tokenizer} if config.modality == "text" else {}
        if args.init:
            if config.modality != "text":
                raise ValueError("--init continues text encoders only")
            extra["init"] = Path(args.init)
        manifest = pipeline_for(config.modality).pretrain(
            config,
            Path(args.data),
            Path(args.out),
            resume=args.resume,
            stop_at=args.stop_at,
            eval_path=Path(args.eval) if args.eval else None,
            **extra,
        )
    except (ValueError, CorpusError, ParityError, FloatingPointError) as exc:
        return report(exc)
    if os.environ.get("RANK", "0") != "0":
        return 0
    if manifest is None:
        print(f"stopped early; resume with --resume {args.out}")
    else:
        print(f"wrote {args.out} in {time.time() - started:.0f}s")
    return 0


def report(exc: Exception) -> int:
    """Print a run's error; the exit code: 2 for bad input (config, data), 1 for a run that
    failed (a parity gate, a diverged loss)."""
    print(f"error: {exc}", file=sys.stderr)
    return 2 if isinstance(exc, ValueError | CorpusError) else 1


def import_command(args: argparse.Namespace) -> int:
    from .api_client import ApiClient, ApiError
    from .text.importer import import_folder, register

    key = os.environ.get("SELFSUP_API_KEY", "")
    if args.name and not key:
        print("error: set SELFSUP_API_KEY to a key that may import models", file=sys.stderr)
        return 2
    out = Path(args.out or f"runs/import-{args.name or Path(args.src).name}")
    try:
        import_folder(
            Path(args.src),
            out,
            max_tokens=args.max_tokens,
            kind=args.postprocess,
            corpus=Path(args.corpus) if args.corpus else None,
        )
        print(f"wrote {out}")
        if args.name:
            register(ApiClient(args.api, key), args.name, out)
    except (ValueError, ParityError) as exc:
        return report(exc)
    except (ApiError, OSError) as exc:
        print(f"error: {args.api}: {exc}", file=sys.stderr)
        return 1
    return 0
