"""What each modality supplies to fine-tuning (:class:`FinetuneHooks`), and the base version
it starts from."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from torch import nn

from ..export import ExportSpec
from .config import FinetuneConfig
from .model import Task

# Parity rows for a classifier: int8's argmax agreement gate (0.97) needs more than a handful.
PARITY_SIZES = (1, 3, 8, 16, 16, 20)


def read_base(folder: Path) -> dict[str, Any]:
    """The manifest of a downloaded base version that can be fine-tuned.

    Raises:
        ValueError: no manifest, or no PyTorch weights (``weights``) to start from.
    """
    path = folder / "manifest.json"
    if not path.is_file():
        raise ValueError(f"--init {folder}: no manifest.json; pass a version's artifact folder")
    manifest = json.loads(path.read_text())
    name = manifest.get("weights")
    if not name or not (folder / name).is_file():
        raise ValueError(
            f"--init {folder}: the version has no PyTorch weights (manifest 'weights'); fine-tune "
            "a version trained by this platform (or imported with `python -m selfsup_trainer "
            "import`), whose artifact has encoder.safetensors"
        )
    if manifest.get("head"):
        raise ValueError(
            f"--init {folder}: the version is already a fine-tuned classifier; fine-tune its "
            f"base ({manifest.get('finetuned_from')}) instead"
        )
    return manifest


class FinetuneHooks(ABC):
    """One modality's pieces of a fine-tuning run.

    ``raw`` data is what :meth:`read` returns (texts, an ImageSet, a SeriesSet): it can be split
    by row, then :meth:`prepare` turns it into what :attr:`task` batches.
    """

    task: Task

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        self.folder, self.manifest = folder, manifest

    @abstractmethod
    def encoder(self, config: FinetuneConfig) -> nn.Module:
        """The base encoder, built from the manifest's ``architecture`` with its weights."""

    @abstractmethod
    def read(self, path: Path) -> tuple[Any, list[str]]:
        """A labeled set: (raw rows, one label per row).

        Raises:
            ValueError: a row without a label (naming it), or an unreadable file.
        """

    @abstractmethod
    def subset(self, raw: Any, rows: list[int]) -> Any:
        """The raw rows at ``rows``."""

    @abstractmethod
    def prepare(self, raw: Any, config: FinetuneConfig) -> Any:
        """Raw rows -> the task's data (with ``lengths``)."""

    @abstractmethod
    def spec(self, raw_heldout: Any) -> ExportSpec:
        """The export spec (inputs, embeddings output) with held-out parity feeds."""

    def embedding_output(
        self, encoder: nn.Module, train: Any, heldout: Any, log: Any
    ) -> tuple[nn.Module | None, dict[str, Any]]:
        """A module applied to the encoder's vectors for the ``embeddings`` output (text: the
        base's postprocess refitted on the fine-tune data) and its manifest facts."""
        return None, {}

    def extra_files(self, config: FinetuneConfig, staging: Path) -> dict[str, Path]:
        """Files shipped with the graph (text: ``tokenizer.json``)."""
        return {}

    def manifest_fields(self, config: FinetuneConfig) -> dict[str, Any]:
        """Fields of the base's manifest that change (text: ``max_tokens``)."""
        return {}
