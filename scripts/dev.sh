#!/usr/bin/env bash
# `make dev`: the whole platform locally on embedded defaults — wrangler dev (local D1, R2 and R2's
# S3 endpoint), one trainer `serve` process, and on first run a demo — in the foreground until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
PORT="${PORT:-8787}"
API="http://127.0.0.1:${PORT}"
mkdir -p .selfsup

echo "==> trainer environment (gpu-trainer/.venv)"
bash gpu-trainer/scripts/env.sh
node scripts/local-s3.mjs --dev-vars > .dev.vars
echo "==> applying D1 migrations to the local database"
CI=true wrangler d1 migrations apply DB --local >/dev/null
KEY="$(node scripts/dev-seed.mjs)"

pids=()
trainer_pid=""
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "==> stopping"
  # The trainer first, while the API is still up: it checkpoints, uploads and hands its job back.
  if [ -n "$trainer_pid" ]; then
    kill -TERM "$trainer_pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$trainer_pid" 2>/dev/null || break; sleep 0.5; done
  fi
  # Then the rest; wrangler takes workerd down with it.
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT
# Background jobs get process groups of their own, so Ctrl-C reaches only this script, which then
# stops them in order (a terminal's SIGINT would otherwise hit wrangler and the trainer at once).
set -m

wrangler dev --ip 127.0.0.1 --port "$PORT" --show-interactive-dev-session=false > .selfsup/wrangler.log 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do curl -fs "$API/health" >/dev/null 2>&1 && break; sleep 0.5; done
curl -fs "$API/health" >/dev/null || { cat .selfsup/wrangler.log; exit 1; }

TRAINER_KEY="$(node --import tsx scripts/dev-trainer-key.ts "$API")"
(cd gpu-trainer && SELFSUP_API_URL="$API" SELFSUP_TRAINER_KEY="$TRAINER_KEY" SELFSUP_WORK_DIR="../.selfsup/trainer" \
  PYTHONUNBUFFERED=1 exec .venv/bin/python -m selfsup_trainer serve) > >(sed -u 's/^/[trainer] /') 2>&1 &
trainer_pid=$!

cat <<MSG

  selfsup API     ${API}
  reference docs  ${API}/docs   (spec: /openapi.json)
  admin key       ${KEY}   (saved in .selfsup/dev-key)
  logs            .selfsup/wrangler.log; trainer output below

  export SELFSUP_API_KEY=\$(cat .selfsup/dev-key)
  curl ${API}/v1/embeddings -H "Authorization: Bearer \$SELFSUP_API_KEY" -H 'content-type: application/json' \\
       -d '{"model":"demo","input":"hello"}'
  npm run cli -- models list
  npm run cli -- jobs list

MSG
node --import tsx scripts/dev-demo.ts "$API" &
pids+=($!)
wait
