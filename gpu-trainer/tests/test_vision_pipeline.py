"""Image pretrain -> export on real digits: manifest, parity gates, probes, exact resume."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from selfsup_trainer.checkpoint import find_checkpoint
from selfsup_trainer.config import TrainConfig
from selfsup_trainer.vision import sample_data
from selfsup_trainer.vision.pipeline import checkpoint_probe, pretrain
from selfsup_trainer.vision.preprocess import check_image_spec, preprocess_image


def quiet(_message: str) -> None:
    pass


@pytest.fixture(scope="module")
def digits_zip(tmp_path_factory):
    images, labels = sample_data.digits()
    keep = np.random.default_rng(0).permutation(len(images))[:400]
    path = tmp_path_factory.mktemp("digits") / "digits.zip"
    return sample_data.write_png_zip(path, images[keep], labels[keep], extra=2)


def small(objective: str, **overrides) -> TrainConfig:
    base = {
        "modality": "image",
        "objective": objective,
        "preset": "tiny",
        "layers": 1,
        "hidden": 32,
        "heads": 2,
        "intermediate": 64,
        "image_size": 16,
        "patch_size": 4,
        "batch_size": 32,
        "steps": 6,
        "lr": 1e-3,
        "log_every": 1,
        "eval_every": 3,
    }
    return TrainConfig(**{**base, **overrides})


@pytest.mark.parametrize(("objective", "architecture"), [("simclr", "resnet"), ("mae", "vit")])
def test_pretrain_exports_a_gated_artifact(tmp_path, digits_zip, objective, architecture):
    out = tmp_path / "run"
    manifest = pretrain(small(objective), digits_zip, out, log=quiet, eval_path=digits_zip)
    assert manifest == json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "selfsup.encoder/v1" and manifest["modality"] == "image"
    assert manifest["inputs"] == ["pixel_values"] and manifest["output"] == "embeddings"
    assert manifest["architecture"]["type"] == architecture and manifest["dims"] == 32
    spec = manifest["preprocessing"]
    check_image_spec(spec)  # the edge helper's own validation of the contract
    assert spec["image_size"] == 16 and spec["channels"] == 1 and spec["scale"] == 255
    assert 0.2 < spec["mean"][0] < 0.4 and spec["layout"] == "NCHW"
    parity = manifest["parity"]
    assert parity["fp32"]["rows"] == 12 and parity["int8"]["min_cosine"] > 0.97
    metrics = manifest["metrics"]
    assert metrics["steps"] == 6 and np.isfinite(metrics["heldout_loss"])
    assert 0.0 <= metrics["knn_accuracy"] <= 1.0 and 0.0 <= metrics["linear_accuracy"] <= 1.0
    if objective == "simclr":
        assert 0.0 <= metrics["alignment"] <= 4.0 and metrics["uniformity"] <= 0.0
    assert manifest["dataset"]["stats"]["images"] == 400
    assert manifest["dataset"]["stats"]["ignored"] == 2
    for name, entry in manifest["files"].items():
        assert (out / name).stat().st_size == entry["bytes"]
    # The ONNX model on the edge's preprocessing of a PNG equals the trainer's own pixel path.
    images, _ = sample_data.digits()
    png = sample_data.png_bytes(images[5])
    session = ort.InferenceSession(str(out / "model.int8.onnx"), providers=["CPUExecutionProvider"])
    out_vec = session.run(["embeddings"], {"pixel_values": preprocess_image(png, spec)[None]})[0]
    assert out_vec.shape == (1, 32)
    np.testing.assert_allclose(np.linalg.norm(out_vec), 1.0, atol=1e-4)


def test_resume_gives_identical_losses_and_checkpoints_probe(tmp_path, digits_zip):
    def run(out, **kwargs):
        infos = []
        manifest = pretrain(
            small("simclr", checkpoint_every=3), digits_zip, out, callback=infos.append,
            log=quiet, **kwargs,
        )  # fmt: skip
        return manifest, [i.loss for i in infos]

    full, losses = run(tmp_path / "full")
    stopped, first = run(tmp_path / "cut", stop_at=3)
    assert stopped is None and first == losses[:3]
    resumed, rest = run(tmp_path / "cut", resume=tmp_path / "cut")
    assert rest == losses[3:]  # bit-identical: augmentations come from the step's generator
    assert resumed is not None and resumed["metrics"]["final_loss"] == full["metrics"]["final_loss"]
    probe = checkpoint_probe(find_checkpoint(tmp_path / "cut"), digits_zip)
    assert set(probe) == {"knn_accuracy", "linear_accuracy"}


def test_probe_set_needs_class_folders(tmp_path, digits_zip):
    images, _ = sample_data.digits()
    flat = sample_data.write_png_zip(tmp_path / "flat.zip", images[:50])
    with pytest.raises(ValueError, match="50 images have no class"):
        pretrain(small("simclr", steps=1), digits_zip, tmp_path / "run", log=quiet, eval_path=flat)
