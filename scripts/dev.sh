#!/usr/bin/env bash
# `make dev`: the whole platform locally on embedded defaults, in the foreground until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
PORT="${PORT:-8787}"

node scripts/local-s3.mjs --dev-vars > .dev.vars
echo "==> applying D1 migrations to the local database"
CI=true wrangler d1 migrations apply DB --local >/dev/null
KEY="$(node scripts/dev-seed.mjs)"

cat <<MSG

  selfsup API     http://127.0.0.1:${PORT}
  reference docs  http://127.0.0.1:${PORT}/docs   (spec: /openapi.json)
  admin key       ${KEY}   (saved in .selfsup/dev-key)

  curl http://127.0.0.1:${PORT}/health
  curl -H "Authorization: Bearer \$(cat .selfsup/dev-key)" http://127.0.0.1:${PORT}/v1/models

MSG
exec wrangler dev --ip 127.0.0.1 --port "${PORT}" --show-interactive-dev-session=false
