"""Write the fortunes probe set's train/test splits as labeled JSONL (what fine-tuning reads).

Usage: python scripts/fortunes_jsonl.py tests/fixtures/probe/fortunes.json OUT_DIR
"""

import json
import sys
from pathlib import Path


def main(probe: str, out: str) -> None:
    data = json.loads(Path(probe).read_text())
    for split in ("train", "test"):
        rows = [
            {"text": data["texts"][i], "label": data["label_names"][data["labels"][i]]}
            for i in data[f"{split}_idx"]
        ]
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        (Path(out) / f"fortunes-{split}.jsonl").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:3])
