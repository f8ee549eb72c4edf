#!/usr/bin/env bash
# Builds kernels/ (Rust) into api/services/encoder/kernels.wasm, the int8 encoder the Worker
# imports (decision 0011). The .wasm is committed, so tests and deploys need no Rust; run this
# after changing kernels/src and commit both. `--check` rebuilds into a temp dir and fails if
# the committed file differs (CI runs it when cargo is present).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/api/services/encoder/kernels.wasm"
if ! command -v cargo >/dev/null; then
  echo "build-kernels: cargo not found (install Rust with rustup)" >&2
  exit 1
fi
if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
  rustup target add wasm32-unknown-unknown
fi
target="$(mktemp -d)"
trap 'rm -rf "$target"' EXIT
# relaxed-simd: i32x4.relaxed_dot_i8x16_i7x16_add (pmaddubsw/VNNI); workerd's V8 ships it.
RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd --remap-path-prefix=$root=/selfsup --remap-path-prefix=$HOME=/home" \
  cargo build --quiet --release --target wasm32-unknown-unknown \
  --manifest-path "$root/kernels/Cargo.toml" --target-dir "$target"
built="$target/wasm32-unknown-unknown/release/selfsup_kernels.wasm"
if [ "${1:-}" = "--check" ]; then
  if ! cmp -s "$built" "$out"; then
    echo "build-kernels: $out is stale; run scripts/build-kernels.sh and commit it" >&2
    exit 1
  fi
  echo "build-kernels: kernels.wasm is up to date"
else
  cp "$built" "$out"
  echo "build-kernels: wrote $out ($(wc -c <"$out") bytes)"
fi
