#!/usr/bin/env bash
# The linear-probe fit benchmark, scikit-learn then TypeScript back to back (so both see the same
# machine load): prints one JSON line per tolerance with time and accuracy ratios.
# Needs: apt-get install -y dataset-fashion-mnist; a venv with scikit-learn numpy (see probe_fit.py).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-/tmp/probe-bench}"
PY="${PYTHON:-/tmp/probe-venv/bin/python}"
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 "$PY" bench/probe_fit.py --out "$OUT"
source scripts/env.sh
npx tsx bench/probe_fit.ts "$OUT"
