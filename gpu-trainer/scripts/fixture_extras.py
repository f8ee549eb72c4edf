"""Write tokenizer_cases.json and reference_embeddings.json next to an exported artifact.

Usage: python scripts/fixture_extras.py ARTIFACT_DIR CORPUS

Both files let the TypeScript side check itself against the Python reference: token ids from
the Python ``tokenizers`` library, embeddings from Python onnxruntime (batch of one, no padding).
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

# Edge cases for tokenizer parity. Corpus sentences are appended below; nothing here is meant
# to look like real text, only to exercise normalizer/pre-tokenizer/WordPiece corners.
EDGE_CASES = [
    "",
    "   ",
    "Call me Ishmael.",
    "CALL ME ISHMAEL!!!",
    "Café, naïve façade — “curly quotes” and ‘single’ ones…",
    "e\u0301 composed vs é precomposed",
    "Tabs\tand\nnewlines\r\nmixed",
    "numbers: 1851, 3.14159, 1,000,000 and 42nd",
    "don't can't won't o'clock",
    "https://example.com/path?query=1&x=y",
    "email@example.org #hashtag @mention",
    "日本語のテキストと中文",
    "Ελληνικά και русский текст",
    "whale 🐋 emoji 🙂",
    "zero\u200bwidth and soft\u00adhyphen",
    "literal [MASK] and [CLS] tokens",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
]


def main(artifact: str, corpus: str) -> None:
    folder = Path(artifact)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    lines = [ln.strip() for ln in Path(corpus).read_text("utf-8").splitlines() if ln.strip()]
    longest = max(lines, key=len)
    texts = [*EDGE_CASES, lines[2], lines[100], longest, " ".join(lines[:40])]
    cases = [{"text": t, "ids": tokenizer.encode(t).ids} for t in texts]
    (folder / "tokenizer_cases.json").write_text(json.dumps(cases, ensure_ascii=False, indent=1))

    picks = [lines[2], lines[10], lines[200], lines[500], longest, "Café naïve", "", "whale 🐋"]
    sessions = {
        v: ort.InferenceSession(str(folder / f), providers=["CPUExecutionProvider"])
        for v, f in (("fp32", "model.onnx"), ("int8", "model.int8.onnx"))
    }
    reference = {"note": "onnxruntime (Python) outputs, batch of 1, attention_mask all ones"}
    reference["cases"] = []
    for text in picks:
        ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        entry = {"text": text, "ids": ids[0].tolist()}
        for variant, session in sessions.items():
            entry[variant] = [round(float(x), 7) for x in session.run(None, feed)[0][0]]
        reference["cases"].append(entry)
    (folder / "reference_embeddings.json").write_text(json.dumps(reference, ensure_ascii=False))
    print(f"wrote {len(cases)} tokenizer cases and {len(picks)} reference embeddings")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
