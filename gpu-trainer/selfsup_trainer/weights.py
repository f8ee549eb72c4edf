"""A version's PyTorch weights (``encoder.safetensors``), for every modality: written with each
exported artifact, read to continue pretraining (text's ``init_from``) or to fine-tune a version.

safetensors rather than a pickle: the file comes back from storage and must be safe to load.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

WEIGHTS = "encoder.safetensors"


def save_weights(encoder: nn.Module, path: Path) -> Path:
    """Write the encoder's parameters and buffers (not objective heads) as safetensors."""
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    save_file(state, str(path))
    return path


def load_weights(encoder: nn.Module, path: Path) -> None:
    """Load ``path`` into ``encoder``; every tensor must match by name and shape.

    Raises:
        ValueError: names or shapes differ (the file belongs to another architecture).
    """
    state = load_file(str(path))
    own = encoder.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [k for k in own.keys() & state.keys() if own[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        raise ValueError(
            f"{path.name} does not fit this encoder: missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}, shape mismatches {shapes[:5]}; continue or fine-tune only a "
            "version whose manifest architecture matches its weights"
        )
    encoder.load_state_dict(state)


@contextmanager
def staged_weights(encoder: nn.Module) -> Iterator[dict[str, Path]]:
    """``{WEIGHTS: path}`` of the encoder's weights in a temporary folder, for an exporter's
    ``extra_files``."""
    with tempfile.TemporaryDirectory() as tmp:
        yield {WEIGHTS: save_weights(encoder, Path(tmp) / WEIGHTS)}
