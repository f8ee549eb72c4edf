"""One pipeline module per modality, chosen by ``config.modality``.

Each exposes ``pretrain(config, data, out_dir, resume=None, stop_at=None, callback=None,
log=print, default_checkpoints=0, eval_path=None) -> manifest | None`` and
``checkpoint_probe(step_dir, eval_path) -> {"knn_accuracy", "linear_accuracy"}``, so ``serve``
and the CLI need no per-modality code. Imported lazily: each pulls in its own dependencies.
"""

from __future__ import annotations

import importlib
from types import ModuleType

MODULES = {
    "text": "selfsup_trainer.text.pipeline",
    "image": "selfsup_trainer.vision.pipeline",
    "timeseries": "selfsup_trainer.series.pipeline",
}


def pipeline_for(modality: str) -> ModuleType:
    """The pipeline module of ``modality``.

    Raises:
        ValueError: an unknown modality, naming the known ones.
    """
    if modality not in MODULES:
        raise ValueError(f"modality={modality!r} is unknown; use one of {', '.join(MODULES)}")
    return importlib.import_module(MODULES[modality])
