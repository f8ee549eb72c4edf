"""Fine-tuning images and series (bases pretrained here write encoder.safetensors), and serve
running a ``kind: "finetune"`` claim end to end against a fake API."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest
from conftest import REPO

from selfsup_trainer import serve
from selfsup_trainer.config import TrainConfig
from selfsup_trainer.export import file_sha256
from selfsup_trainer.finetune.config import FinetuneConfig
from selfsup_trainer.finetune.run import finetune
from selfsup_trainer.vision import sample_data

SERIES_PROBE = REPO / "tests" / "fixtures" / "series" / "italy-power-probe.jsonl"


def quiet(_message: str) -> None:
    pass


@pytest.fixture(scope="module")
def digits_zip(tmp_path_factory):
    images, labels = sample_data.digits()
    keep = np.random.default_rng(0).permutation(len(images))[:300]
    path = tmp_path_factory.mktemp("digits") / "digits.zip"
    return sample_data.write_png_zip(path, images[keep], labels[keep])


def check_classifier(out, manifest, classes: int) -> None:
    assert len(manifest["head"]["labels"]) == classes
    assert manifest["weights"] == "encoder.safetensors" and "head.safetensors" in manifest["files"]
    assert manifest["parity"]["fp32"]["logits_max_abs_diff"] <= 1e-3
    session = ort.InferenceSession(str(out / "model.onnx"))
    assert [o.name for o in session.get_outputs()] == ["embeddings", "logits"]
    assert session.get_outputs()[1].shape[1] == classes


@pytest.mark.parametrize(("objective", "architecture"), [("simclr", "resnet"), ("mae", "vit")])
def test_image_versions_can_be_fine_tuned(tmp_path, digits_zip, objective, architecture):
    from selfsup_trainer.vision.pipeline import pretrain

    config = TrainConfig(
        modality="image", objective=objective, architecture=architecture, preset="tiny",
        layers=1, hidden=32, heads=2, intermediate=64, image_size=16, patch_size=4,
        batch_size=32, steps=20, lr=1e-3, log_every=1,
    )  # fmt: skip
    # 20 steps: the ResNet's BatchNorm running statistics (what the head's probe init embeds
    # with, in eval mode) must have moved off their initial values.
    base = pretrain(config, digits_zip, tmp_path / "base", log=quiet)
    assert base["weights"] == "encoder.safetensors" and "encoder.safetensors" in base["files"]
    ft = FinetuneConfig(steps=30, batch_size=32, lr=1e-3, head_lr=1e-2, eval_every=10)
    manifest = finetune(tmp_path / "base", ft, digits_zip, tmp_path / "ft", log=quiet)
    check_classifier(tmp_path / "ft", manifest, 10)
    assert manifest["preprocessing"] == base["preprocessing"]
    assert manifest["metrics"]["eval_accuracy"] > 0.3  # 10 classes: chance 0.1


def test_series_versions_can_be_fine_tuned(tmp_path):
    from selfsup_trainer.series.pipeline import pretrain

    config = TrainConfig(
        modality="timeseries", objective="masked", hidden=32, heads=2, layers=2,
        intermediate=64, batch_size=16, steps=4, lr=1e-3, log_every=1, heldout_fraction=0.1,
    )  # fmt: skip
    base = pretrain(config, SERIES_PROBE, tmp_path / "base", log=quiet)
    assert base["weights"] == "encoder.safetensors"
    ft = FinetuneConfig(steps=30, batch_size=16, lr=1e-3, head_lr=1e-2, validation_split=0.2)
    manifest = finetune(tmp_path / "base", ft, SERIES_PROBE, tmp_path / "ft", log=quiet)
    check_classifier(tmp_path / "ft", manifest, 2)
    assert manifest["metrics"]["eval_accuracy"] > 0.6  # 2 classes: chance 0.5


class FakeApi:
    """Records what serve sends; storage is a folder (uploads are copies)."""

    def __init__(self, storage):
        self.storage, self.beats, self.completed, self.failed = storage, [], None, None

    def heartbeat(self, job_id, body):
        self.beats.append(body)
        return {}

    def uploads(self, job_id, token, names, checkpoint_step=None):
        checkpoint = {"url": str(self.storage / f"checkpoint-{checkpoint_step}.tar")}
        return {
            "files": {n: {"url": str(self.storage / n)} for n in names},
            "checkpoint": checkpoint,
        }

    def complete(self, job_id, token, manifest):
        self.completed = manifest
        return True

    def fail(self, job_id, token, error, retryable, release=False):
        self.failed = error


def test_serve_runs_a_finetune_claim(mlm_artifact, tmp_path, monkeypatch):
    folder, base, _ = mlm_artifact
    data = json.loads((REPO / "tests" / "fixtures" / "probe" / "fortunes.json").read_text())
    names = [data["label_names"][y] for y in data["labels"]]
    rows = [{"text": t, "label": y} for t, y in zip(data["texts"], names, strict=True)]
    labeled = tmp_path / "fortunes.jsonl"
    labeled.write_text("".join(json.dumps(r) + "\n" for r in rows))
    files = {
        name: {"url": (folder / name).as_uri(), "sha256": file_sha256(folder / name)}
        for name in ("encoder.safetensors", "tokenizer.json")
    }
    claim = {
        "job": {
            "id": "job_ft", "kind": "finetune", "attempt": 1,
            "config": {"steps": 6, "batch_size": 16, "eval_every": 3, "head_lr": 3e-3},
        },
        "lease": {"token": "lease", "seconds": 60},
        "corpus": {"url": labeled.as_uri(), "format": "jsonl", "sha256": file_sha256(labeled)},
        "evalSet": None,
        "init": {"ref": "demo@1", "manifest": base, "files": files},
    }  # fmt: skip
    storage = tmp_path / "r2"
    storage.mkdir()
    api = FakeApi(storage)
    monkeypatch.setattr(serve, "upload", lambda url, path, **_: shutil.copy(path, url))
    runner = serve.JobRunner(api, claim, tmp_path / "work", stop=serve.threading.Event(), log=quiet)
    assert runner.run() == "succeeded", api.failed
    manifest = api.completed
    assert manifest["finetuned_from"] == "demo@1" and manifest["objective"] == "classify"
    assert manifest["head"]["labels"] == ["computers", "food", "law", "love"]
    uploaded = sorted(p.name for p in storage.iterdir() if not p.name.startswith("checkpoint-"))
    assert sorted(manifest["files"]) == uploaded
    assert any("checkpoint_sha256" in b for b in api.beats)
    evals = [b["eval"] for b in api.beats if "eval" in b]
    assert evals and set(evals[0]) == {"eval_accuracy", "eval_loss"}
    assert isinstance(FinetuneConfig.from_dict(claim["job"]["config"]), FinetuneConfig)
