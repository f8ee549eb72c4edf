#!/usr/bin/env bash
# Regenerate tests/fixtures/tiny-series-encoder/ and tests/fixtures/series/ (run from anywhere;
# ~30 seconds on 2 CPU cores). Data: sktime's bundled ItalyPowerDemand and BasicMotions (BSD-3).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/.." && pwd)"
out="$repo/tests/fixtures/tiny-series-encoder"
series="$repo/tests/fixtures/series"
py="$here/.venv/bin/python"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$py" "$here/scripts/series_fixture_extras.py" data "$series" "$tmp/italy-train.jsonl"
# Masked patch reconstruction on the 67 training series (labels are ignored by pretraining);
# probed on the first 300 test series.
PYTHONPATH="$here" "$py" -m selfsup_trainer pretrain --modality timeseries --objective masked \
  --data "$tmp/italy-train.jsonl" --eval "$series/italy-power-probe.jsonl" --out "$tmp/run" \
  --preset tiny --steps 600 --batch-size 16 --lr 1e-3 --seed 0 --log-every 100 \
  --set hidden=64 --set heads=2 --set intermediate=128 --set layers=2 \
  --set series_patch=8 --set heldout_fraction=0.1
mkdir -p "$out"
for f in manifest.json model.onnx model.onnx.data model.int8.onnx model.int8.onnx.data; do
  cp "$tmp/run/$f" "$out/$f"
done
"$py" "$here/scripts/series_fixture_extras.py" reference "$out" "$series/italy-power-probe.jsonl"
du -b "$out"/* "$series"/* | sort -n
