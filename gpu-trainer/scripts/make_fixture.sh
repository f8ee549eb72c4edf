#!/usr/bin/env bash
# Regenerate tests/fixtures/tiny-encoder/ (run from anywhere; ~1 minute on 2 CPU cores).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/.." && pwd)"
out="$repo/tests/fixtures/tiny-encoder"
corpus="$repo/tests/fixtures/corpus/moby-dick-excerpt.txt"
source "$here/scripts/env.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$here/.venv/bin/python" -m selfsup_trainer pretrain \
  --data "$corpus" --objective mlm --preset tiny --out "$tmp/run" \
  --steps 400 --batch-size 32 --lr 1e-3 --vocab-size 2000 --max-tokens 128 --seed 0 \
  --set dropout=0.1 --log-every 50
for f in manifest.json model.onnx model.onnx.data model.int8.onnx model.int8.onnx.data tokenizer.json; do
  cp "$tmp/run/$f" "$out/$f"
done
"$here/.venv/bin/python" "$here/scripts/fixture_extras.py" "$out" "$corpus"
"$here/.venv/bin/python" "$here/scripts/fixture_kernel.py" "$out"
du -b "$out"/* | sort -n
