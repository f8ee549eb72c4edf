"""Fine-tuning (issue 18): config against the contract, layer-wise lr decay and freezing, exact
resume, the two-output export's parity, early stopping, and a real labeled set (fortunes)."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import REPO
from safetensors.torch import load_file

from selfsup_trainer.checkpoint import load_checkpoint
from selfsup_trainer.contract import FINETUNE_HYPERPARAMETERS
from selfsup_trainer.finetune.config import FinetuneConfig
from selfsup_trainer.finetune.hooks import read_base
from selfsup_trainer.finetune.model import Classifier, Labeled, depth_of
from selfsup_trainer.finetune.run import finetune, hooks_for, stratified_split
from selfsup_trainer.text.export import parity_batches

FORTUNES = REPO / "tests" / "fixtures" / "probe" / "fortunes.json"


def quiet(_message: str) -> None:
    pass


@pytest.fixture(scope="module")
def fortunes(tmp_path_factory):
    """The fortunes probe set's train/test splits as labeled JSONL (4 classes, 288 / 72)."""
    data = json.loads(FORTUNES.read_text())
    folder = tmp_path_factory.mktemp("fortunes")
    for split in ("train", "test"):
        rows = [
            {"text": data["texts"][i], "label": data["label_names"][data["labels"][i]]}
            for i in data[f"{split}_idx"]
        ]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder / "train.jsonl", folder / "test.jsonl"


def config(**overrides) -> FinetuneConfig:
    base = {"batch_size": 16, "lr": 1e-3, "head_lr": 3e-3, "log_every": 1, "device": "cpu"}
    return FinetuneConfig(**{**base, **overrides})


def test_config_fields_and_defaults_are_the_contracts():
    fields = {f.name: f for f in dataclasses.fields(FinetuneConfig)}
    for key, schema in FINETUNE_HYPERPARAMETERS.items():
        assert key in fields, key
        if "default" in schema:
            assert fields[key].default == schema["default"], key
    with pytest.raises(ValueError, match=r"unknown fine-tuning key\(s\) \['lr_decay'\]"):
        FinetuneConfig.from_dict({"lr_decay": 0.9})
    with pytest.raises(ValueError, match=r"layer_decay=1.5 must be in \(0, 1\]"):
        FinetuneConfig(layer_decay=1.5).resolve()
    with pytest.raises(ValueError, match="label_smoothing=1"):
        FinetuneConfig(label_smoothing=1.0).resolve()


def classifier(mlm_artifact, **overrides) -> Classifier:
    folder, _, _ = mlm_artifact
    hooks = hooks_for(folder, read_base(folder))
    c = config(**overrides)
    return Classifier(c, hooks.encoder(c), hooks.task, ["a", "b", "c"], 128)


def test_layerwise_lr_decay_and_freezing_follow_the_config(mlm_artifact):
    model = classifier(mlm_artifact, lr=1e-3, head_lr=1e-2, layer_decay=0.5)
    layers = model.layers
    assert layers == 2
    lrs = {g["name"]: g["lr"] for g in model.param_groups(0.01)}
    # Embeddings depth 0, blocks 1..2, the final LayerNorm 3 (= top: lr itself).
    assert lrs == {"head": 1e-2, "depth-0": 1e-3 * 0.5**3, "depth-1": 1e-3 * 0.5**2,
                   "depth-2": 1e-3 * 0.5, "depth-3": 1e-3}  # fmt: skip
    assert depth_of("encoder.tok.weight", layers) == 0
    assert depth_of("encoder.blocks.1.mlp.0.weight", layers) == 2
    assert depth_of("encoder.final_ln.weight", layers) == 3
    grouped = sum(len(g["params"]) for g in model.param_groups(0.01))
    assert grouped == len(list(model.parameters()))
    # Decay only on matrices.
    for g in model.param_groups(0.01):
        assert all(p.ndim >= 2 for p in g["params"]) == (g["weight_decay"] > 0) or not g["params"]

    frozen = classifier(mlm_artifact, freeze_layers=1)
    names = {n for n, p in frozen.named_parameters() if not p.requires_grad}
    assert "encoder.tok.weight" in names and "encoder.blocks.0.attn.qkv.weight" in names
    assert not any(n.startswith(("encoder.blocks.1.", "encoder.final_ln", "heads.")) for n in names)
    assert {g["name"] for g in frozen.param_groups(0.01)} == {"head", "depth-2", "depth-3"}

    probe = classifier(mlm_artifact, freeze_layers=5)  # more than the blocks: a linear probe
    trainable = {n for n, p in probe.named_parameters() if p.requires_grad}
    assert trainable == {"heads.classifier.linear.weight", "heads.classifier.linear.bias"}


def test_stratified_split_holds_out_every_class():
    labels = ["a"] * 20 + ["b"] * 10 + ["c"] * 2
    train, held = stratified_split(labels, 0.1, seed=0)
    assert sorted(train + held) == list(range(32))
    assert sorted(labels[i] for i in held) == ["a", "a", "b", "c"]
    assert stratified_split(labels, 0.1, seed=0) == (train, held)


def test_resume_is_exact(mlm_artifact, fortunes, tmp_path):
    """N steps in one go vs N/2, stop, resume, N/2: identical weights and early-stop state."""
    folder, _, _ = mlm_artifact
    train, test = fortunes
    c = {"steps": 6, "checkpoint_every": 3, "eval_every": 2, "early_stopping_patience": 0}
    full, cut = tmp_path / "full", tmp_path / "cut"
    finetune(folder, config(**c), train, full, eval_path=test, log=quiet)
    assert finetune(folder, config(**c), train, cut, eval_path=test, stop_at=3, log=quiet) is None
    manifest = finetune(folder, config(**c), train, cut, eval_path=test, resume=cut, log=quiet)
    assert manifest is not None
    a = load_checkpoint(full / "checkpoints" / "step-000006")
    b = load_checkpoint(cut / "checkpoints" / "step-000006")
    assert a["losses"] == b["losses"]
    for key, value in a["model"].items():
        if key.endswith("_extra_state"):
            assert value["best_step"] == b["model"][key]["best_step"]
            assert value["evals"] == b["model"][key]["evals"] == 2  # steps 2 and 4
            continue
        assert torch.equal(value, b["model"][key]), key
    for name in ("encoder.safetensors", "head.safetensors"):
        assert (full / name).read_bytes() == (cut / name).read_bytes(), name


@pytest.fixture(scope="module")
def fortunes_model(mlm_artifact, fortunes, tmp_path_factory):
    """A tiny fine-tune on the fortunes train split (test split for early stopping)."""
    folder, _, _ = mlm_artifact
    train, test = fortunes
    out = tmp_path_factory.mktemp("fortunes-ft")
    manifest = finetune(
        folder, config(epochs=4, eval_every=9), train, out, eval_path=test, init_ref="tiny@1",
        log=quiet,
    )  # fmt: skip
    return out, manifest


def test_a_tiny_finetune_on_fortunes_beats_chance(fortunes_model):
    _, manifest = fortunes_model
    assert manifest["metrics"]["eval_accuracy"] >= 0.45  # 4 balanced classes: chance 0.25
    assert manifest["head"] == {
        "output": "logits",
        "labels": ["computers", "food", "law", "love"],
        "activation": "softmax",
    }
    assert manifest["finetuned_from"] == "tiny@1" and manifest["objective"] == "classify"
    assert manifest["weights"] == "encoder.safetensors"
    assert {"head.safetensors", "encoder.safetensors", "tokenizer.json"} <= set(manifest["files"])
    assert manifest["metrics"]["train_loss"] > 0


def test_head_export_parity(fortunes_model, fortunes):
    """The exported logits are the PyTorch classifier's (rebuilt from the shipped weights)."""
    out, manifest = fortunes_model
    assert manifest["parity"]["fp32"]["logits_max_abs_diff"] <= 1e-3
    hooks = hooks_for(out, {**manifest, "head": None})
    c = config()
    model = Classifier(c, hooks.encoder(c), hooks.task, manifest["head"]["labels"], 128).eval()
    model.head.load_state_dict(load_file(str(out / "head.safetensors")))
    texts = [json.loads(line)["text"] for line in fortunes[1].read_text().splitlines()]
    batches = parity_batches(hooks.tokenizer, texts, (16, 16, 16, 24))
    fp32 = ort.InferenceSession(str(out / "model.onnx"))
    int8 = ort.InferenceSession(str(out / "model.int8.onnx"))
    agree, rows = 0, 0
    for ids, mask in batches:
        feed = {"input_ids": ids, "attention_mask": mask}
        with torch.no_grad():
            expected = model.head(model.encoder(torch.from_numpy(ids), torch.from_numpy(mask)))
        embeddings, logits = fp32.run(["embeddings", "logits"], feed)
        assert np.abs(logits - expected.numpy()).max() <= 1e-3
        assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-4)
        quantized = int8.run(["logits"], feed)[0]
        agree += int((quantized.argmax(1) == logits.argmax(1)).sum())
        rows += len(ids)
    assert agree / rows >= 0.97


def test_early_stopping_keeps_the_best_evaluations_weights(mlm_artifact, monkeypatch):
    model = classifier(mlm_artifact, early_stopping_patience=2)
    heldout = Labeled(SimpleNamespace(lengths=np.ones(4)), np.array([0, 1, 2, 0]))
    good = torch.eye(3)[[0, 1, 2, 1]] * 3  # 3 of 4 right
    # (accuracy, loss): 0.5; 0.75 (best); 0.75 at a higher loss; 0.5 -> two without improvement.
    answers = iter([torch.eye(3)[[0, 1, 0, 1]] * 3, good, good * 1.5, torch.zeros(4, 3)])
    monkeypatch.setattr(model, "predict", lambda data, device: next(answers))
    weights = []
    for _ in range(4):
        model.head.linear.bias.data += 1.0  # a different head at every evaluation
        weights.append(model.head.linear.bias.detach().clone())
        model.evaluate(heldout, torch.device("cpu"))
        assert model.should_stop() == (len(weights) == 4)
    assert model.best_step == 2
    model.restore_best()
    assert torch.equal(model.head.linear.bias, weights[1])


def test_the_engine_stops_when_asked_and_exports_the_best(
    mlm_artifact, fortunes, tmp_path, monkeypatch
):
    folder, _, _ = mlm_artifact
    train, test = fortunes
    monkeypatch.setattr(Classifier, "should_stop", lambda self: self.evals >= 2)
    c = config(steps=40, eval_every=1, checkpoint_every=10)
    manifest = finetune(folder, c, train, tmp_path / "out", eval_path=test, log=quiet)
    assert manifest["metrics"]["stopped_early"] == 1.0 and manifest["metrics"]["steps"] == 2
    # The step it stopped at is checkpointed, so a resume would not redo it.
    assert (tmp_path / "out" / "checkpoints" / "step-000002").is_dir()


def test_refuses_a_base_without_weights_and_one_class(fortunes, tmp_path, mlm_artifact):
    with pytest.raises(ValueError, match="no PyTorch weights"):
        read_base(REPO / "tests" / "fixtures" / "tiny-encoder")
    one = tmp_path / "one.jsonl"
    one.write_text("".join(json.dumps({"text": f"t {i}", "label": "x"}) + "\n" for i in range(9)))
    with pytest.raises(ValueError, match="1 class"):
        finetune(mlm_artifact[0], config(steps=1), one, tmp_path / "o", log=quiet)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no label"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: not a labeled record"):
        finetune(mlm_artifact[0], config(steps=1), bad, tmp_path / "o", log=quiet)


def test_cli_finetunes_and_reports_bad_keys(mlm_artifact, fortunes, tmp_path, capsys):
    from selfsup_trainer.cli import main

    train, test = fortunes
    common = ["finetune", "--init", str(mlm_artifact[0]), "--data", str(train)]
    code = main([*common, "--out", str(tmp_path / "o"), "--set", "lr_decay=0.5"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown config key 'lr_decay'" in err and "layer_decay" in err
    out = tmp_path / "ft"
    args = ["--eval", str(test), "--out", str(out), "--steps", "3", "--no-progress"]
    assert main([*common, *args, "--set", "freeze_layers=1", "--batch-size", "16"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["freeze_layers"] == 1 and manifest["config"]["steps"] == 3
    assert "eval accuracy" in capsys.readouterr().out


def test_the_head_starts_as_a_linear_probe_or_at_zero(mlm_artifact, fortunes):
    folder = mlm_artifact[0]
    hooks = hooks_for(folder, read_base(folder))
    raw, labels = hooks.read(fortunes[0])
    names = sorted(set(labels))
    y = np.array([names.index(label) for label in labels])
    for head_init in ("probe", "zero"):
        c = config(head_init=head_init)
        model = Classifier(c, hooks.encoder(c), hooks.task, names, 128)
        data = Labeled(hooks.prepare(raw, c), y)
        model.init_head(data)
        assert torch.allclose(
            model.head.scale, 1 / model.embed(data, np.arange(len(y)), "cpu").std(0)
        )
        train_accuracy = model.evaluate(data, torch.device("cpu"))["eval_accuracy"]
        if head_init == "zero":
            assert not model.head.linear.weight.any()
        else:
            assert train_accuracy > 0.6  # a fitted probe on its own training rows
    with pytest.raises(ValueError, match="head_init='lp'"):
        config(head_init="lp").resolve()
