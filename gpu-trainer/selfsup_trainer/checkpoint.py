"""Checkpoints: everything needed so that the step after a resume has exactly the loss the
uninterrupted run had — weights, optimizer, scheduler, every RNG, the data position (the step
counter; batches are a pure function of it) and the config.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .export import file_sha256

STATE_FILE = "state.pt"


def rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(directory: Path, state: dict[str, Any], extra_files: list[Path]) -> Path:
    """Write ``directory`` atomically (a crash mid-write never leaves a half checkpoint).

    ``extra_files`` (text: the tokenizer) are copied in under their own names.
    """
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(state, tmp / STATE_FILE)
    (tmp / "config.json").write_text(json.dumps(state["config"], indent=2))
    for path in extra_files:
        shutil.copy(path, tmp / path.name)
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(tmp, directory)
    return directory


def find_checkpoint(path: str | Path) -> Path:
    """Accept a checkpoint folder or a run folder (then its latest checkpoint)."""
    path = Path(path)
    if (path / STATE_FILE).exists():
        return path
    candidates = sorted((path / "checkpoints").glob("step-*[0-9]"))
    candidates = [c for c in candidates if (c / STATE_FILE).exists()]
    if not candidates:
        raise ValueError(
            f"--resume {path}: no checkpoint found (expected {path}/{STATE_FILE} or "
            f"{path}/checkpoints/step-N/{STATE_FILE}); train with --checkpoint-every N"
        )
    return candidates[-1]


def encoder_weights(model_state: dict[str, Any]) -> dict[str, Any]:
    """The encoder's own entries of a pretext's ``state_dict`` (heads and buffers dropped)."""
    prefix = "encoder."
    return {k[len(prefix) :]: v for k, v in model_state.items() if k.startswith(prefix)}


def load_checkpoint(path: Path) -> dict[str, Any]:
    # weights_only=False (the file holds RNG tuples and numpy state) unpickles arbitrary code:
    # load only checkpoints we wrote, or, in serve, a download whose SHA-256 matched the one the
    # uploading replica declared to the API.
    return torch.load(path / STATE_FILE, map_location="cpu", weights_only=False)


def checkpoint_tar(step_dir: Path) -> tuple[Path, str, int]:
    """Pack ``run/checkpoints/step-N`` so that extracting it in ``run/`` recreates that path.

    Returns the tar with its SHA-256 and size, which the heartbeat declares so that the replica
    that resumes from it can verify its download.
    """
    out = step_dir.parent.parent / f"{step_dir.name}.tar"
    with tarfile.open(out, "w") as tar:
        tar.add(step_dir, arcname=f"checkpoints/{step_dir.name}")
    return out, file_sha256(out), out.stat().st_size


def extract_checkpoint(tar: Path, run_dir: Path) -> None:
    """Unpack a :func:`checkpoint_tar` in ``run_dir``. Only call it on a verified download."""
    with tarfile.open(tar) as t:
        t.extractall(run_dir, filter="data")
