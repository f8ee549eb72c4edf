#!/usr/bin/env bash
# The dashboard's browser tests drive Debian's Chromium (playwright-core, no downloaded browser).
# A no-op when /usr/bin/chromium exists; otherwise installs it with apt (needs root, as CI has).
set -euo pipefail
CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "ensure-chromium: $CHROMIUM is missing; install it as root: apt-get update && apt-get install -y chromium" >&2
  exit 1
fi
echo "ensure-chromium: installing chromium with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
[ -x "$CHROMIUM" ] || { echo "ensure-chromium: apt installed chromium but $CHROMIUM is still missing" >&2; exit 1; }
