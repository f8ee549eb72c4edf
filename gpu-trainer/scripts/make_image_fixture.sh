#!/usr/bin/env bash
# Regenerate tests/fixtures/tiny-image-encoder/ (a tiny MAE ViT on sklearn digits, 16 px) and
# tests/fixtures/images/digits-probe.zip (300 held-out digits in class folders) for the edge tests.
# Run from anywhere; about a minute on 2 CPU cores. Usage: make_image_fixture.sh [--steps N]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/.." && pwd)"
[ -x "$here/.venv/bin/python" ] || source "$here/scripts/env.sh"  # creates the venv once
out="$repo/tests/fixtures/tiny-image-encoder"
probe="$repo/tests/fixtures/images/digits-probe.zip"
cd "$here"
.venv/bin/python -m selfsup_trainer.vision.fixture "$out" "$probe" "$@"
du -b "$out"/* "$probe" | sort -n
