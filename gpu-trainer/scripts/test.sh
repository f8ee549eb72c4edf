#!/usr/bin/env bash
# Lint + CPU test suite for the trainer. Creates gpu-trainer/.venv from uv.lock if needed.
set -euo pipefail
trainer_dir="$(cd "$(dirname "$0")/.." && pwd)"
source "$trainer_dir/scripts/env.sh"
cd "$trainer_dir"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest -p no:cacheprovider "$@"
