"""``python -m selfsup_trainer finetune``: the command, with a progress bar."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ..config import parse_override
from ..export import ParityError
from .config import FinetuneConfig


class ProgressBar:
    """A tqdm bar over optimizer steps showing the loss and the latest eval accuracy."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.bar = enabled, None

    def __call__(self, info: Any) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=info.total_steps, initial=info.step - 1, unit="step")
        postfix = {} if info.loss is None else {"loss": f"{info.loss:.4f}"}
        if "eval_accuracy" in info.metrics:
            postfix["eval_acc"] = f"{info.metrics['eval_accuracy']:.3f}"
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def finetune_config(args: argparse.Namespace) -> FinetuneConfig:
    from ..cli import FINETUNE_FLAGS  # the parser's table; cli imports this module lazily

    values: dict[str, Any] = {}
    for _flag, key, _kind in FINETUNE_FLAGS:
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    for text in args.set:
        key, value = parse_override(text, FinetuneConfig)
        values[key] = value
    return FinetuneConfig.from_dict(values)


def finetune_command(args: argparse.Namespace) -> int:
    from ..cli import report
    from .run import finetune

    started = time.time()
    bar = ProgressBar(enabled=not args.no_progress and sys.stderr.isatty())
    # With a bar, per-step log lines would tear it; they go above it through tqdm.write.
    log = print
    if bar.enabled:
        from tqdm import tqdm

        log = tqdm.write
    try:
        manifest = finetune(
            Path(args.init), finetune_config(args), Path(args.data), Path(args.out),
            eval_path=Path(args.eval) if args.eval else None, init_ref=args.init_ref,
            resume=args.resume, stop_at=args.stop_at, callback=bar, log=log,
        )  # fmt: skip
    except (ValueError, ParityError, FloatingPointError) as exc:
        return report(exc)
    finally:
        bar.close()
    if manifest is None:
        print(f"stopped early; resume with --resume {args.out}")
    else:
        accuracy = manifest["metrics"]["eval_accuracy"]
        print(f"wrote {args.out} in {time.time() - started:.0f}s (eval accuracy {accuracy:.4f})")
    return 0
