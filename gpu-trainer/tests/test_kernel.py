import dataclasses
import hashlib
import json
import struct

import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import FIXTURE
from tokenizers import Tokenizer

from selfsup_trainer.config import TrainConfig
from selfsup_trainer.export import row_cosines
from selfsup_trainer.text.bert import BertEncoder, BertShape
from selfsup_trainer.text.export import export_text_artifact, kernel_arch
from selfsup_trainer.text.kernel import (
    KERNEL_FILE,
    KernelArch,
    kernel_arch_from_manifest,
    pack_kernel,
    quantize_rows,
    read_arch,
    reference_embed,
    weights_from_onnx,
)
from selfsup_trainer.text.model import Encoder
from selfsup_trainer.text.postprocess import PostProcessed

# One pre-LN layer, hidden 4, intermediate 8: every section's offset is hand-computable.
SMALL = KernelArch(1, 4, 1, 8, 2, 2, norm="pre", pooling="mean", eps=1e-5)


def small_weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    w = {
        "tok.weight": rng.normal(size=(2, 4)),
        "pos.weight": rng.normal(size=(2, 4)),
        "blocks.0.attn.qkv.weight": rng.normal(size=(12, 4)),
        "blocks.0.attn.qkv.bias": rng.normal(size=12),
        "blocks.0.attn.out.weight": rng.normal(size=(4, 4)),
        "blocks.0.attn.out.bias": rng.normal(size=4),
        "blocks.0.mlp.0.weight": rng.normal(size=(8, 4)),
        "blocks.0.mlp.0.bias": rng.normal(size=8),
        # q[o, k] = 10 o + k with a 127 in the last column, so the scale is exactly 1.
        "blocks.0.mlp.2.weight": np.array(
            [[10 * o + k for k in range(7)] + [127] for o in range(4)]
        ),
        "blocks.0.mlp.2.bias": np.array([1.5, -2.0, 0.0, 3.0]),
    }
    for ln in ("emb_ln", "blocks.0.ln1", "blocks.0.ln2", "final_ln"):
        w[f"{ln}.weight"], w[f"{ln}.bias"] = rng.normal(size=4), rng.normal(size=4)
    return {k: v.astype(np.float32) for k, v in w.items()}


def test_header_and_hand_checked_linear_layout():
    w = small_weights()
    blob = pack_kernel(w, SMALL)
    # header 64 | word_q 64 | word_scale 80 | pos 96 | emb_ln 128, 144 | qkv 160..352 |
    # attn_out 352..416 | ln1 416, 432 | ffn1 448..576 | ffn2 576..656 | ln2 656, 672 |
    # final_ln 688, 704
    assert len(blob) == 720
    assert blob[:4] == b"SSK1"
    assert struct.unpack_from("<8I", blob, 4) == (1, 4, 1, 8, 2, 2, 1, 0)
    assert struct.unpack_from("<f", blob, 36)[0] == np.float32(1e-5)
    assert blob[40:64] == bytes(24)
    assert read_arch(blob) == dataclasses.replace(SMALL, eps=float(np.float32(1e-5)))
    packed = np.frombuffer(blob, np.int8, 32, 576)
    assert packed[:16].tolist() == [0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23, 30, 31, 32, 33]
    assert packed[16:].tolist() == [4, 5, 6, 127, 14, 15, 16, 127, 24, 25, 26, 127, 34, 35, 36, 127]
    assert np.frombuffer(blob, "<f4", 4, 608).tolist() == [1.0] * 4  # scales
    assert np.frombuffer(blob, "<i4", 4, 624).tolist() == [70 * o + 21 + 127 for o in range(4)]
    assert np.frombuffer(blob, "<f4", 4, 640).tolist() == [1.5, -2.0, 0.0, 3.0]
    assert np.array_equal(np.frombuffer(blob, "<f4", 8, 96).reshape(2, 4), w["pos.weight"])
    assert np.array_equal(np.frombuffer(blob, "<f4", 4, 704), w["final_ln.bias"])
    q, s = quantize_rows(w["tok.weight"])
    assert np.array_equal(np.frombuffer(blob, np.int8, 8, 64).reshape(2, 4), q)
    assert np.array_equal(np.frombuffer(blob, "<f4", 2, 80), s)
    assert np.all(np.abs(q).max(axis=1) == 127)


def test_quantize_rows_scale_rounding_and_zero_rows():
    q, s = quantize_rows(np.array([[0.5, -1.0, 0.25, 0.0], [0, 0, 0, 0]], np.float32))
    assert q.tolist() == [[64, -127, 32, 0], [0, 0, 0, 0]]
    assert s.tolist() == [np.float32(1.0) / np.float32(127), 1.0]


def test_bert_folds_segment_zero_into_positions():
    shape = BertShape(layers=1, hidden=8, heads=2, intermediate=16, vocab_size=5, max_position=3)
    w = {k: v.numpy() for k, v in BertEncoder(shape).state_dict().items()}
    arch = KernelArch(1, 8, 2, 16, 5, 3, norm="post", eps=1e-12)
    blob = pack_kernel(w, arch)
    # header 64 | word_q 64..104 | word_scale 112..132 | pos 144
    pos = np.frombuffer(blob, "<f4", 24, 144).reshape(3, 8)
    expected = (
        w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]
    )
    assert np.array_equal(pos, expected)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden": 6, "heads": 2}, "multiples of 4"),
        ({"intermediate": 10}, "multiples of 4"),
        ({"heads": 3}, "not a multiple of heads"),
        ({"norm": "sandwich"}, "norm='sandwich'"),
        ({"pooling": "max"}, "pooling='max'"),
        ({"layers": 0}, "layers=0"),
    ],
)
def test_impossible_architectures_are_named(change, message):
    arch = KernelArch(**{**SMALL.__dict__, **change})
    with pytest.raises(ValueError, match=message):
        pack_kernel(small_weights(), arch)


def test_missing_and_misshapen_weights_are_named():
    w = small_weights()
    del w["blocks.0.mlp.2.bias"]
    with pytest.raises(ValueError, match=r"missing weights blocks\.0\.mlp\.2\.bias"):
        pack_kernel(w, SMALL)
    w = small_weights()
    w["pos.weight"] = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"pos\.weight has shape \[3, 4\], expected \[2, 4\]"):
        pack_kernel(w, SMALL)
    with pytest.raises(ValueError, match=r"post-LN names\): missing weights embeddings\.word"):
        pack_kernel(small_weights(), KernelArch(**{**SMALL.__dict__, "norm": "post"}))


def test_reference_embed_rejects_bad_input():
    blob = pack_kernel(small_weights(), SMALL)
    with pytest.raises(ValueError, match="magic"):
        reference_embed(b"ONNX" + blob[4:], [0])
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        reference_embed(blob, [0, 2])
    with pytest.raises(ValueError, match=r"needs 1\.\.2"):
        reference_embed(blob, [0, 1, 0])
    with pytest.raises(ValueError, match=r"needs 1\.\.2"):
        reference_embed(blob, [])


def tiny_bert(pooling: str) -> BertEncoder:
    torch.manual_seed(0)
    shape = BertShape(
        layers=2, hidden=32, heads=4, intermediate=64, vocab_size=100, max_position=40
    )
    return BertEncoder(shape, pooling=pooling).eval()


def tiny_encoder() -> Encoder:
    torch.manual_seed(0)
    config = TrainConfig(hidden=32, layers=2, heads=4, intermediate=64, max_tokens=40, steps=1)
    return Encoder(config, vocab_size=100).eval()


SEQUENCES = [[2, 7, 9, 3], [2, 50, 60, 70, 80, 90, 3] * 5, [2, 3], [5], list(range(10, 50))]


@pytest.mark.parametrize(
    "make", [lambda: tiny_bert("mean"), lambda: tiny_bert("cls"), tiny_encoder]
)
@torch.no_grad()
def test_reference_embed_matches_pytorch(make):
    encoder = make()
    arch = kernel_arch(encoder)
    assert arch is not None and arch.norm == ("post" if isinstance(encoder, BertEncoder) else "pre")
    weights = {k: v.numpy() for k, v in encoder.state_dict().items()}
    blob = pack_kernel(weights, arch)
    ours = np.stack([reference_embed(blob, s) for s in SEQUENCES])
    # PyTorch embeds them as one padded batch; the kernel one sequence at a time.
    width = max(map(len, SEQUENCES))
    ids = torch.zeros(len(SEQUENCES), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(SEQUENCES):
        ids[row, : len(seq)], mask[row, : len(seq)] = torch.tensor(seq), 1
    theirs = encoder(ids, mask).numpy()
    cos = row_cosines(theirs, ours)
    assert cos.mean() >= 0.999 and cos.min() >= 0.99, cos
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert ours.dtype == np.float32


def test_reference_embed_is_independent_of_other_sequences():
    blob = pack_kernel(
        {k: v.numpy() for k, v in tiny_bert("mean").state_dict().items()},
        kernel_arch(tiny_bert("mean")),
    )
    alone = reference_embed(blob, SEQUENCES[0])
    for other in SEQUENCES[1:]:
        reference_embed(blob, other)
        assert np.array_equal(reference_embed(blob, SEQUENCES[0]), alone)


def test_kernel_arch_from_manifest():
    fixture = json.loads((FIXTURE / "manifest.json").read_text())
    arch = kernel_arch_from_manifest(fixture)
    assert arch == KernelArch(2, 128, 2, 512, 2000, 128, norm="pre", pooling="mean", eps=1e-5)
    bert = {
        "modality": "text",
        "pooling": "cls",
        "architecture": BertShape(6, 384, 12, 1536, 30522, 512).to_manifest(),
    }
    assert kernel_arch_from_manifest(bert) == KernelArch(
        6, 384, 12, 1536, 30522, 512, "post", "cls", 1e-12
    )
    assert kernel_arch_from_manifest({"modality": "image", "architecture": {"kind": "vit"}}) is None
    assert kernel_arch_from_manifest({"modality": "text", "architecture": {"kind": "gpt"}}) is None


def test_fixture_onnx_weights_give_the_committed_kernel():
    manifest = json.loads((FIXTURE / "manifest.json").read_text())
    blob = pack_kernel(
        weights_from_onnx(FIXTURE / "model.onnx"), kernel_arch_from_manifest(manifest)
    )
    committed = (FIXTURE / KERNEL_FILE).read_bytes()
    assert blob == committed
    assert manifest["variants"]["int8"]["kernel"] == KERNEL_FILE
    assert manifest["files"][KERNEL_FILE] == {
        "sha256": hashlib.sha256(blob).hexdigest(),
        "bytes": len(blob),
    }
    cases = json.loads((FIXTURE / "reference_embeddings.json").read_text())["cases"]
    ours = np.stack([reference_embed(blob, c["ids"]) for c in cases])
    cos = row_cosines(np.array([c["fp32"] for c in cases]), ours)
    assert cos.mean() >= 0.99 and cos.min() >= 0.97
    assert np.allclose(ours, [c["int8_kernel"] for c in cases], atol=1e-6)
    parity = manifest["parity"]["int8_kernel"]
    assert parity["rows"] == len(cases) and parity["min_cosine"] == pytest.approx(cos.min())


def test_export_writes_the_kernel_only_for_a_bare_encoder(mlm_artifact, tmp_path):
    folder, manifest, _ = mlm_artifact
    # The shared artifact is centred (postprocess), which kernel format v1 cannot serve.
    assert KERNEL_FILE not in manifest["files"] and "int8_kernel" not in manifest["parity"]
    assert "kernel" not in manifest["variants"]["int8"]
    config = TrainConfig.from_dict(manifest["config"]).resolve()
    torch.manual_seed(0)
    encoder = Encoder(config, manifest["architecture"]["vocab_size"])
    texts = [f"call me ishmael {i} times, said the whale" * (1 + i % 3) for i in range(12)]
    logs: list[str] = []
    out = export_text_artifact(
        encoder, folder / "tokenizer.json", tmp_path, texts, {}, log=logs.append
    )
    assert out["variants"]["int8"]["kernel"] == KERNEL_FILE
    blob = (tmp_path / KERNEL_FILE).read_bytes()
    assert out["files"][KERNEL_FILE] == {
        "sha256": hashlib.sha256(blob).hexdigest(),
        "bytes": len(blob),
    }
    parity = out["parity"]["int8_kernel"]
    assert parity["rows"] == 12 and parity["min_cosine"] >= 0.97 and parity["mean_cosine"] >= 0.99
    assert any(line.startswith("parity int8 kernel") for line in logs)
    # The file is what the fp32 graph serves, text by text.
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    for text in texts[:3]:
        ids = np.array([tokenizer.encode(text).ids], np.int64)
        (fp32,) = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
        assert row_cosines(fp32, reference_embed(blob, ids[0].tolist())[None])[0] >= 0.99

    # Re-exported centred: an older kernel must not stay behind.
    centred = PostProcessed(encoder, torch.full((config.hidden,), 0.01), None)
    logs.clear()
    out = export_text_artifact(
        centred, folder / "tokenizer.json", tmp_path, texts, {}, log=logs.append
    )
    assert KERNEL_FILE not in out["files"] and "int8_kernel" not in out["parity"]
    assert not (tmp_path / KERNEL_FILE).exists()
    assert any("PostProcessed is not a bare" in line for line in logs)
