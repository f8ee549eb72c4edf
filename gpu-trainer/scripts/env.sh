#!/usr/bin/env bash
# Ensure gpu-trainer/.venv exists and matches uv.lock. Source it or run it; idempotent and quick
# when nothing changed. Needs only python3 (>= 3.11) with pip; uv is bootstrapped if missing.
set -euo pipefail
trainer_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export UV_LINK_MODE="${UV_LINK_MODE:-copy}"
export UV_PYTHON_DOWNLOADS=never  # use the machine's python3, never fetch one
if command -v uv >/dev/null 2>&1; then
  UV="$(command -v uv)"
elif [ -x "$HOME/.local/bin/uv" ]; then
  UV="$HOME/.local/bin/uv"
else
  python3 -m pip install --user --quiet uv
  UV="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts", "posix_user"))')/uv"
fi
export UV
(cd "$trainer_dir" && "$UV" sync --locked --python python3 --quiet)
