#!/usr/bin/env bash
# Regenerate tests/fixtures/tiny-finetuned/ (run from anywhere; ~1 minute on 2 CPU cores): a tiny
# text encoder pretrained here (MLM on the corpus fixture; tests/fixtures/tiny-encoder has no
# encoder.safetensors and is too large for a < 2 MB fine-tuned fixture), fine-tuned on the
# fortunes probe set (train split; test split for early stopping and metrics).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/.." && pwd)"
out="$repo/tests/fixtures/tiny-finetuned"
corpus="$repo/tests/fixtures/corpus/moby-dick-excerpt.txt"
py="$here/.venv/bin/python"
source "$here/scripts/env.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$py" "$here/scripts/fortunes_jsonl.py" "$repo/tests/fixtures/probe/fortunes.json" "$tmp"
"$py" -m selfsup_trainer pretrain \
  --data "$corpus" --objective mlm --preset tiny --out "$tmp/base" \
  --steps 150 --batch-size 32 --lr 1e-3 --vocab-size 1000 --max-tokens 64 --seed 0 \
  --set layers=1 --set hidden=64 --set heads=2 --set intermediate=256 --log-every 50
"$py" -m selfsup_trainer finetune --init "$tmp/base" --init-ref tiny@1 \
  --data "$tmp/fortunes-train.jsonl" --eval "$tmp/fortunes-test.jsonl" --out "$tmp/ft" \
  --epochs 5 --lr 1e-3 --head-lr 3e-3 --seed 0 --log-every 10 --no-progress
mkdir -p "$out"
for f in manifest.json model.onnx model.onnx.data model.int8.onnx model.int8.onnx.data \
  tokenizer.json encoder.safetensors head.safetensors; do
  cp "$tmp/ft/$f" "$out/$f"
done
"$py" "$here/scripts/finetuned_extras.py" "$out" "$tmp/fortunes-test.jsonl"
du -b "$out"/* | sort -n
