"""Write reference_classifications.json next to a fine-tuned text artifact.

Usage: python scripts/finetuned_extras.py ARTIFACT_DIR LABELED_JSONL

For the API's tests: for a few labeled texts (batch of one, no padding), the token ids, and
Python onnxruntime's ``logits``, softmax probabilities and ``embeddings`` of both variants.
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer


def main(artifact: str, labeled: str, count: int = 8) -> None:
    folder = Path(artifact)
    manifest = json.loads((folder / "manifest.json").read_text())
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    rows = [json.loads(line) for line in Path(labeled).read_text("utf-8").splitlines()][:count]
    cases = []
    for row in rows:
        ids = np.array([tokenizer.encode(row["text"]).ids], dtype=np.int64)
        case = {"text": row["text"], "label": row["label"], "ids": ids[0].tolist()}
        for variant, files in manifest["variants"].items():
            session = ort.InferenceSession(str(folder / files["model"]))
            feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            embeddings, logits = session.run(["embeddings", "logits"], feed)
            z = np.exp(logits[0] - logits[0].max())
            case[variant] = {
                "logits": logits[0].tolist(),
                "probabilities": (z / z.sum()).tolist(),
                "embedding": embeddings[0].tolist(),
            }
        cases.append(case)
    body = {"labels": manifest["head"]["labels"], "cases": cases}
    (folder / "reference_classifications.json").write_text(json.dumps(body, indent=1) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
