"""One pipeline module per modality, chosen by ``config.modality``.

Each exposes ``pretrain(config, data, out_dir, **options) -> manifest | None`` (the one
skeleton, :func:`selfsup_trainer.runs.pretrain`, with the modality's hooks; text adds
``tokenizer``/``init``/``init_ref``) and ``checkpoint_probe(step_dir, eval_path) ->
{"knn_accuracy", "linear_accuracy"}``, so ``serve`` and the CLI need no per-modality code.
Imported lazily: each pulls in its own dependencies.
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
