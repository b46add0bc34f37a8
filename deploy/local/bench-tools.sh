#!/usr/bin/env bash
# Compares the xmppload agent with Tsung 1.7 and with @xmpp/client bots on
# one throwaway Prosody, in one run. It measures memory per idle bot
# (WebSocket and c2s, with and without TLS), CPU per 1,000 received stanzas
# in a busy room, and the tool's CPU as a share of Prosody's. Writes everything, and the table
# kept in BENCHMARKS.md, to the next free results/NN/.
#
# Needs: prosody, tsung, nodejs and npm, openssl, python3
#   apt-get install -y prosody tsung nodejs npm openssl python3
# Arguments go to deploy/local/bench_tools.py (--idle-bots, --rooms, --busy-bots).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

for tool in prosody tsung node npm openssl python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: $tool not found; install with: apt-get install -y prosody tsung nodejs npm openssl python3" >&2
        exit 1
    fi
done

echo "building release binaries..." >&2
cargo build --release --locked --bins
echo "installing @xmpp/client from deploy/local/xmppjs/package-lock.json..." >&2
(cd deploy/local/xmppjs && npm ci --no-audit --no-fund --silent)

last=$(find results -maxdepth 1 -name '[0-9][0-9]' -printf '%f\n' | sort | tail -1)
out=$(printf 'results/%02d' $((10#${last:-0} + 1)))
echo "results: $out" >&2
python3 deploy/local/bench_tools.py "$out" "$@" | tee "$out.md.tmp"
mv "$out.md.tmp" "$out/bench.md"
# Tsung's own HTML report and traffic dump are large and add nothing to the
# figures; its tsung.log with the counters stays.
find "$out" -path '*tsung-log/*' \( -name '*.dump' -o -name 'style' -o -name '*.html' \) -prune -exec rm -rf {} +
