#!/usr/bin/env bash
# `make dev`: the whole platform locally on embedded defaults — wrangler dev (local D1, R2 and R2's
# S3 endpoint), one trainer `serve` process, and on first run a demo — in the foreground until
# Ctrl-C, SIGTERM or SIGHUP, which all stop every child: the trainer first (it checkpoints and hands
# its job back while the API is still up), then the demo and wrangler with its workerd.
#
# PORT (default 8787) picks the API's port; the URL is written to .selfsup/dev-url, where the CLI
# finds it. State lives in .wrangler/ and .selfsup/ next to this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
PORT="${PORT:-8787}"
API="http://127.0.0.1:${PORT}"
STATE="$PWD/.selfsup"
mkdir -p "$STATE"

# Every child runs in a process group of its own (`set -m` while starting it), and stopping a child
# means signalling its whole group: wrangler is a node process that starts another node process
# that starts workerd, and signalling only the first one left workerd serving when this script was
# itself a background job (SIGINT ignored) that got SIGTERM. Own groups also keep a terminal's
# Ctrl-C away from the children, so that they stop in order below, not all at once.
step_group=""
trainer_group=""
groups=()

# start CMD...: run CMD in the background in a new process group; its pid (= the group) is in $!.
start() {
  set -m
  "$@" </dev/null &
  set +m
}

gone_within() { # GROUP SECONDS: true once no process of GROUP is left, false after SECONDS
  local i
  for ((i = 0; i < $2 * 4; i++)); do
    kill -0 -- "-$1" 2>/dev/null || return 0
    sleep 0.25
  done
  return 1
}

stop_group() { # GROUP SECONDS: SIGTERM, then SIGKILL whatever is left after SECONDS
  kill -TERM -- "-$1" 2>/dev/null || return 0
  gone_within "$1" "$2" && return 0
  echo "==> process group $1 still running ${2}s after SIGTERM; killing it"
  kill -KILL -- "-$1" 2>/dev/null || true
}

cleanup() {
  local status=$?
  # A second Ctrl-C or TERM must not cut the shutdown short and orphan what is still running.
  trap '' INT TERM HUP
  trap - EXIT
  echo
  echo "==> stopping"
  [ -n "$step_group" ] && stop_group "$step_group" 10
  # The trainer's SIGTERM handler finishes its step, uploads a checkpoint and releases the job.
  [ -n "$trainer_group" ] && stop_group "$trainer_group" 60
  local g
  for g in "${groups[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
  for g in "${groups[@]}"; do stop_group "$g" 15; done
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# step CMD...: a setup step in its own group, so that a stop interrupts it instead of waiting for it.
step() {
  start "$@"
  step_group=$!
  local status=0
  wait "$step_group" || status=$?
  step_group=""
  return "$status"
}

echo "==> trainer environment (gpu-trainer/.venv)"
step bash gpu-trainer/scripts/env.sh
# Written only when its content changes, so a file that something may watch keeps its mtime.
node scripts/local-s3.mjs --dev-vars > "$STATE/dev-vars.tmp"
cmp -s "$STATE/dev-vars.tmp" .dev.vars || cp "$STATE/dev-vars.tmp" .dev.vars
rm -f "$STATE/dev-vars.tmp"
echo "==> applying D1 migrations to the local database"
step env CI=true wrangler d1 migrations apply DB --local >/dev/null
KEY="$(node scripts/dev-seed.mjs)"
echo "==> building the dashboard (served at /dashboard/)"
step node scripts/build-dashboard.mjs

start wrangler dev --ip 127.0.0.1 --port "$PORT" --show-interactive-dev-session=false > "$STATE/wrangler.log" 2>&1
groups+=($!)
for _ in $(seq 1 120); do curl -fs "$API/health" >/dev/null 2>&1 && break; sleep 0.5; done
curl -fs "$API/health" >/dev/null || { cat "$STATE/wrangler.log"; exit 1; }
# The CLI reads this when SELFSUP_API_URL is unset, so `npm run cli` follows PORT.
echo "$API" > "$STATE/dev-url"

TRAINER_KEY="$(node --import tsx scripts/dev-trainer-key.ts "$API")"
# The log prefixer ignores TERM: it must outlive the trainer's last words, and it ends at their EOF.
start env SELFSUP_API_URL="$API" SELFSUP_TRAINER_KEY="$TRAINER_KEY" SELFSUP_WORK_DIR="$STATE/trainer" \
  PYTHONUNBUFFERED=1 bash -c 'cd gpu-trainer && exec .venv/bin/python -m selfsup_trainer serve 2>&1 |
  (trap "" INT TERM HUP; exec sed -u "s/^/[trainer] /")'
trainer_group=$!

cat <<MSG

  selfsup API     ${API}
  reference docs  ${API}/docs   (spec: /openapi.json)
  dashboard       ${API}/dashboard/   (sign in with the admin key)
  admin key       ${KEY}   (saved in .selfsup/dev-key)
  logs            .selfsup/wrangler.log; trainer output below

  export SELFSUP_API_KEY=\$(cat .selfsup/dev-key) SELFSUP_API_URL=${API}
  curl ${API}/v1/embeddings -H "Authorization: Bearer \$SELFSUP_API_KEY" -H 'content-type: application/json' \\
       -d '{"model":"demo","input":"hello"}'
  npm run cli -- models list      (the CLI calls ${API}: SELFSUP_API_URL, else .selfsup/dev-url)
  npm run cli -- jobs list

MSG
start node --import tsx scripts/dev-demo.ts "$API"
groups+=($!)
wait
