#!/usr/bin/env bash
# Refresh docs/overview.png, the README's picture of the overview page: starts the deterministic
# demo (shop + daemon) on free loopback ports, lets it evaluate for a while, and has headless
# Chromium (scripts/install-browser.sh) screenshot http://127.0.0.1:<port>/.
#   usage: scripts/screenshot-overview.sh [OUTPUT.png] [SECONDS_TO_WARM_UP]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/overview.png}
warmup=${2:-50}
chromium=${VALUE_EXPORTER_CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || { echo "screenshot-overview: $chromium missing; run scripts/install-browser.sh" >&2; exit 1; }
free_port() { .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
shop_port=$(free_port)
work=$(mktemp -d)
.venv/bin/value-exporter demo --deterministic --listen "127.0.0.1:$port" \
  --shop-listen "127.0.0.1:$shop_port" --log.level warning > "$work/demo.log" 2>&1 &
demo=$!
trap 'kill "$demo" 2>/dev/null; wait "$demo" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/-/ready" >/dev/null && break
  sleep 0.2
done
curl -fs "http://127.0.0.1:$port/-/ready" >/dev/null || { cat "$work/demo.log" >&2; exit 1; }
sleep "$warmup"  # the demo evaluates every 15 s; rates and funnels need a few rounds
# The same isolation as tests/test_browser.py: a fresh profile, nothing but loopback.
"$chromium" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --disable-quic --hide-scrollbars \
  --host-resolver-rules="MAP * ~NOTFOUND , EXCLUDE 127.0.0.1" --user-data-dir="$work/profile" \
  --window-size=1280,2050 --screenshot="$PWD/$out" "http://127.0.0.1:$port/" 2>/dev/null
echo "wrote $out"
