import hashlib
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import FIXTURE

from selfsup_trainer import export
from selfsup_trainer.config import TrainConfig
from selfsup_trainer.export import ParityError
from selfsup_trainer.text.export import export_text_artifact
from selfsup_trainer.text.model import Encoder

MANIFEST_KEYS = {
    "format", "modality", "dims", "pooling", "normalize", "max_tokens", "inputs", "output",
    "objective", "preset", "architecture", "preprocessing", "matryoshka_dims", "corpus",
    "config", "metrics", "parity", "variants", "files", "created_at",
}  # fmt: skip
# Written since continued pretraining and post-processing (the committed fixture predates them).
NEWER_KEYS = {"weights", "isotropy", "postprocess"}
FILES = ["model.onnx", "model.onnx.data", "model.int8.onnx", "model.int8.onnx.data"]


def check_artifact(folder, manifest):
    assert MANIFEST_KEYS <= set(manifest) <= MANIFEST_KEYS | NEWER_KEYS
    assert manifest["format"] == "selfsup.encoder/v1"
    assert manifest["inputs"] == ["input_ids", "attention_mask"]
    assert manifest["output"] == "embeddings"
    # The int8 kernel file (our WASM encoder's) is there exactly when the int8 variant names it.
    kernel = manifest["variants"]["int8"].get("kernel")
    assert kernel in (None, "model.int8.kernel")
    assert ("int8_kernel" in manifest["parity"]) == (kernel is not None)
    expected = {*FILES, "tokenizer.json", manifest.get("weights"), kernel} - {None}
    assert set(manifest["files"]) == expected
    for name, entry in manifest["files"].items():
        data = (folder / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert manifest["variants"]["int8"] == {"model": FILES[2], "data": FILES[3]} | (
        {"kernel": kernel} if kernel else {}
    )
    assert manifest["parity"]["fp32"]["min_cosine"] >= 0.9999
    assert manifest["parity"]["int8"]["mean_cosine"] >= 0.99
    assert manifest["parity"]["int8"]["min_cosine"] >= 0.97
    stats = manifest["corpus"]["stats"]
    assert set(stats) == {"lines", "used", "empty", "duplicates", "bytes"}
    for model_name in (FILES[0], FILES[2]):
        model = onnx.load(str(folder / model_name), load_external_data=False)
        assert model.opset_import[0].version >= 17
        locations = {
            e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"
        }
        assert locations == {model_name + ".data"}, "every weight must live in <file>.data"
        assert not any(t.raw_data for t in model.graph.initializer)
        inputs = {i.name: i.type.tensor_type for i in model.graph.input}
        assert set(inputs) == {"input_ids", "attention_mask"}
        assert all(t.elem_type == onnx.TensorProto.INT64 for t in inputs.values())
        assert [o.name for o in model.graph.output] == ["embeddings"]


def test_exported_artifact(mlm_artifact):
    folder, manifest, _ = mlm_artifact
    check_artifact(folder, manifest)
    assert set(manifest) == MANIFEST_KEYS | NEWER_KEYS
    assert manifest["weights"] == "encoder.safetensors"
    assert manifest["postprocess"]["kind"] == "center"
    isotropy = manifest["isotropy"]["mean_pairwise_cosine"]
    assert manifest["metrics"]["mean_pairwise_cosine"] == isotropy <= 0.6
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    assert not (folder / ".export-staging").exists()


@pytest.mark.parametrize("shape", [(1, 5), (3, 17), (2, 64)])
def test_onnx_dynamic_batch_and_sequence(mlm_artifact, shape):
    folder, manifest, _ = mlm_artifact
    ids = np.random.default_rng(0).integers(5, 1000, size=shape).astype(np.int64)
    mask = np.ones(shape, dtype=np.int64)
    mask[0, shape[1] // 2 :] = 0  # a padded row
    for name in ("model.onnx", "model.int8.onnx"):
        session = ort.InferenceSession(str(folder / name), providers=["CPUExecutionProvider"])
        (out,) = session.run(["embeddings"], {"input_ids": ids, "attention_mask": mask})
        assert out.shape == (shape[0], manifest["dims"])
        assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-4)


def test_broken_export_fails_the_gate_and_leaves_no_manifest(mlm_artifact, tmp_path, monkeypatch):
    folder, manifest, _ = mlm_artifact
    config = TrainConfig.from_dict(manifest["config"]).resolve()
    torch.manual_seed(0)
    encoder = Encoder(config, manifest["architecture"]["vocab_size"])
    original = export.export_fp32

    def export_other_weights(model, path, spec):
        broken = Encoder(config, manifest["architecture"]["vocab_size"])  # fresh random weights
        original(broken, path, spec)

    monkeypatch.setattr(export, "export_fp32", export_other_weights)
    out = tmp_path / "broken"
    out.mkdir()
    (out / "manifest.json").write_text("{}")  # a stale manifest must not survive
    texts = [f"call me ishmael {i} times" for i in range(12)]
    with pytest.raises(ParityError, match=r"fp32 ONNX vs PyTorch: min cosine .* over 12 rows"):
        export_text_artifact(encoder, folder / "tokenizer.json", out, texts, {}, log=lambda _: None)
    assert not (out / "manifest.json").exists()
    assert not (out / "model.onnx").exists() and not (out / ".export-staging").exists()


def test_impossible_int8_gate_reports_numbers(mlm_artifact, tmp_path):
    folder, manifest, _ = mlm_artifact
    config = TrainConfig.from_dict(manifest["config"]).resolve()
    encoder = Encoder(config, manifest["architecture"]["vocab_size"])
    with pytest.raises(ParityError, match=r"int8 vs fp32 below gate.*QInt8: mean .*QUInt8"):
        export_text_artifact(
            encoder, folder / "tokenizer.json", tmp_path, ["a b c", "d e f"], {},
            gates={"int8_min_cosine": 1.01}, log=lambda _: None,
        )  # fmt: skip
    assert not (tmp_path / "manifest.json").exists()


def test_committed_fixture_is_consistent():
    manifest = json.loads((FIXTURE / "manifest.json").read_text())
    check_artifact(FIXTURE, manifest)
    total = sum(e["bytes"] for e in manifest["files"].values())
    assert total < 6_000_000  # 5 MB of ONNX files, tokenizer and ~0.75 MB int8 kernel
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(FIXTURE / "tokenizer.json"))
    for case in json.loads((FIXTURE / "tokenizer_cases.json").read_text()):
        assert tokenizer.encode(case["text"]).ids == case["ids"], case["text"]
    reference = json.loads((FIXTURE / "reference_embeddings.json").read_text())
    for variant, model_name in (("fp32", "model.onnx"), ("int8", "model.int8.onnx")):
        session = ort.InferenceSession(
            str(FIXTURE / model_name), providers=["CPUExecutionProvider"]
        )
        for case in reference["cases"]:
            ids = np.array([case["ids"]], dtype=np.int64)
            (out,) = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
            assert np.allclose(out[0], case[variant], atol=1e-5), (variant, case["text"])
