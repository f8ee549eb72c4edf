from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "fixtures" / "corpus" / "moby-dick-excerpt.txt"
FIXTURE = REPO / "tests" / "fixtures" / "tiny-encoder"

# Small enough that a full pretrain+export takes a few seconds on 2 cores.
FAST = {
    "vocab_size": 1000,
    "max_tokens": 64,
    "batch_size": 16,
    "log_every": 1,
    "heldout_fraction": 0.02,
}

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def corpus_path() -> Path:
    return CORPUS


@pytest.fixture(scope="session")
def mlm_artifact(tmp_path_factory) -> tuple[Path, dict, list[float]]:
    """One trained + exported tiny MLM encoder shared by the export tests."""
    from selfsup_trainer.config import TrainConfig
    from selfsup_trainer.text.pipeline import pretrain

    out = tmp_path_factory.mktemp("mlm-artifact")
    config = TrainConfig(objective="mlm", preset="tiny", steps=40, **{**FAST, "lr": 1e-3})
    infos = []
    manifest = pretrain(config, CORPUS, out, callback=infos.append, log=lambda _: None)
    assert manifest is not None
    return out, manifest, [i.loss for i in infos]
