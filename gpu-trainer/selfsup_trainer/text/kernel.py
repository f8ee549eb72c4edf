"""The int8 kernel file (``model.int8.kernel``, format v1) our WASM SIMD encoder serves.

One file holds a BERT-family text encoder: per-row int8 weights packed in 4x4 blocks for the
relaxed-SIMD dot product, plus fp32 embeddings and LayerNorms (layout and math: the format spec
the Rust crate ``kernels/`` reads). :func:`reference_embed` is the same math in numpy, read back
from the packed bytes, so the exporter can gate the file against fp32 before shipping it.
A post-processed encoder (:class:`~selfsup_trainer.text.postprocess.PostProcessed`: centred or
whitened) carries its mean and matrix after the last section (the format's post-processing
addendum); a file without them is byte for byte what format v1 wrote before the addendum.
numpy only at module level: ``bench/embeddings_make_encoder.py`` packs kernels without PyTorch.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

KERNEL_FILE = "model.int8.kernel"
MAGIC = b"SSK1"
HEADER_BYTES = 64
ALIGN = 16
NORMS = {"post": 0, "pre": 1}
POOLINGS = {"mean": 0, "cls": 1}
POSTS = {"none": 0, "center": 1, "whiten": 2}  # header offset 40


@dataclass(frozen=True)
class KernelArch:
    """Architecture numbers of the header.

    Attributes:
        norm: "post" (Hugging Face BertModel names) or "pre" (our ``model.Encoder`` names).
        pooling: "mean" (masked mean) or "cls" (first token).
        eps: LayerNorm epsilon (BERT 1e-12, our pre-LN model PyTorch's 1e-5).
    """

    layers: int
    hidden: int
    heads: int
    intermediate: int
    vocab: int
    max_position: int
    norm: str = "post"
    pooling: str = "mean"
    eps: float = 1e-12

    def check(self) -> None:
        """Raises ValueError naming the field the kernel cannot serve."""
        for name in ("layers", "hidden", "heads", "intermediate", "vocab", "max_position"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"kernel: {name}={getattr(self, name)} must be >= 1")
        if self.hidden % 4 or self.intermediate % 4:
            raise ValueError(
                f"kernel: hidden={self.hidden} and intermediate={self.intermediate} must be "
                "multiples of 4 (the SIMD blocks are 4x4)"
            )
        if self.hidden % self.heads:
            raise ValueError(
                f"kernel: hidden={self.hidden} is not a multiple of heads={self.heads}"
            )
        if self.norm not in NORMS:
            raise ValueError(f"kernel: norm={self.norm!r}; use 'post' (BERT) or 'pre' (ours)")
        if self.pooling not in POOLINGS:
            raise ValueError(f"kernel: pooling={self.pooling!r}; use 'mean' or 'cls'")


def quantize_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row symmetric int8: [rows, cols] fp32 -> (q int8 [rows, cols], scale fp32 [rows])."""
    w = np.asarray(w, dtype=np.float32)
    scale = np.abs(w).max(axis=1) / np.float32(127)
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def pack_blocks(q: np.ndarray) -> np.ndarray:
    """[out, in] int8 -> 16-byte blocks: per 4 output rows, per 4 inputs, a 4x4 row-major block."""
    out, inp = q.shape
    return q.reshape(out // 4, 4, inp // 4, 4).transpose(0, 2, 1, 3).reshape(-1)


def unpack_blocks(packed: np.ndarray, out: int, inp: int) -> np.ndarray:
    """Inverse of :func:`pack_blocks`: -> [out, in] int8."""
    return packed.reshape(out // 4, inp // 4, 4, 4).transpose(0, 2, 1, 3).reshape(out, inp)


class _Writer:
    def __init__(self) -> None:
        self.buf = bytearray()

    def put(self, arr: np.ndarray, dtype: str) -> None:
        self.buf += b"\0" * (-len(self.buf) % ALIGN)
        self.buf += np.ascontiguousarray(arr, dtype=dtype).tobytes()

    def linear(self, w: np.ndarray, b: np.ndarray) -> None:
        q, s = quantize_rows(w)
        self.put(pack_blocks(q), "i1")
        self.put(s, "<f4")
        self.put(q.astype(np.int32).sum(axis=1), "<i4")
        self.put(b, "<f4")


def _sections(weights: dict[str, Any], arch: KernelArch) -> list[tuple[str, Any]]:
    """(kind, arrays) in file order: "word" W, "pos" (W, segment W | None), "ln" (gamma, beta),
    "linear" (W, b), "qkv" [(W, b) of query, key, value]; collects every name's expected shape."""
    h, inter = arch.hidden, arch.intermediate
    expected: dict[str, tuple[int, ...]] = {}

    def get(name: str, *shape: int) -> np.ndarray:
        expected[name] = shape
        return weights.get(name)  # type: ignore[return-value]

    def ln(p: str) -> tuple[str, Any]:
        return ("ln", (get(f"{p}.weight", h), get(f"{p}.bias", h)))

    def lin(p: str, out: int, inp: int) -> tuple[str, Any]:
        return ("linear", (get(f"{p}.weight", out, inp), get(f"{p}.bias", out)))

    if arch.norm == "post":
        e = "embeddings"
        sections = [("word", get(f"{e}.word_embeddings.weight", arch.vocab, h))]
        pos = get(f"{e}.position_embeddings.weight", arch.max_position, h)
        segment = get(f"{e}.token_type_embeddings.weight", -1, h)
        sections += [("pos", (pos, segment)), ln(f"{e}.LayerNorm")]
        for i in range(arch.layers):
            p = f"encoder.layer.{i}"
            a = f"{p}.attention.self"
            parts = [lin(f"{a}.{n}", h, h)[1] for n in ("query", "key", "value")]
            sections += [("qkv", parts), lin(f"{p}.attention.output.dense", h, h)]
            sections += [
                ln(f"{p}.attention.output.LayerNorm"),
                lin(f"{p}.intermediate.dense", inter, h),
            ]
            sections += [lin(f"{p}.output.dense", h, inter), ln(f"{p}.output.LayerNorm")]
    else:
        sections = [("word", get("tok.weight", arch.vocab, h))]
        sections += [("pos", (get("pos.weight", arch.max_position, h), None)), ln("emb_ln")]
        for i in range(arch.layers):
            p = f"blocks.{i}"
            sections += [lin(f"{p}.attn.qkv", 3 * h, h), lin(f"{p}.attn.out", h, h), ln(f"{p}.ln1")]
            sections += [lin(f"{p}.mlp.0", inter, h), lin(f"{p}.mlp.2", h, inter), ln(f"{p}.ln2")]
        sections.append(ln("final_ln"))
    missing = [n for n in expected if weights.get(n) is None]
    if missing:
        raise ValueError(f"kernel ({arch.norm}-LN names): missing weights {', '.join(missing)}")
    for name, shape in expected.items():
        got = tuple(np.shape(weights[name]))
        if len(got) != len(shape) or any(s not in (-1, g) for s, g in zip(shape, got, strict=True)):
            raise ValueError(f"kernel: {name} has shape {list(got)}, expected {list(shape)}")
    return sections


def _post_arrays(post: tuple[Any, Any] | None, hidden: int) -> list[np.ndarray]:
    """[] (none), [mean] (center) or [mean, matrix] (whiten) as fp32, shapes checked."""
    if post is None:
        return []
    mean, matrix = post
    arrays = [np.asarray(mean, dtype=np.float32)]
    if matrix is not None:
        arrays.append(np.asarray(matrix, dtype=np.float32))
    expected = (("mean", (hidden,)), ("matrix", (hidden, hidden)))
    for (name, shape), arr in zip(expected, arrays, strict=False):  # center: the mean alone
        if arr.shape != shape:
            got, want = list(arr.shape), list(shape)
            raise ValueError(f"kernel: post-processing {name} has shape {got}, expected {want}")
    return arrays


def pack_kernel(
    weights: dict[str, Any], arch: KernelArch, post: tuple[Any, Any] | None = None
) -> bytes:
    """The kernel file's bytes.

    Args:
        weights: fp32 arrays (numpy or anything ``np.asarray`` takes) under Hugging Face
            BertModel names (``arch.norm == "post"``) or our pre-LN Encoder's (``"pre"``);
            Linear weights [out, in] as PyTorch stores them.
        arch: the header's numbers.
        post: a PostProcessed encoder's ``(mean [hidden], matrix [hidden, hidden] or None)``:
            centred (matrix None) or whitened; None writes a file without post-processing.

    Raises:
        ValueError: a shape the format cannot hold, or a missing or misshapen weight.
    """
    arch.check()
    sections = _sections(weights, arch)
    post_arrays = _post_arrays(post, arch.hidden)
    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    w = _Writer()
    w.buf += MAGIC + struct.pack(
        "<8IfI",
        arch.layers, arch.hidden, arch.heads, arch.intermediate, arch.vocab, arch.max_position,
        NORMS[arch.norm], POOLINGS[arch.pooling], arch.eps, len(post_arrays),
    )  # fmt: skip
    w.buf += b"\0" * (HEADER_BYTES - len(w.buf))
    for kind, value in sections:
        if kind == "word":
            q, s = quantize_rows(f32(value))
            w.put(q, "i1")
            w.put(s, "<f4")
        elif kind == "pos":
            pos, segment = value
            # BertModel adds segment 0's embedding to every token: fold it into the positions.
            w.put(f32(pos) + (f32(segment)[0] if segment is not None else 0), "<f4")
        elif kind == "ln":
            w.put(f32(value[0]), "<f4")
            w.put(f32(value[1]), "<f4")
        elif kind == "qkv":
            w.linear(
                np.concatenate([f32(p[0]) for p in value]),
                np.concatenate([f32(p[1]) for p in value]),
            )
        else:
            w.linear(f32(value[0]), f32(value[1]))
    for arr in post_arrays:  # post_mean, then post_matrix (row-major, applied as z @ M)
        w.put(arr, "<f4")
    return bytes(w.buf)


class _Reader:
    def __init__(self, blob: bytes) -> None:
        self.blob, self.at = blob, HEADER_BYTES

    def take(self, dtype: str, *shape: int) -> np.ndarray:
        self.at += -self.at % ALIGN
        count = int(np.prod(shape))
        arr = np.frombuffer(self.blob, dtype=dtype, count=count, offset=self.at)
        self.at += arr.nbytes
        return arr.reshape(shape)

    def ln(self, h: int) -> tuple[np.ndarray, np.ndarray]:
        return self.take("<f4", h), self.take("<f4", h)

    def linear(self, out: int, inp: int) -> tuple[np.ndarray, ...]:
        q = unpack_blocks(self.take("i1", out * inp), out, inp)
        return q, self.take("<f4", out), self.take("<i4", out), self.take("<f4", out)


def read_arch(blob: bytes) -> KernelArch:
    """The header of a kernel file. Raises ValueError: not a v1 kernel file."""
    if len(blob) < HEADER_BYTES or blob[:4] != MAGIC:
        raise ValueError(f"not a {KERNEL_FILE} (magic {blob[:4]!r}, expected {MAGIC!r})")
    nums = struct.unpack_from("<8I f", blob, 4)
    norm = {v: k for k, v in NORMS.items()}.get(nums[6])
    pooling = {v: k for k, v in POOLINGS.items()}.get(nums[7])
    return KernelArch(
        *nums[:6], norm=norm or str(nums[6]), pooling=pooling or str(nums[7]), eps=nums[8]
    )


def read_post(blob: bytes) -> str:
    """The header's post-processing: "none", "center" or "whiten" (ValueError: another code)."""
    read_arch(blob)
    code = struct.unpack_from("<I", blob, 40)[0]
    names = {v: k for k, v in POSTS.items()}
    if code not in names:
        raise ValueError(f"kernel: post={code} at offset 40; expected 0, 1 or 2")
    return names[code]


def _layer_norm(x: np.ndarray, ln: tuple[np.ndarray, np.ndarray], eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = np.square(x - mean).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * ln[0] + ln[1]


def _linear(x: np.ndarray, layer: tuple[np.ndarray, ...]) -> np.ndarray:
    """[n, in] fp32 -> [n, out]: each row quantized to u7 (asymmetric), exact integer dot."""
    q, s, colsum, bias = layer
    mn, mx = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    a = np.where(mx == mn, np.float32(1), (mx - mn) / np.float32(127))
    inv = np.float32(1) / a  # the kernel multiplies by 1/step rather than dividing
    u = np.clip(np.floor((x - mn) * inv + np.float32(0.5)), 0, 127).astype(np.int32)
    # float64 products of 7- and 8-bit integers sum exactly: the kernel's int32 accumulator.
    acc = (u.astype(np.float64) @ q.T.astype(np.float64)).astype(np.float32)
    return s * (a * acc + mn * colsum.astype(np.float32)) + bias


# erf(z) = z P(z²) / Q(z²) on [-4, 4] (Eigen's fast float erf, |error| <= 5e-7), highest power
# first, as the kernel computes it (kernels/src/math.rs).
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
          -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
          -1.60960333262415e-02)  # fmt: skip
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
          -7.37332916720468e-03, -1.42647390514189e-02)  # fmt: skip


def _gelu(x: np.ndarray) -> np.ndarray:
    z = np.clip(x / np.float32(np.sqrt(2.0)), np.float32(-4), np.float32(4))
    z2 = z * z
    p, q = np.float32(_ERF_P[0]), np.float32(_ERF_Q[0])
    for c in _ERF_P[1:]:
        p = p * z2 + np.float32(c)
    for c in _ERF_Q[1:]:
        q = q * z2 + np.float32(c)
    erf = p * z / q
    return x * (np.float32(0.5) + np.float32(0.5) * erf)


def _attention(qkv: np.ndarray, heads: int) -> np.ndarray:
    """[n, 3*hidden] -> [n, hidden]; each head attends over all n tokens."""
    n, h3 = qkv.shape
    hd = h3 // 3 // heads
    q, k, v = qkv.reshape(n, 3, heads, hd).transpose(1, 2, 0, 3)  # each [heads, n, hd]
    scores = q @ k.transpose(0, 2, 1) / np.float32(np.sqrt(hd))
    p = np.exp(scores - scores.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return (p @ v).transpose(1, 0, 2).reshape(n, heads * hd)


def reference_embed(blob: bytes, ids: list[int]) -> np.ndarray:
    """The kernel's math in numpy (fp32), read from the packed file.

    Args:
        blob: a kernel file's bytes.
        ids: one sequence's token ids, no padding (1 <= len <= max_position).

    Returns:
        [hidden] L2-normalised embedding; post-processed when the file says so:
        ``normalize((v - mean) @ matrix)`` of the pooled, normalised ``v``, as PostProcessed.

    Raises:
        ValueError: not a kernel file, or ids empty, too long or outside the vocabulary.
    """
    arch, post = read_arch(blob), read_post(blob)
    h, inter, eps = arch.hidden, arch.intermediate, np.float32(arch.eps)
    t = np.asarray(ids, dtype=np.int64)
    if not 1 <= len(t) <= arch.max_position:
        raise ValueError(f"kernel: {len(t)} tokens; needs 1..{arch.max_position}")
    if t.min() < 0 or t.max() >= arch.vocab:
        raise ValueError(f"kernel: token id outside 0..{arch.vocab - 1}")
    r = _Reader(blob)
    word_q, word_scale = r.take("i1", arch.vocab, h), r.take("<f4", arch.vocab)
    pos = r.take("<f4", arch.max_position, h)
    x = word_q[t].astype(np.float32) * word_scale[t][:, None] + pos[: len(t)]
    x = _layer_norm(x, r.ln(h), eps)
    for _ in range(arch.layers):
        qkv, out, ln1 = r.linear(3 * h, h), r.linear(h, h), r.ln(h)
        ffn1, ffn2, ln2 = r.linear(inter, h), r.linear(h, inter), r.ln(h)
        if arch.norm == "post":
            x = _layer_norm(x + _linear(_attention(_linear(x, qkv), arch.heads), out), ln1, eps)
            x = _layer_norm(x + _linear(_gelu(_linear(x, ffn1)), ffn2), ln2, eps)
        else:
            x = x + _linear(_attention(_linear(_layer_norm(x, ln1, eps), qkv), arch.heads), out)
            x = x + _linear(_gelu(_linear(_layer_norm(x, ln2, eps), ffn1)), ffn2)
    if arch.norm == "pre":
        x = _layer_norm(x, r.ln(h), eps)
    mean = r.take("<f4", h) if post != "none" else None
    matrix = r.take("<f4", h, h) if post == "whiten" else None
    if r.at != len(blob):
        raise ValueError(f"kernel: {len(blob) - r.at} bytes after the last section")
    v = _normalize(x[0] if arch.pooling == "cls" else x.mean(axis=0))
    if mean is not None:
        v = v - mean
        v = _normalize(v @ matrix if matrix is not None else v)
    return v.astype(np.float32)


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / max(np.linalg.norm(v), np.float32(1e-12))


def weights_from_onnx(path: str | Path) -> dict[str, np.ndarray]:
    """Named weights of our pre-LN fp32 ONNX graph (``model.onnx`` + its external data).

    The TorchScript exporter keeps biases, LayerNorms and embeddings under their PyTorch names
    but stores each Linear's weight transposed ([in, out]) as ``onnx::MatMul_NNN``; the name is
    recovered from the Add that adds the named bias to that MatMul's output.

    Returns:
        ``{pytorch name: fp32 array}``, Linear weights back as [out, in].
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    weights = {n: a.astype(np.float32) for n, a in inits.items() if not n.startswith("onnx::")}
    adds = {}
    for node in model.graph.node:
        if node.op_type == "Add":
            for i, name in enumerate(node.input):
                adds.setdefault(name, []).append(node.input[1 - i])
    for node in model.graph.node:
        if node.op_type != "MatMul" or node.input[1] not in inits or node.input[1] in weights:
            continue
        biases = [b for b in adds.get(node.output[0], []) if b.endswith(".bias") and b in weights]
        if len(biases) != 1:
            raise ValueError(f"{path}: MatMul {node.name} has no named bias to take its name from")
        weights[biases[0].removesuffix(".bias") + ".weight"] = inits[node.input[1]].T.astype(
            np.float32
        )
    return weights


def kernel_arch_from_manifest(manifest: dict[str, Any]) -> KernelArch | None:
    """The kernel architecture of a text encoder's manifest; None when another kind of model.

    ``architecture.kind`` "bert" is post-LN (eps from the block, 1e-12 by default); "transformer"
    (or no kind: manifests written before kinds existed) is our pre-LN Encoder with eps 1e-5.
    """
    arch = manifest.get("architecture") or {}
    kind = arch.get("kind", "transformer")
    if manifest.get("modality") != "text" or kind not in ("bert", "transformer"):
        return None
    try:
        return KernelArch(
            layers=int(arch["layers"]),
            hidden=int(arch["hidden"]),
            heads=int(arch["heads"]),
            intermediate=int(arch["intermediate"]),
            vocab=int(arch["vocab_size"]),
            max_position=int(arch["max_position"]),
            norm="post" if kind == "bert" else "pre",
            pooling=manifest.get("pooling", "mean"),
            eps=float(arch.get("layer_norm_eps", 1e-12)) if kind == "bert" else 1e-5,
        )
    except (KeyError, TypeError, ValueError):
        return None
