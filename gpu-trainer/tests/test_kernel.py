import dataclasses
import hashlib
import json
import struct

import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import CORPUS, FIXTURE
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
    read_post,
    reference_embed,
    weights_from_onnx,
)
from selfsup_trainer.text.model import Encoder
from selfsup_trainer.text.postprocess import PostProcessed, fit
from selfsup_trainer.text.weights import WEIGHTS, load_weights

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


def small_post(kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    rng = np.random.default_rng(1)
    mean = rng.normal(size=4).astype(np.float32)
    return mean, rng.normal(size=(4, 4)).astype(np.float32) if kind == "whiten" else None


@pytest.mark.parametrize(("kind", "code", "size"), [("center", 1, 736), ("whiten", 2, 800)])
def test_post_processing_is_appended_after_the_last_section(kind, code, size):
    w = small_weights()
    plain = pack_kernel(w, SMALL)
    mean, matrix = small_post(kind)
    blob = pack_kernel(w, SMALL, (mean, matrix))
    # ... final_ln 688, 704 | post_mean 720 | post_matrix 736 (whiten)
    assert len(blob) == size
    assert struct.unpack_from("<I", blob, 40)[0] == code and read_post(blob) == kind
    assert blob[:40] == plain[:40] and blob[44:720] == plain[44:]
    assert np.array_equal(np.frombuffer(blob, "<f4", 4, 720), mean)
    if matrix is not None:
        assert np.array_equal(np.frombuffer(blob, "<f4", 16, 736).reshape(4, 4), matrix)
    assert read_post(plain) == "none" and plain[40:64] == bytes(24)
    # The addendum's math on top of the plain file's vector: normalize((v - mean) @ matrix).
    for ids in ([0], [1, 0], [0, 0]):
        z = reference_embed(plain, ids) - mean
        z = z @ matrix if matrix is not None else z
        assert np.allclose(reference_embed(blob, ids), z / np.linalg.norm(z), atol=1e-6)


def test_bad_post_processing_is_named():
    w = small_weights()
    with pytest.raises(ValueError, match=r"post-processing mean has shape \[3\], expected \[4\]"):
        pack_kernel(w, SMALL, (np.zeros(3), None))
    with pytest.raises(ValueError, match=r"matrix has shape \[4, 3\], expected \[4, 4\]"):
        pack_kernel(w, SMALL, (np.zeros(4), np.zeros((4, 3))))
    blob = bytearray(pack_kernel(w, SMALL, small_post("center")))
    blob[40] = 3
    with pytest.raises(ValueError, match="post=3 at offset 40"):
        reference_embed(bytes(blob), [0])
    blob[40] = 2  # says whiten, but the matrix is missing: the file ends early
    with pytest.raises(ValueError):
        reference_embed(bytes(blob), [0])
    blob[40] = 0  # says none, but a mean follows
    with pytest.raises(ValueError, match="16 bytes after the last section"):
        reference_embed(bytes(blob), [0])


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


def padded(sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, mask) of one zero-padded batch."""
    ids = torch.zeros(len(sequences), max(map(len, sequences)), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)], mask[row, : len(seq)] = torch.tensor(seq), 1
    return ids, mask


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
    theirs = encoder(*padded(SEQUENCES)).numpy()
    cos = row_cosines(theirs, ours)
    assert cos.mean() >= 0.999 and cos.min() >= 0.99, cos
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert ours.dtype == np.float32


@pytest.mark.parametrize("kind", ["center", "whiten"])
@pytest.mark.parametrize("make", [lambda: tiny_bert("mean"), tiny_encoder])
@torch.no_grad()
def test_post_processed_reference_embed_matches_pytorch(make, kind):
    encoder = make()
    ids, mask = padded(SEQUENCES)
    # Fitted as the pipeline fits it, on the encoder's own embeddings of random documents.
    gen = torch.Generator().manual_seed(1)
    docs = torch.randint(4, 100, (64, 12), generator=gen)
    mean, matrix = fit(encoder(docs, torch.ones_like(docs)), kind)
    wrapped = PostProcessed(encoder, mean, matrix).eval()
    arch = kernel_arch(encoder)
    weights = {k: v.numpy() for k, v in encoder.state_dict().items()}
    post = (mean.numpy(), matrix.numpy() if matrix is not None else None)
    blob = pack_kernel(weights, arch, post)
    assert read_post(blob) == kind
    ours = np.stack([reference_embed(blob, s) for s in SEQUENCES])
    theirs = wrapped(ids, mask).numpy()
    cos = row_cosines(theirs, ours)
    assert cos.mean() >= 0.99 and cos.min() >= 0.97, cos
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    # Without the int8 error (fp32 weights' own vectors through the same math), it is exact.
    z = encoder(ids, mask).numpy() - post[0]
    z = z @ post[1] if post[1] is not None else z
    assert np.allclose(theirs, z / np.linalg.norm(z, axis=1, keepdims=True), atol=1e-5)


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
    # Written before the post-processing addendum: no post-processing, not a byte different.
    assert blob == committed and read_post(blob) == "none"
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


def assert_kernel_serves_the_graph(folder, texts: list[str]) -> None:
    """The kernel file embeds each text as the fp32 graph beside it does."""
    blob = (folder / KERNEL_FILE).read_bytes()
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    for text in texts:
        ids = np.array([tokenizer.encode(text).ids], np.int64)
        (fp32,) = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
        assert row_cosines(fp32, reference_embed(blob, ids[0].tolist())[None])[0] >= 0.97


def assert_kernel_listed(out: dict, folder, rows: int) -> str:
    """The manifest names the kernel file and its gated parity; returns its post-processing."""
    assert out["variants"]["int8"]["kernel"] == KERNEL_FILE
    blob = (folder / KERNEL_FILE).read_bytes()
    assert out["files"][KERNEL_FILE] == {
        "sha256": hashlib.sha256(blob).hexdigest(),
        "bytes": len(blob),
    }
    parity = out["parity"]["int8_kernel"]
    assert parity["rows"] == rows and parity["min_cosine"] >= 0.97 and parity["mean_cosine"] >= 0.99
    return read_post(blob)


class Wrapped(torch.nn.Module):
    """A text encoder the kernel does not know (an unknown module around a known one)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.inner(ids, mask)


def test_trained_centred_artifact_ships_a_centred_kernel(mlm_artifact):
    folder, manifest, _ = mlm_artifact
    # A real pretrain run (tiny preset) with the text default, postprocess="center".
    assert manifest["postprocess"]["kind"] == "center"
    heldout = manifest["parity"]["int8_kernel"]["rows"]
    assert assert_kernel_listed(manifest, folder, heldout) == "center"
    blob = (folder / KERNEL_FILE).read_bytes()
    assert read_arch(blob).norm == "pre" and read_arch(blob).hidden == manifest["dims"]
    texts = [line for line in CORPUS.read_text().splitlines() if len(line) > 40][:6]
    assert_kernel_serves_the_graph(folder, texts)


def test_export_writes_the_kernel_for_bare_and_post_processed_encoders(mlm_artifact, tmp_path):
    folder, manifest, _ = mlm_artifact
    config = TrainConfig.from_dict(manifest["config"]).resolve()
    encoder = Encoder(config, manifest["architecture"]["vocab_size"]).eval()
    load_weights(encoder, folder / WEIGHTS)  # the trained encoder, before its centering
    texts = [f"call me ishmael {i} times, said the whale" * (1 + i % 3) for i in range(12)]
    logs: list[str] = []
    out = export_text_artifact(
        encoder, folder / "tokenizer.json", tmp_path, texts, {}, log=logs.append
    )
    assert assert_kernel_listed(out, tmp_path, 12) == "none"
    assert any(line.startswith("parity int8 kernel") for line in logs)
    assert_kernel_serves_the_graph(tmp_path, texts[:3])

    # Whitened, fitted on embeddings of the corpus's lines as the pipeline fits it.
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    lines = [line for line in CORPUS.read_text().splitlines() if line.strip()]
    with torch.no_grad():
        ids = [tokenizer.encode(t).ids[:64] for t in lines]
        sample = torch.cat([encoder(*padded(ids[i : i + 64])) for i in range(0, len(ids), 64)])
    whitened = PostProcessed(encoder, *fit(sample, "whiten")).eval()
    out = export_text_artifact(whitened, folder / "tokenizer.json", tmp_path, texts, {})
    assert assert_kernel_listed(out, tmp_path, 12) == "whiten"
    assert_kernel_serves_the_graph(tmp_path, texts[:3])

    # Re-exported as something the kernel cannot run: the older kernel must not stay behind.
    other = PostProcessed(Wrapped(encoder), torch.full((config.hidden,), 0.01), None)
    logs.clear()
    out = export_text_artifact(
        other, folder / "tokenizer.json", tmp_path, texts, {}, log=logs.append
    )
    assert KERNEL_FILE not in out["files"] and "int8_kernel" not in out["parity"]
    assert "kernel" not in out["variants"]["int8"]
    assert not (tmp_path / KERNEL_FILE).exists()
    assert any("Wrapped is not a BERT/text encoder" in line for line in logs)
