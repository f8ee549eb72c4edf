"""``import``: a local Hugging Face / sentence-transformers BERT folder -> our artifact -> the API.

The folder's weights go through the same exporter and parity gates as a trained encoder (fp32 and
int8 in one version), its PyTorch weights are kept as ``encoder.safetensors`` so jobs can continue
pretraining from it (``init_from``), and the files reach storage through presigned PUTs, so the
Worker's 100 MB request limit never applies. Nothing here reaches a model hub: the folder is local.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch

from . import postprocess
from .bert import BertEncoder, BertShape, hf_state_dict
from .corpus import iter_documents
from .data import TokenizedCorpus
from .export import export_text_artifact
from .tokenizer import load_tokenizer
from .weights import WEIGHTS

# Parity and isotropy probes when no corpus is given: varied lengths, casing, punctuation and
# scripts, so the dynamic axes, padding and the tokenizer's normalizer are all exercised.
PROBE_TEXTS = [
    "Call me Ishmael.",
    "The quick brown fox jumps over the lazy dog.",
    "How do I reset my password?",
    "Résumé, naïve café — déjà vu.",
    "東京は日本の首都です。",
    "A short one.",
    "Stocks fell sharply on Tuesday after the central bank raised interest rates again.",
    "def add(a, b):\n    return a + b",
    "The patient was given 5 mg of the drug twice daily for two weeks.",
    "I loved this movie; the acting was superb and the plot kept me guessing.",
    "Terrible service. The food was cold and the waiter ignored us.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "UPPER lower MiXeD 12345 !? ... ###",
    "The committee will meet next Thursday to review the budget proposal.",
    "Water boils at 100 degrees Celsius at sea level.",
    "She sells sea shells by the sea shore.",
    "Error: connection refused while contacting the upstream server at port 8080.",
    "In 1492, Columbus sailed across the Atlantic Ocean.",
    "The team won the championship after a dramatic overtime goal.",
    "Please find attached the invoice for last month's consulting work.",
    "Quantum computers use qubits, which can be in superpositions of states.",
    "It was the best of times, it was the worst of times, it was the age of wisdom. " * 4,
    "Add two cups of flour and a pinch of salt, then stir until smooth.",
    "The new phone has a larger battery and a faster processor than last year's model.",
    "Mount Everest is the highest mountain above sea level.",
    "Why is the sky blue?",
    "The defendant pleaded not guilty to all charges.",
    "Our quarterly revenue grew by twelve percent compared to the same period last year.",
    "Birds of a feather flock together.",
    "The train to Berlin departs from platform nine at half past six.",
    "Machine learning models can overfit when the training set is small.",
    "Happy birthday! Wishing you a wonderful year ahead.",
]


def _pooling(src: Path) -> str:
    """mean or cls from sentence-transformers' ``1_Pooling/config.json`` (mean when absent)."""
    modules = src / "modules.json"
    pooling_dir = src / "1_Pooling"
    if modules.exists():
        for module in json.loads(modules.read_text()):
            if module.get("type", "").endswith("Pooling"):
                pooling_dir = src / module.get("path", "1_Pooling")
    cfg_path = pooling_dir / "config.json"
    if not cfg_path.exists():
        return "mean"
    cfg = json.loads(cfg_path.read_text())
    if cfg.get("pooling_mode_cls_token"):
        return "cls"
    if cfg.get("pooling_mode_mean_tokens", True):
        return "mean"
    modes = [k for k, v in cfg.items() if k.startswith("pooling_mode") and v]
    raise ValueError(f"{cfg_path}: pooling {modes} is not supported; mean or cls pooling are")


def _max_tokens(src: Path, shape: BertShape) -> int:
    """sentence-transformers' max_seq_length, else the tokenizer's model_max_length."""
    for name, key in (
        ("sentence_bert_config.json", "max_seq_length"),
        ("tokenizer_config.json", "model_max_length"),
    ):
        path = src / name
        if path.exists():
            value = json.loads(path.read_text()).get(key)
            if isinstance(value, int) and 0 < value <= shape.max_position:
                return value
    return shape.max_position


def _weights(src: Path) -> dict[str, torch.Tensor]:
    if (src / "model.safetensors").exists():
        from safetensors.torch import load_file

        return load_file(str(src / "model.safetensors"))
    if (src / "pytorch_model.bin").exists():
        # weights_only: a downloaded pickle must not run code.
        return torch.load(src / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise ValueError(f"{src}: no model.safetensors or pytorch_model.bin")


def load_folder(src: Path, max_tokens: int | None = None) -> tuple[BertEncoder, dict[str, Any]]:
    """Build the encoder of a local BERT folder.

    Args:
        src: folder with config.json, model.safetensors (or pytorch_model.bin), tokenizer.json
            and, for sentence-transformers, modules.json / 1_Pooling / sentence_bert_config.json.
        max_tokens: override the folder's maximum sequence length.

    Returns:
        (encoder in eval mode, facts for the manifest: pooling, max_tokens, normalize, source).

    Raises:
        ValueError: a missing file, a non-BERT architecture, or weights that do not fit.
    """
    for name in ("config.json", "tokenizer.json"):
        if not (src / name).exists():
            raise ValueError(
                f"{src}: {name} is missing; --from takes a Hugging Face / sentence-transformers "
                "folder of a BERT-family encoder (save the tokenizer with its fast tokenizer)"
            )
    shape = BertShape.from_hf_config(json.loads((src / "config.json").read_text()))
    pooling = _pooling(src)
    limit = max_tokens or _max_tokens(src, shape)
    if not 8 <= limit <= shape.max_position:
        raise ValueError(f"--max-tokens {limit} must be in [8, {shape.max_position}]")
    encoder = BertEncoder(shape, pooling)
    state = hf_state_dict(_weights(src))
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{src}: weights do not match a BertModel of {shape}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    modules = (
        json.loads((src / "modules.json").read_text()) if (src / "modules.json").exists() else []
    )
    normalized = any(m.get("type", "").endswith("Normalize") for m in modules)
    facts = {
        "pooling": pooling,
        "max_tokens": limit,
        "source_model": {"folder": src.name, "normalize": normalized},
    }
    return encoder.eval(), facts


def write_tokenizer(src: Path, dest: Path, max_tokens: int) -> Path:
    """Copy tokenizer.json with truncation at ``max_tokens`` and no stored padding (the edge
    pads each batch itself and reads the truncation length from this file)."""
    tok = json.loads((src / "tokenizer.json").read_text())
    tok["truncation"] = {
        "direction": "Right",
        "max_length": max_tokens,
        "strategy": "LongestFirst",
        "stride": 0,
    }
    tok["padding"] = None
    dest.write_text(json.dumps(tok, ensure_ascii=False))
    return dest


def import_folder(
    src: Path,
    out: Path,
    max_tokens: int | None = None,
    kind: str = "none",
    corpus: Path | None = None,
    log=print,
) -> dict[str, Any]:
    """Export a local BERT folder as a ``selfsup.encoder/v1`` artifact in ``out``.

    Args:
        src: the Hugging Face / sentence-transformers folder.
        out: artifact folder to write.
        max_tokens: override of the folder's maximum sequence length.
        kind: postprocess ("none", "center", "whiten"); the last two need ``corpus``.
        corpus: text corpus (.txt/.jsonl) to fit the postprocess on and to measure isotropy.

    Returns:
        The written manifest.
    """
    encoder, facts = load_folder(src, max_tokens)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tok_path = write_tokenizer(src, Path(tmp) / "tokenizer.json", facts["max_tokens"])
        tokenizer = load_tokenizer(str(tok_path))
        texts = PROBE_TEXTS
        if corpus is not None:
            texts = [t for _, t in zip(range(4096), iter_documents(corpus), strict=False)]
        elif kind != "none":
            raise ValueError(f"--postprocess {kind} needs --corpus FILE to fit on")
        docs = TokenizedCorpus.encode(tokenizer, iter(texts))
        probe = TokenizedCorpus.encode(tokenizer, iter(texts[:256]))
        served, extra = postprocess.apply(encoder, kind, docs, probe, log)
        fields = {
            "modality": "text",
            "dims": encoder.shape.hidden,
            "normalize": True,
            "inputs": ["input_ids", "attention_mask"],
            "output": "embeddings",
            "objective": "imported",
            "architecture": encoder.shape.to_manifest(),
            "weights": WEIGHTS,
            "preprocessing": {"tokenizer": "tokenizer.json"},
            "matryoshka_dims": [],
            "metrics": {"mean_pairwise_cosine": extra["isotropy"]["mean_pairwise_cosine"]},
            **facts,
            **extra,
        }
        return export_text_artifact(
            served, tok_path, out, texts[:32], fields, log=log, weights=encoder
        )


def register(client, name: str, folder: Path, log=print) -> dict[str, Any]:
    """Upload ``folder``'s files through presigned PUTs and register them as one version.

    Args:
        client: :class:`ApiClient` with a key that may import models.
        name: model name; the version number is the API's.
        folder: artifact folder with manifest.json.

    Returns:
        The registered version as the API describes it.
    """
    from ..api_client import upload

    manifest = json.loads((folder / "manifest.json").read_text())
    pending = client.create_import(name, manifest)
    for file, target in pending["uploads"].items():
        upload(target["url"], folder / file, progress=f"upload {file}")
    version = client.complete_import(name, pending["id"])
    log(f"registered {name}@{version.get('version')} ({len(pending['uploads'])} files)")
    return version
